"""`kaudit demo` generates, stores and summarises; running it again stores nothing twice."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from kaudit.cli.demo import ATTACKS, SUMMARY
from kaudit.query.brief import QUERY_A
from kaudit.query.run import run_query
from kaudit.store.duckdb import DuckDBStore


def test_demo_runs_and_is_idempotent(kaudit: Callable[..., Result], tmp_path: Path) -> None:
    data = tmp_path / "kd"
    res = kaudit("demo", "--data", str(data), "--events", "6000", "--seed", "3")
    assert res.exit_code == 0, res.output
    for title, _ in (*SUMMARY, *ATTACKS):
        assert title in res.output
    assert "stored 6,000" in res.output
    # query A lists exactly the execs logged as `create` at ResponseStarted (a plain scan of
    # the sample says which), and they are the injected attacks of the truth file
    (sample,) = data.glob("sample-*.ndjson")
    events = [json.loads(x) for x in sample.read_text().splitlines()]
    execs = {
        e["auditID"]
        for e in events
        if e["verb"] == "create"
        and e.get("objectRef", {}).get("subresource") == "exec"
        and e["stage"] == "ResponseStarted"
    }
    truth = {
        json.loads(x)["auditID"] for x in (data / "sample-truth.jsonl").read_text().splitlines()
    }
    with DuckDBStore.open(data / "kaudit.duckdb", read_only=True) as store:
        rows = run_query(store, QUERY_A).rows
    assert execs and {r[0] for r in rows} == execs and execs <= truth
    again = kaudit("demo", "--data", str(data), "--events", "6000", "--seed", "3")
    assert "stored 0  duplicates 6,000" in again.output
    stats = json.loads(kaudit("stats", "--db", str(data / "kaudit.duckdb"), "--json").stdout)
    assert stats["events"] == 6000
