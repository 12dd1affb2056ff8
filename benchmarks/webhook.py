"""Webhook throughput: 4 concurrent senders posting 400-event EventLists to `kaudit serve`.

Prints events/s acknowledged and events/s stored (until the store has every event: the webhook
acknowledges once the events are in its journal, and the store takes them from there), p50/p99
time to acknowledge and the server's peak RSS, next to the baseline measured in the same run:
the same events through `kaudit ingest` (one NDJSON file; `--no-detect` with `--no-rules`).

    .venv/bin/python benchmarks/webhook.py [--events 200000] [--senders 4] [--tls]

Senders are processes (not threads) with pre-encoded bodies, so the client costs little; on a
2-core machine they still share the CPU with the server. Targets (issue 5): >= 50,000
events/s, p99 < 250 ms, RSS < 1 GB.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sender(
    port: int,
    token: str,
    bodies: list[bytes],
    ca: str | None,
    out: mp.Queue,  # type: ignore[type-arg]
) -> None:
    if ca:
        ctx = ssl.create_default_context(cafile=ca)
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, context=ctx, timeout=60
        )
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    lat: list[float] = []
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    for body in bodies:
        while True:
            t0 = time.perf_counter()
            conn.request("POST", "/audit/webhook", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                lat.append(time.perf_counter() - t0)
                break
            time.sleep(0.05)  # 503 overloaded: the apiserver would retry
    conn.close()
    out.put(lat)


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--batch", type=int, default=400)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--group", type=int, default=None, help="writer.max_group_events")
    ap.add_argument(
        "--no-rules", action="store_true", help="serve without live detection (alerts off)"
    )
    args = ap.parse_args()

    from kaudit.sample.generate import generate, write_ndjson

    work = Path(tempfile.mkdtemp(prefix="kaudit-bench-"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    events = list(generate(args.events, 7, start))
    ndjson = work / "events.ndjson"
    write_ndjson(ndjson, args.events, 7, start)
    bodies = [
        orjson.dumps(
            {
                "kind": "EventList",
                "apiVersion": "audit.k8s.io/v1",
                "metadata": {},
                "items": events[i : i + args.batch],
            }
        )
        for i in range(0, len(events), args.batch)
    ]
    del events
    mb = ndjson.stat().st_size / 1e6
    print(f"{args.events:,} events, {mb:.0f} MB, {len(bodies)} bodies "
          f"(prepared in {time.perf_counter() - t0:.1f} s)")  # fmt: skip

    # --- baseline: kaudit ingest -----------------------------------------------------------
    db0 = work / "ingest" / "kaudit.duckdb"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(Path(PY).parent / "kaudit"), "ingest", "--db", str(db0), "--no-progress",
         *(["--no-detect"] if args.no_rules else []), str(ndjson)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    ingest_s = time.perf_counter() - t0
    if proc.returncode not in (0, 2):
        raise SystemExit(proc.stderr)

    # --- kaudit serve ----------------------------------------------------------------------
    port = _port()
    data = work / "serve"
    cfg: dict[str, object] = {
        "db": str(data / "kaudit.duckdb"),
        "port": port,
        "log_level": "warning",
        "metrics_need_token": False,
    }
    if args.no_rules:
        cfg["alerts"] = {"enabled": False}
    if args.group:
        cfg["writer"] = {"max_group_events": args.group}
    ca = None
    if args.tls:
        subprocess.run(
            [PY, "-m", "kaudit.serve", "certs", "create", "--dir", str(work / "tls")], check=True
        )
        cfg["tls"] = {"cert": str(work / "tls/server.pem"), "key": str(work / "tls/server-key.pem")}
        ca = str(work / "tls/ca.pem")
    (work / "kaudit.yaml").write_text(orjson.dumps(cfg).decode())  # JSON is YAML
    from kaudit.serve.auth import TokenStore

    token = TokenStore(data / "tokens.json").create("ingest", "ingest", "bench", "bench")[0]
    server = subprocess.Popen(
        [PY, "-m", "kaudit.serve", "serve", "--config", str(work / "kaudit.yaml")],
        stderr=(work / "serve.log").open("wb"),
    )
    try:
        for _ in range(200):
            try:
                conn = (
                    http.client.HTTPSConnection(
                        "127.0.0.1", port, context=ssl.create_default_context(cafile=ca)
                    )
                    if ca
                    else http.client.HTTPConnection("127.0.0.1", port)
                )
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        shares = [bodies[i :: args.senders] for i in range(args.senders)]
        procs = [mp.Process(target=_sender, args=(port, token, share, ca, out)) for share in shares]
        t0 = time.perf_counter()
        for p in procs:
            p.start()
        lat: list[float] = []
        for _ in procs:
            lat.extend(out.get())
        serve_s = time.perf_counter() - t0
        for p in procs:
            p.join()

        def scrape() -> dict[str, float]:
            conn = (
                http.client.HTTPSConnection(
                    "127.0.0.1", port, context=ssl.create_default_context(cafile=ca)
                )
                if ca
                else http.client.HTTPConnection("127.0.0.1", port)
            )
            conn.request("GET", "/metrics")
            return {
                line.split()[0]: float(line.split()[1])
                for line in conn.getresponse().read().decode().splitlines()
                if line.startswith(("kaudit_writer_", "kaudit_journal_"))
            }

        # acknowledged is not stored: the journal's reader may still be working
        writer = scrape()
        while writer.get("kaudit_writer_events_total", 0) < args.events:
            time.sleep(0.02)
            writer = scrape()
        stored_s = time.perf_counter() - t0
        rss = _rss_kb(server.pid)
    finally:
        server.terminate()
        server.wait(60)

    ingest_eps = args.events / ingest_s
    serve_eps = args.events / serve_s
    print(f"{'':28}{'events/s':>12}{'seconds':>10}")
    print(f"{'kaudit ingest (baseline)':28}{ingest_eps:>12,.0f}{ingest_s:>10.2f}")
    print(f"{'webhook, acknowledged':28}{serve_eps:>12,.0f}{serve_s:>10.2f}")
    stored_eps = args.events / stored_s
    print(f"{'webhook, stored (end to end)':28}{stored_eps:>12,.0f}{stored_s:>10.2f}")
    print(
        f"ack latency: p50 {_pct(lat, 50) * 1000:.0f} ms, p99 {_pct(lat, 99) * 1000:.0f} ms, "
        f"max {max(lat) * 1000:.0f} ms over {len(lat)} requests"
    )
    groups = writer.get("kaudit_writer_groups_total", 0) or 1
    per_group = writer.get("kaudit_writer_events_total", 0) / groups
    storing = writer.get("kaudit_writer_commit_seconds_total", 0)
    print(
        f"writer: {groups:.0f} group commits, {per_group:.0f} events each, {storing:.2f} s storing"
    )
    print(f"server peak RSS: {rss / 1024:.0f} MB")
    print(f"targets: >= 50,000 events/s, p99 < 250 ms, RSS < 1024 MB ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
