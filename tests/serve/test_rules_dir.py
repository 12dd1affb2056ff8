"""A bad file in `alerts.rules_dir` refuses `kaudit serve` start-up with one line naming
`file:line` (exit 1, no traceback); `kaudit detect --rules DIR` and `kaudit rules lint DIR`
refuse the same files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kaudit.cli.main import build
from kaudit.detect.model import RuleError
from kaudit.serve.app import create_app, load_rules
from kaudit.serve.config import parse_config

from .conftest import free_port, run_cli

GOOD = """\
id: my-secret-reads
title: {zh: 读取机密, en: Secret read}
description: {zh: 读取机密, en: A secret was read}
severity: low
mitre: [T1552.007]
match: "objectRef.resource:secrets and verb:get"
"""
BAD_YAML = GOOD.replace("severity: low\n", "severity: low\n  oops: [\n")
BAD_SCHEMA = GOOD.replace("severity: low", "severity: urgent")
BAD_QUERY = GOOD.replace(
    'match: "objectRef.resource:secrets and verb:get"',
    "match: {search: 'verb:get', where: 'nosuchfn(verb)'}",
)
BUILTIN_ID = GOOD.replace("id: my-secret-reads", "id: exec-into-container")

CASES = [
    ("bad.yaml", BAD_YAML, ":5:7: YAML: mapping values are not allowed here"),
    ("bad.yaml", BAD_SCHEMA, ":4:11: severity 'urgent': one of info, low, medium, high"),
    ("bad.yml", BAD_QUERY, ":1:1: rule my-secret-reads: query:1:"),
    ("clash.yaml", BUILTIN_ID, ":1:1: rule id 'exec-into-container' is taken by a built-in"),
]


def _config(tmp_path: Path, rules: Path) -> Path:
    cfg = tmp_path / "kaudit.yaml"
    body = {"db": str(tmp_path / "data" / "k.duckdb"), "port": free_port(),
            "alerts": {"rules_dir": [str(rules)]}}  # fmt: skip
    cfg.write_text(yaml.safe_dump(body))
    return cfg


def _rules(tmp_path: Path, name: str, text: str) -> tuple[Path, Path]:
    d = tmp_path / "rules"
    d.mkdir(exist_ok=True)
    (d / "good.yaml").write_text(GOOD.replace("my-secret-reads", "a-good-one"))
    (d / name).write_text(text)
    return d, d / name


def test_serve_refuses_a_bad_rule_file_in_one_line(tmp_path: Path) -> None:
    """Through the real command line: exit 1 before listening, one line, no traceback."""
    d, bad = _rules(tmp_path, "bad.yaml", BAD_SCHEMA)
    res = run_cli("serve", "--config", str(_config(tmp_path, d)))
    assert res.returncode == 1, res.stderr
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert lines == [f"kaudit: error: {bad}:4:11: severity 'urgent': one of info, low, medium, "
                     "high, critical"], res.stderr  # fmt: skip
    assert "Traceback" not in res.stderr + res.stdout
    assert not (tmp_path / "data" / "serve.json").exists()  # it never ran


@pytest.mark.parametrize(("name", "text", "expected"), CASES)
def test_serve_refuses_every_kind_of_bad_rule(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    d, bad = _rules(tmp_path, name, text)
    res = CliRunner().invoke(build(), ["serve", "--config", str(_config(tmp_path, d))])
    assert res.exit_code == 1
    assert res.output.startswith(f"kaudit: error: {bad}{expected}"), res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert not isinstance(res.exception, RuleError)  # printed by the CLI, not raised


def test_a_missing_rules_dir_refuses_too(tmp_path: Path) -> None:
    gone = tmp_path / "no-such-dir"
    res = CliRunner().invoke(build(), ["serve", "--config", str(_config(tmp_path, gone))])
    assert res.exit_code == 1
    assert (
        res.output == f"kaudit: error: {gone}: cannot read rule file: No such file or directory\n"
    )


def test_good_rules_dir_rules_run_beside_the_builtins(tmp_path: Path) -> None:
    d, _ = _rules(tmp_path, "mine.yaml", GOOD)
    cfg = parse_config(
        yaml.safe_dump({"alerts": {"rules_dir": [str(d)], "disabled": ["a-good-one"]}})
    )
    ids = [r.id for r in load_rules(cfg)]
    assert "my-secret-reads" in ids and "exec-into-container" in ids
    assert "a-good-one" not in ids  # alerts.disabled applies to rules_dir rules too
    # a disabled rule that would not compile does not stop start-up (it never runs) ...
    (d / "off.yaml").write_text(BAD_QUERY.replace("my-secret-reads", "parked"))
    cfg = parse_config(yaml.safe_dump({"alerts": {"rules_dir": [str(d)], "disabled": ["parked"]}}))
    assert "parked" not in [r.id for r in load_rules(cfg)]
    # ... but one that is on does, already when the app is built (before it listens)
    cfg = parse_config(yaml.safe_dump({"alerts": {"rules_dir": [str(d)]}}))
    with pytest.raises(
        RuleError, match=r"off\.yaml:1:1: rule parked: query:1:\d+: unknown function"
    ):
        create_app(cfg)
    # detection off: rules are not loaded at all
    create_app(parse_config(yaml.safe_dump({"alerts": {"enabled": False, "rules_dir": [str(d)]}})))


@pytest.mark.parametrize(("name", "text", "expected"), CASES[:3])
def test_detect_and_lint_refuse_the_same_files(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    d, bad = _rules(tmp_path, name, text)
    events = tmp_path / "audit.log"
    events.write_text("")
    runner = CliRunner()
    res = runner.invoke(build(), ["detect", "--rules", str(d), str(events)])
    assert res.exit_code == 1 and f"{bad}{expected}" in res.output, res.output
    assert res.output.startswith("kaudit: error: ")
    res = runner.invoke(build(), ["rules", "lint", str(d)])
    assert res.exit_code == 1 and f"{bad}{expected}" in res.output, res.output
    loaded = 2 if name == "bad.yml" else 1  # a rule that does not compile did load
    assert res.output.rstrip().endswith(f"{loaded} rule(s), 1 error(s)"), res.output
