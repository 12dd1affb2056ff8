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


def test_offline_demo_runs_and_is_idempotent(kaudit: Callable[..., Result], tmp_path: Path) -> None:
    data = tmp_path / "kd"
    res = kaudit("demo", "--offline", "--data", str(data), "--events", "6000", "--seed", "3")
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
    again = kaudit("demo", "--offline", "--data", str(data), "--events", "6000", "--seed", "3")
    assert "stored 0  duplicates 6,000" in again.output
    stats = json.loads(kaudit("stats", "--db", str(data / "kaudit.duckdb"), "--json").stdout)
    assert stats["events"] == 6000


def test_live_demo_serves_replays_and_shows_the_brief_alerts(tmp_path: Path) -> None:
    """The default demo: kaudit serve, the webhook, alerts on the console channel and in the
    alerts table (7.1 and 7.2 among them), the summaries through the API, a clean stop."""
    import subprocess
    import sys
    import time

    data = tmp_path / "live"
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-c", "from kaudit.cli.main import main; main()", "demo",
         "--data", str(data), "--events", "8000", "--seed", "4"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**__import__("os").environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    assert time.monotonic() - t0 < 90
    console = [x for x in out.splitlines() if x.startswith("ALERT ")]
    assert any(" exec-into-container " in x and "事件ID=" in x for x in console), out[-3000:]
    assert any(" public-ip-failed-requests " in x for x in console), out[-3000:]
    assert "sent 8,000 events" in out
    for title, _ in (*SUMMARY, *ATTACKS):
        assert title in out
    assert not (data / "serve.json").exists()  # the server stopped and cleaned up
    with DuckDBStore.open(data / "kaudit.duckdb", read_only=True) as store:
        rules = {r[0] for r in store.reader().execute("SELECT rule FROM alerts").fetchall()}
        n = store.reader().execute("SELECT count(*) FROM events").fetchone()
    assert {"exec-into-container", "public-ip-failed-requests"} <= rules
    assert n == (8000,)
