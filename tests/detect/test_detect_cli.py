"""`kaudit detect`, `rules` and `alerts`/`silence` through click (main.py registration is
separate, so the commands are invoked directly)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from kaudit.alert.model import FakeClock
from kaudit.alert.pipeline import Notifier
from kaudit.alert.store import AlertStore
from kaudit.cli.detect import COMMANDS
from kaudit.detect.engine import _with_defaults, run_all
from kaudit.detect.load import builtin_rules
from kaudit.store.duckdb import DuckDBStore

EXEC = {
    "verb": "create",
    "stage": "ResponseStarted",
    "requestURI": "/api/v1/namespaces/a/pods/p/exec?command=id&container=c",
    "user": {"username": "alice"},
    "sourceIPs": ["47.100.1.2"],
    "objectRef": {"resource": "pods", "subresource": "exec", "name": "p", "namespace": "a"},
}


def test_detect_prints_alert_json_lines_and_exit_code(tmp_path: Path) -> None:
    f = tmp_path / "audit.log"
    f.write_text(json.dumps(_with_defaults(EXEC, 0)) + "\n")
    r = CliRunner().invoke(COMMANDS["detect"], [str(f)])
    assert r.exit_code == 3, r.output
    alerts = [json.loads(x) for x in r.output.splitlines()]
    ex = next(a for a in alerts if a["rule"] == "exec-into-container")
    assert ex["fields"]["命令"] == "id" and ex["fields"]["操作账号"] == "alice"
    quiet = tmp_path / "quiet.log"
    quiet.write_text(
        json.dumps(
            _with_defaults(
                {
                    "verb": "get",
                    "user": {"username": "system:node:n"},
                    "objectRef": {"resource": "nodes"},
                },
                0,
            )
        )
        + "\n"
    )
    assert CliRunner().invoke(COMMANDS["detect"], [str(quiet)]).exit_code == 0


def test_rules_list_test_lint(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(COMMANDS["rules"], ["list"])
    assert r.exit_code == 0 and "exec-into-container" in r.output
    r = runner.invoke(COMMANDS["rules"], ["test", "--rule", "exec-into-container"])
    assert r.exit_code == 0 and r.output.count("ok ") == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "id: x\ntitle: t\ndescription: d\nseverity: low\nmitre: [T1609]\n"
        "match: {search: 'verb:get', where: 'nosuchfn(verb)'}\n"
    )
    r = runner.invoke(COMMANDS["rules"], ["lint", str(bad)])
    assert r.exit_code == 1 and "unknown function" in r.output and str(bad) in r.output


def test_alerts_and_silences(tmp_path: Path) -> None:
    db = str(tmp_path / "k.duckdb")
    rules = builtin_rules()
    with DuckDBStore.open(db) as store:
        store.ingest_events([_with_defaults(EXEC, 0)], redact=False)
        Notifier(AlertStore(store), {r.id: r for r in rules}, {}, [], FakeClock()).handle(
            run_all(store, rules)
        )
    runner = CliRunner()
    r = runner.invoke(COMMANDS["alerts"], ["list", "--db", db, "--json"])
    fp = next(
        json.loads(x)
        for x in r.output.splitlines()
        if json.loads(x)["rule"] == "exec-into-container"
    )["fingerprint"]
    assert runner.invoke(COMMANDS["alerts"], ["ack", "--db", db, fp[:8]]).output.endswith(
        "acknowledged\n"
    )
    r = runner.invoke(
        COMMANDS["silence"],
        [
            "add",
            "--db",
            db,
            "--rule",
            "exec-into-container",
            "--match",
            "user.username:ci-bot",
            "--for",
            "2h",
        ],
    )
    assert r.exit_code == 0, r.output
    sid = r.output.split()[1]
    assert "user.username:ci-bot" in runner.invoke(COMMANDS["silence"], ["list", "--db", db]).output
    assert runner.invoke(COMMANDS["silence"], ["remove", "--db", db, sid]).exit_code == 0
    bad = runner.invoke(COMMANDS["silence"], ["add", "--db", db, "--for", "soon"])
    assert bad.exit_code != 0


def test_detect_counts_stateful_rules_in_their_own_window(tmp_path: Path) -> None:
    """`kaudit detect` on a day of history: twelve secrets read one an hour are routine for a
    "10 distinct secrets in 10 minutes" rule; twelve read within five minutes are not."""

    def reads(user: str, step_s: int, t0: int) -> list[str]:
        out = []
        for i in range(12):
            ev = _with_defaults(
                {
                    "verb": "get",
                    "user": {"username": user},
                    "objectRef": {"resource": "secrets", "namespace": "a", "name": f"s{i}"},
                },
                i,
            )
            at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=t0 + i * step_s)
            ev["auditID"] = f"{user}-{i}"
            ev["stageTimestamp"] = ev["requestReceivedTimestamp"] = at.strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )
            out.append(json.dumps(ev))
        return out

    f = tmp_path / "day.log"
    f.write_text("\n".join(reads("slow", 3600, 0) + reads("burst", 25, 40_000)) + "\n")
    r = CliRunner().invoke(COMMANDS["detect"], [str(f)])
    alerts = [json.loads(x) for x in r.output.splitlines()]
    enum = [a for a in alerts if a["rule"] == "secret-enumeration"]
    assert [a["fields"]["操作账号"] for a in enum] == ["burst"]
