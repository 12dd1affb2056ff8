"""The root command loads a command's module only when that command runs."""

from __future__ import annotations

import importlib
import subprocess
import sys

from click.testing import CliRunner

from kaudit.cli.main import COMMAND_MODULES, build


def test_the_registry_names_every_command_of_every_module_and_nothing_else() -> None:
    modules = set(COMMAND_MODULES.values())
    defined = {
        name: module
        for module in modules
        for name in importlib.import_module(f"kaudit.cli.{module}").COMMANDS
    }
    assert defined == COMMAND_MODULES


def test_help_lists_every_command_and_an_unknown_one_is_refused() -> None:
    out = CliRunner().invoke(build(), ["--help"])
    assert out.exit_code == 0
    listed = {line.split()[0] for line in out.output.split("Commands:")[1].splitlines() if line}
    assert listed == set(COMMAND_MODULES)
    bad = CliRunner().invoke(build(), ["ingets"])
    assert bad.exit_code == 2 and "No such command 'ingets'" in bad.output


def test_ingest_does_not_load_the_other_commands_modules() -> None:
    code = (
        "import sys\n"
        "from kaudit.cli.main import build\n"
        "build().main(['ingest', '--help'], standalone_mode=False)\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('kaudit.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split("\n")[-2].split())
    assert "kaudit.cli.core" in loaded
    for other in ("demo", "detect", "generate", "policy", "query", "serve"):
        assert f"kaudit.cli.{other}" not in loaded
