"""Benchmark: `kaudit ingest` of generated NDJSON into a fresh store, next to DuckDB's own
`read_json` loading the same file into a table with the same typed columns, in the same run.

    .venv/bin/python benchmarks/ingest.py [--events 1000000] [--dir /tmp/kaudit-bench]
        [--repeat 5] [--split 10]

Each side runs in its own process so that its peak RSS is its own (wait4), `--repeat` rounds
of the three, each round in another order; the machine is shared and noisy (a run is slowed,
never sped up, by its neighbours, by up to a quarter from one minute to the next), so each
side's best time is kept, the peak RSS is the highest of its runs, and each round's own
ratio is printed, with their median: a round's runs follow each other within seconds, while
the two sides' best runs may be minutes apart. `--split N` also times `kaudit ingest` of the
same events as a directory of N files (rotated logs; 0: not). Targets on the 2-core
machine: kaudit >= 150,000 events/s and >= 0.8x the baseline's rate; peak RSS < 2 GB.
The baseline stores only the typed columns (it has no way to keep the events losslessly);
kaudit also keeps every event whole, which is what `export` gives back. A second reference,
the "lossless floor", is DuckDB doing only that part of the job in one statement (see LOSSLESS).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from kaudit.store.extract import transform_spec
from kaudit.store.schema import COLUMNS

# The baseline: read_json with the event's structure typed, flattened into the same columns.
BASELINE = r"""
import sys, time, duckdb
src, db, spec, select = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
con = duckdb.connect(db)
con.execute("SET TimeZone = 'UTC'")
con.execute("SET enable_progress_bar = false")
t0 = time.perf_counter()
con.execute(
    f"CREATE TABLE events AS SELECT {select} FROM "
    f"read_json(?, format='newline_delimited', columns={spec}, maximum_object_size=16777216) t",
    [src],
)
con.execute("CHECKPOINT")
n = con.execute("SELECT count(*) FROM events").fetchone()[0]
print(n, time.perf_counter() - t0)
"""


# The lossless floor: what DuckDB itself takes to do the part of kaudit's job that needs no
# judgement, in one parallel statement: read the file, parse each line once, and store kaudit's
# columns plus the event's text (zstd), into kaudit's own table. No validation, no rejects, no
# deduplication, no redaction. Whatever kaudit adds costs on top of this.
LOSSLESS = r"""
import sys, time
from kaudit.store.duckdb import ROWS, STORED, DuckDBStore, _ident
from kaudit.store.extract import column_exprs, transform_spec
src, db = sys.argv[1], sys.argv[2]
store = DuckDBStore.open(db)
exprs = column_exprs(STORED)
names = [c.name for c in STORED]
select = ", ".join(f"{exprs[n]} AS {_ident(n)}" for n in names)
cols = ", ".join([*(_ident(n) for n in names), "raw", "size", "source", "seq"])
t0 = time.perf_counter()
store._con.execute(
    f"INSERT INTO {ROWS} ({cols}) SELECT {select}, text, strlen(text), 'bench', 0 FROM ("
    f"SELECT text, false AS redacted, 'default' AS cluster, "
    f"json_transform(text, '{transform_spec(STORED)}') AS t FROM ("
    f"SELECT json::VARCHAR AS text FROM read_ndjson_objects(?, maximum_object_size=16777216)))",
    [src],
)
store._con.execute("CHECKPOINT")
print(store.count(), time.perf_counter() - t0)
"""


def _duck_struct(spec: object) -> str:
    """A json_transform spec (nested dict of type names) as a read_json `columns` literal."""
    assert isinstance(spec, dict)
    parts = []
    for key, value in spec.items():
        if isinstance(value, dict):
            inner = ", ".join(
                f'"{k}" {v if isinstance(v, str) else "JSON"}' for k, v in value.items()
            )
            parts.append(f"'{key}': 'STRUCT({inner})'")
        else:
            parts.append(f"'{key}': '{value}'")
    return "{" + ", ".join(parts) + "}"


def _baseline_select() -> str:
    out = []
    for col in COLUMNS:
        if col.path is None:
            expr = {"cluster": "'default'", "__time__": "NULL", "redacted": "false"}[col.name]
            if col.name == "__time__":
                expr = "CAST(epoch(TRY_CAST(t.stageTimestamp AS TIMESTAMPTZ)) AS BIGINT)"
        elif col.path[0] == "annotations" and len(col.path) > 1:
            expr = f"json_extract_string(t.annotations, '$.\"{col.path[1]}\"')"
        else:
            expr = "t." + ".".join(f'"{p}"' for p in col.path)
            if col.sql_type == "TIMESTAMP":
                expr = f"CAST(TRY_CAST({expr} AS TIMESTAMPTZ) AS TIMESTAMP)"
            elif col.sql_type == "INTEGER":
                expr = f"TRY_CAST({expr} AS INTEGER)"
        out.append(f'{expr} AS "{col.name}"')
    return ", ".join(out)


def _run(cmd: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes, stdout) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out = proc.stdout.read() if proc.stdout else ""
    if status != 0 and os.waitstatus_to_exitcode(status) not in (0, 2):
        raise SystemExit(f"{cmd[0]} failed: {status}")
    return wall, usage.ru_maxrss * 1024, out


def _split(src: Path, n: int, work: Path) -> Path:
    """`src` cut into `n` files of as many lines each, in a directory of their own (made once)."""
    out = work / f"{src.stem}-in-{n}"
    if out.is_dir() and len(list(out.iterdir())) == n:
        return out
    out.mkdir(exist_ok=True)
    lines = sum(1 for _ in src.open("rb"))
    per = -(-lines // n)
    with src.open("rb") as f:
        for i in range(n):
            with (out / f"audit-{i:03d}.log").open("wb") as part:
                part.writelines(f.readline() for _ in range(per))
    return out


def _one(name: str, src: Path, work: Path) -> tuple[int, float, int, int]:
    """(events stored, wall seconds, peak RSS bytes, bytes on disk) of one run into a fresh
    store."""
    db = work / f"{name}.duckdb"
    for p in (db, Path(str(db) + ".wal")):
        p.unlink(missing_ok=True)
    if name.startswith("kaudit"):
        cmd = [
            str(Path(sys.executable).with_name("kaudit")),
            "ingest",
            "--db",
            str(db),
            "--json",
            "--no-progress",
            "--no-detect",  # the store's path; benchmarks/detect.py times the rules
            str(src),
        ]
        wall, rss, out = _run(cmd)
        n = json.loads(out)["stored"]
    elif name == "lossless":
        wall, rss, out = _run([sys.executable, "-c", LOSSLESS, str(src), str(db)])
        n = int(out.split()[0])
    else:
        spec = _duck_struct(json.loads(transform_spec()))
        cmd = [sys.executable, "-c", BASELINE, str(src), str(db), spec, _baseline_select()]
        wall, rss, out = _run(cmd)
        n = int(out.split()[0])
    return n, wall, rss, db.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", default="/tmp/kaudit-bench")
    ap.add_argument("--repeat", type=int, default=5, help="rounds of the runs")
    ap.add_argument("--split", type=int, default=10, help="files of the directory run (0: none)")
    args = ap.parse_args()
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    src = work / f"audit-{args.events}-{args.seed}.ndjson"
    if not src.exists():
        print(f"generating {args.events:,} events -> {src}", flush=True)
        subprocess.run(
            [
                str(Path(sys.executable).with_name("kaudit")),
                "generate",
                "--events",
                str(args.events),
                "--seed",
                str(args.seed),
                "--start",
                "2025-01-01T00:00:00Z",
                "--out",
                str(src),
                "-q",
            ],
            check=True,
        )
    size = src.stat().st_size
    print(
        f"input: {args.events:,} events, {size / 1e6:,.0f} MB ({size / args.events:,.0f} B/event)"
    )

    names = ["baseline", "lossless", "kaudit"]
    inputs = dict.fromkeys(names, src)
    if args.split > 1:
        names.append("kaudit-dir")
        inputs["kaudit-dir"] = _split(src, args.split, work)
    runs: dict[str, list[tuple[int, float, int, int]]] = {name: [] for name in names}
    ratios: list[float] = []  # each round's kaudit / baseline
    for r in range(max(1, args.repeat)):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            runs[name].append(_one(name, inputs[name], work))
        rate = {name: runs[name][-1][0] / runs[name][-1][1] for name in names}
        ratios.append(rate["kaudit"] / rate["baseline"])
        line = (
            f"round {r + 1}: kaudit {rate['kaudit']:,.0f} events/s, "
            f"{rate['kaudit'] / rate['baseline']:.2f}x the baseline, "
            f"{rate['kaudit'] / rate['lossless']:.2f}x the lossless floor"
        )
        if "kaudit-dir" in rate:
            line += (
                f"; {args.split} files {rate['kaudit-dir']:,.0f} events/s, "
                f"{rate['kaudit-dir'] / rate['kaudit']:.2f}x one file"
            )
        print(line, flush=True)
    results = {
        name: (
            rs[0][0],
            min(w for _, w, _, _ in rs),
            max(rss for _, _, rss, _ in rs),
            rs[-1][3],
        )
        for name, rs in runs.items()
    }

    print(f"\nbest of {max(1, args.repeat)} runs each (peak RSS: the highest)")
    print(
        f"{'':28} {'events':>10} {'seconds':>8} {'events/s':>10} {'MB/s':>7} "
        f"{'peak RSS':>9} {'B/event on disk':>16}"
    )
    for name, label in (
        ("baseline", "DuckDB read_json (baseline)"),
        ("lossless", "DuckDB, lossless floor"),
        ("kaudit", "kaudit ingest"),
        ("kaudit-dir", f"kaudit ingest, {args.split} files"),
    ):
        if name not in results:
            continue
        n, wall, rss, disk = results[name]
        print(
            f"{label:28} {n:>10,} {wall:>8.2f} {n / wall:>10,.0f} {size / wall / 1e6:>7.1f} "
            f"{rss / 2**20:>7,.0f}MB {disk / n:>16,.0f}"
        )
    (bn, bw, _, _), (kn, kw, krss, _) = results["baseline"], results["kaudit"]
    ln, lw, _, _ = results["lossless"]
    ratio = (kn / kw) / (bn / bw)
    print(
        f"\nlossless floor / baseline rate: {(ln / lw) / (bn / bw):.2f}x; "
        f"kaudit / lossless floor: {(kn / kw) / (ln / lw):.2f}x"
    )
    print(
        f"kaudit / baseline rate: median of the rounds {statistics.median(ratios):.2f}x, "
        f"best runs {ratio:.2f}x (target >= 0.8x); "
        f"kaudit {kn / kw:,.0f} events/s (target >= 150,000); "
        f"peak RSS {krss / 2**20:,.0f} MB (target < 2048 MB)"
    )


if __name__ == "__main__":
    main()
