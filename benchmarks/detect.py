"""Detection benchmark (issue 6, Performance), two parts in one run:

1. Streaming: `--events` generated events (NDJSON, as `kaudit generate` writes them) through the
   bulk ingest machinery of `kaudit ingest` (Decoder batches appended to a fresh store), once with
   no rules and once running every enabled built-in streaming rule on each committed batch
   (`batch_marker` before the append, `run_streaming` over the new rows after the commit).
   Both runs commit after every decoder batch, so the only difference is detection.
   Target: detection adds at most 30 % to ingest time.
2. Scheduled: every enabled scheduled/stateful built-in rule for one 15-minute window over a
   store of `--stored` events (`--base` generated events replicated in SQL, one day per copy,
   as benchmarks/query.py builds its store). Target: one round under 1 s.

    .venv/bin/python benchmarks/detect.py [--events 1000000] [--stored 10000000] [--base 100000]
        [--dir /tmp/kaudit-detect-bench] [--skip-streaming] [--skip-scheduled]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from kaudit.detect.compile import Window
from kaudit.detect.engine import StreamingPlan, batch_marker, run_rule, run_streaming
from kaudit.detect.load import builtin_rules
from kaudit.detect.model import Rule
from kaudit.event.decode import DecodeOptions, Decoder, expand_inputs
from kaudit.sample.generate import generate
from kaudit.sources.bulk import read_ahead
from kaudit.store.duckdb import ROWS, VIRTUAL, DuckDBStore


def ingest_run(src: Path, db: Path, plan: StreamingPlan | None) -> tuple[float, float, int]:
    """(total seconds, seconds inside detection, hits) for one ingest of `src` into `db`."""
    for p in (db, Path(str(db) + ".wal")):
        p.unlink(missing_ok=True)
    store = DuckDBStore.open(db)
    decoder = Decoder(DecodeOptions(cluster="bench"))
    detect_s = 0.0
    hits = 0
    t0 = time.perf_counter()
    for inp in expand_inputs([str(src)]):
        for batch, _rejects in read_ahead(decoder.batches(inp)):
            t1 = time.perf_counter()
            marker = batch_marker(store) if plan is not None else -1
            detect_s += time.perf_counter() - t1
            store.begin()
            store.append(batch)
            store.commit()
            if plan is not None:
                t1 = time.perf_counter()
                hits += len(run_streaming(store, plan, marker))
                detect_s += time.perf_counter() - t1
    total = time.perf_counter() - t0
    store.close()
    return total, detect_s, hits


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
        plan = StreamingPlan.build(streaming)
        print(f"streaming: {args.events:,} events, {len(streaming)} streaming rules")
        base_s, _, _ = ingest_run(src, work / "ingest.duckdb", None)
        print(f"  ingest, no rules        {base_s:7.1f} s  {args.events / base_s:9,.0f} ev/s")
        with_s, det_s, hits = ingest_run(src, work / "ingest.duckdb", plan)
        print(
            f"  ingest + streaming rules {with_s:6.1f} s  {args.events / with_s:9,.0f} ev/s"
            f"  (detection {det_s:.1f} s, {hits:,} hits)"
        )
        over = (with_s - base_s) / base_s * 100
        print(f"  overhead {over:+.1f} % (target <= 30 %)")

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
