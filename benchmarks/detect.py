"""Detection benchmark (issue 6, Performance), two parts in one run:

1. Streaming: `--events` generated events (NDJSON, as `kaudit generate` writes them) through
   `kaudit ingest` into a fresh store, once with `--no-detect` and once as users run it, with
   every enabled built-in streaming rule following the import's commits. Wall time of the
   whole command, best of `--repeat` alternated runs each.
   Target: detection adds at most 30 % to ingest time.
2. Scheduled: every enabled scheduled/stateful built-in rule for one 15-minute window over a
   store of `--stored` events (`--base` generated events replicated in SQL, one day per copy,
   as benchmarks/query.py builds its store). Target: one round under 1 s.

    .venv/bin/python benchmarks/detect.py [--events 1000000] [--stored 10000000] [--base 100000]
        [--dir /tmp/kaudit-detect-bench] [--skip-streaming] [--skip-scheduled]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kaudit.detect.compile import Window
from kaudit.detect.engine import run_rule
from kaudit.detect.load import builtin_rules
from kaudit.detect.model import Rule
from kaudit.sample.generate import generate
from kaudit.store.duckdb import ROWS, VIRTUAL, DuckDBStore


def ingest_run(src: Path, db: Path, detect: bool) -> tuple[float, dict[str, Any]]:
    """(wall seconds, JSON summary) of one `kaudit ingest` of `src` into a fresh `db`."""
    for p in (db, Path(str(db) + ".wal")):
        p.unlink(missing_ok=True)
    kaudit = str(Path(sys.executable).with_name("kaudit"))
    cmd = [kaudit, "ingest", "--db", str(db), "--json", "--no-progress", str(src)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd if detect else [*cmd, "--no-detect"], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"kaudit ingest failed: {out.stderr}")
    return wall, json.loads(out.stdout)


def build_stored(path: Path, total: int, base: int) -> DuckDBStore:
    """`base` generated events, replicated in SQL (auditID and times shifted a day per copy)."""
    if path.exists():
        store = DuckDBStore.open(path)
        if store.count() == total:
            return store
        store.close()
        path.unlink()
    store = DuckDBStore.open(path)
    t0 = time.perf_counter()
    events = list(generate(base, seed=42, start=datetime(2026, 1, 5, tzinfo=UTC)))
    for i in range(0, len(events), 20_000):
        store.ingest_events(events[i : i + 20_000])
    cur = store.reader()
    cols = [
        r[0]
        for r in cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position",
            [ROWS],
        ).fetchall()
        if r[0] not in VIRTUAL
    ]
    shifted = {
        "auditID": "auditID || '-' || k",
        "__time__": "__time__ + k * 86400",
        "stageTimestamp": "stageTimestamp + to_days(k)",
        "requestReceivedTimestamp": "requestReceivedTimestamp + to_days(k)",
    }
    names = ", ".join(f'"{c}"' for c in cols)
    select = ", ".join(shifted.get(c, f'"{c}"') for c in cols)
    cur.execute(f"CREATE TEMP TABLE base AS SELECT {names} FROM {ROWS}")
    copies = (total + base - 1) // base
    for first in range(1, copies, 10):
        last = min(first + 10, copies)
        cur.execute(
            f"INSERT INTO {ROWS} ({names}) SELECT {select} FROM base, range({first}, {last}) r(k)"
        )
    cur.execute("DROP TABLE base")
    cur.execute("CHECKPOINT")
    cur.close()
    print(f"built {store.count():,} stored events in {time.perf_counter() - t0:.0f} s")
    return store


def scheduled_round(store: DuckDBStore, rules: list[Rule], end: int) -> list[tuple[str, float]]:
    out = []
    for r in rules:
        t0 = time.perf_counter()
        run_rule(store, r, Window(end - 900, end))
        out.append((r.id, time.perf_counter() - t0))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--stored", type=int, default=10_000_000)
    ap.add_argument("--base", type=int, default=100_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/kaudit-detect-bench"))
    ap.add_argument("--repeat", type=int, default=2, help="runs of each ingest (best is kept)")
    ap.add_argument("--skip-streaming", action="store_true")
    ap.add_argument("--skip-scheduled", action="store_true")
    args = ap.parse_args()
    work: Path = args.dir
    work.mkdir(parents=True, exist_ok=True)
    rules = [r for r in builtin_rules() if r.enabled]
    streaming = [r for r in rules if r.streaming]
    scheduled = [r for r in rules if not r.streaming]

    if not args.skip_streaming:
        src = work / f"audit-{args.events}.ndjson"
        if not src.exists():
            kaudit = str(Path(sys.executable).with_name("kaudit"))
            subprocess.run(
                [kaudit, "generate", "--events", str(args.events), "--seed", "1",
                 "--start", "2025-01-01T00:00:00Z", "--out", str(src), "-q"],
                check=True,
            )  # fmt: skip
        print(f"streaming: {args.events:,} events, {len(streaming)} streaming rules")
        ingest_run(src, work / "ingest.duckdb", False)  # warm-up: the file into the page cache
        runs: dict[bool, list[float]] = {False: [], True: []}
        alerts = 0
        for _ in range(args.repeat):  # alternated, so that a noisy moment hits both sides
            for detect in (False, True):
                wall, summary = ingest_run(src, work / "ingest.duckdb", detect)
                runs[detect].append(wall)
                alerts = summary.get("alerts", alerts)
        base_s, with_s = min(runs[False]), min(runs[True])
        print(f"  kaudit ingest --no-detect  {base_s:6.1f} s  {args.events / base_s:9,.0f} ev/s")
        print(
            f"  kaudit ingest (rules on)   {with_s:6.1f} s  {args.events / with_s:9,.0f} ev/s"
            f"  ({alerts:,} alerts)"
        )
        over = (with_s - base_s) / base_s * 100
        print(f"  overhead {over:+.1f} % (target <= 30 %; best of {args.repeat} each)")

    if not args.skip_scheduled:
        store = build_stored(work / "stored.duckdb", args.stored, args.base)
        row = store.reader().execute("SELECT max(__time__) FROM events").fetchone()
        end = int(row[0]) + 1 if row and row[0] is not None else 900
        print(f"scheduled: {store.count():,} stored events, {len(scheduled)} rules, 15 min window")
        scheduled_round(store, scheduled, end)  # warm-up: UDFs, caches
        times = scheduled_round(store, scheduled, end)
        for rid, s in times:
            print(f"  {rid:40} {s * 1000:7.0f} ms")
        total = sum(s for _, s in times)
        print(f"  one round {total:.2f} s (target < 1 s)")
        store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
