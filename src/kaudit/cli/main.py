"""`kaudit` entry point: builds the command group from the surfaces' commands.

User mistakes (`UserError`) are printed as one line on stderr with exit code 1; only bugs show a
traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

# kaudit does no linear algebra, but numpy's OpenBLAS starts a thread per core at import, and
# they took CPU from DuckDB (0.15 s of 1.5 s decoding 1M events, 2 cores). Set before numpy is
# imported; a user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click

from kaudit.errors import KauditError, UserError

# command -> the module of `kaudit.cli` that defines it, imported when the command runs:
# `kaudit ingest` need not load the query compiler, the rules or the web server (each
# command's start-up is part of its time). `tests/core/test_cli_main.py` keeps it in step
# with the modules' `COMMANDS`.
COMMAND_MODULES: dict[str, str] = {
    "ingest": "core",
    "export": "core",
    "stats": "core",
    "rejects": "core",
    "prune": "core",
    "demo": "demo",
    "rules": "detect",
    "alerts": "detect",
    "silence": "detect",
    "detect": "detect",
    "generate": "generate",
    "policy": "policy",
    "query": "query",
    "intel": "query",
    "serve": "serve",
    "token": "serve",
    "webhook-config": "serve",
    "certs": "serve",
}


class _Root(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is None:
            return None
        commands: dict[str, click.Command] = importlib.import_module(
            f"kaudit.cli.{module}"
        ).COMMANDS
        return commands[cmd_name]

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"kaudit: error: {exc}", err=True)
            ctx.exit(1)
        except KauditError as exc:
            click.echo(f"kaudit: {type(exc).__name__}: {exc}", err=True)
            ctx.exit(1)


def build() -> click.Group:
    return _Root(
        name="kaudit",
        help="kaudit: a self-hosted SIEM for Kubernetes audit logs.",
        context_settings={"help_option_names": ["-h", "--help"]},
    )


def main() -> None:
    cli = build()
    sys.exit(cli.main(prog_name="kaudit", standalone_mode=True))
