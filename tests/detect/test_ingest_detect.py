"""`kaudit ingest` runs the streaming rules over what it stores (issue 6, Engine): alerts land in
the alerts table once per key however the import is cut into commits, and are not raised again
when the same file is imported twice."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kaudit.alert.store import AlertStore
from kaudit.cli.main import build
from kaudit.detect.engine import StreamFollower, _with_defaults
from kaudit.detect.load import builtin_rules
from kaudit.event.decode import DecodeOptions, expand_inputs
from kaudit.sources.bulk import ingest
from kaudit.store.duckdb import DuckDBStore

from .test_detect_cli import EXEC


def _exec_lines(n: int) -> str:
    """`n` exec events by `n` users, between benign reads."""
    out = []
    for i in range(n):
        ev = _with_defaults({**EXEC, "user": {"username": f"user-{i}"}}, i)
        ev["auditID"] = f"exec-{i}"
        benign = _with_defaults(
            {
                "verb": "get",
                "user": {"username": "system:node:n"},
                "objectRef": {"resource": "nodes"},
            },
            i,
        )
        benign["auditID"] = f"benign-{i}"
        out += [json.dumps(ev), json.dumps(benign)]
    return "\n".join(out) + "\n"


def _exec_alerts(db: Path) -> list[str]:
    with DuckDBStore.open(db) as store:
        alerts = AlertStore(store).list_alerts(rule="exec-into-container", limit=1000)
    return sorted(a.fields["操作账号"] for a in alerts)


def test_ingest_raises_streaming_alerts_once(tmp_path: Path) -> None:
    f = tmp_path / "audit.log"
    f.write_text(_exec_lines(30))
    db = tmp_path / "k.duckdb"
    r = CliRunner().invoke(build(), ["ingest", "--db", str(db), "--json", str(f)])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["alerts_by_rule"]["exec-into-container"] == 30
    assert _exec_alerts(db) == sorted(f"user-{i}" for i in range(30))
    # the same file again: nothing new is stored, so nothing is raised again
    r = CliRunner().invoke(build(), ["ingest", "--db", str(db), "--json", str(f)])
    assert json.loads(r.output)["alerts"] == 0 and json.loads(r.output)["duplicates"] == 60
    assert len(_exec_alerts(db)) == 30


def test_ingest_no_detect_stores_without_alerts(tmp_path: Path) -> None:
    f = tmp_path / "audit.log"
    f.write_text(_exec_lines(2))
    db = tmp_path / "k.duckdb"
    r = CliRunner().invoke(build(), ["ingest", "--no-detect", "--db", str(db), str(f)])
    assert r.exit_code == 0, r.output
    assert "alerts" not in r.output
    assert _exec_alerts(db) == []


def test_ingest_with_a_bad_rule_file_fails_before_storing(tmp_path: Path) -> None:
    f = tmp_path / "audit.log"
    f.write_text(_exec_lines(1))
    bad = tmp_path / "bad.yaml"
    bad.write_text("- id: x\n  title: {en: t, zh: t}\n  severity: loud\n")
    db = tmp_path / "k.duckdb"
    r = CliRunner().invoke(build(), ["ingest", "--rules", str(bad), "--db", str(db), str(f)])
    assert r.exit_code == 1
    assert f"{bad}:" in r.output and "Traceback" not in r.output
    assert not db.exists()


def test_stream_follower_examines_each_commit_once(tmp_path: Path) -> None:
    rules = [r for r in builtin_rules() if r.id == "exec-into-container"]
    seen: list[str] = []
    with DuckDBStore.open(tmp_path / "k.duckdb") as store:
        follower = StreamFollower(store, rules, lambda hits: seen.extend(h.key[0] for h in hits))
        for i in range(3):
            ev = _with_defaults({**EXEC, "user": {"username": f"u{i}"}}, i)
            store.ingest_events([ev])  # commits
            follower.committed()
            deadline = time.monotonic() + 30
            while follower.done < store.committed_seq() and time.monotonic() < deadline:
                time.sleep(0.01)
        follower.close()
    assert len(seen) == 3 and len(set(seen)) == 3


def test_the_rules_follow_an_import_commit_by_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kaudit.event.decode._BLOCK", 2048)  # a few lines per batch
    f = tmp_path / "audit.log"
    f.write_text(_exec_lines(30))
    rules = [r for r in builtin_rules() if r.id == "exec-into-container"]
    users: list[str] = []
    commits: list[int] = []
    with DuckDBStore.open(tmp_path / "k.duckdb") as store:
        follower = StreamFollower(store, rules, lambda hs: users.extend(h.key[0] for h in hs))

        def committed() -> None:
            commits.append(store.committed_seq())
            follower.committed()

        opts = DecodeOptions(batch_size=4)
        report = ingest(store, expand_inputs([str(f)]), opts, None, committed, commit_every=8)
        follower.close()
    assert report.totals.stored == 60 and len(commits) > 3
    assert sorted(users) == sorted(f"exec-{i}" for i in range(30))  # one hit per event
