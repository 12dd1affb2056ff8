"""`kaudit demo`: kaudit's main job on its embedded store, with a realistic sample.

By default it shows the SIEM live: it starts `kaudit serve` on the store (a subprocess on
127.0.0.1 with a throwaway ingest credential and a console alert channel), replays a few
minutes of generated traffic with attacks through the audit webhook the way kube-apiserver
sends it (EventList batches of up to 400, two concurrent senders, retries), waits for the
alerts — the brief's 7.1 and 7.2 among them — prints them and what the server stored, then
stops the server.

`--offline` is the earlier demo: a day of traffic (deterministic for the day, so re-running it
stores nothing twice) ingested from a file, and what an analyst asks first — written in the SLS
query language kaudit speaks, including the product brief's two queries.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import orjson

from kaudit.query.brief import QUERY_A, QUERY_B

# (title, SLS query). Each is an ordinary `kaudit query`; the demo prints them so users can
# copy them.
SUMMARY: tuple[tuple[str, str], ...] = (
    (
        "Events by verb",
        "* | SELECT verb, count(*) AS events GROUP BY verb ORDER BY events DESC",
    ),
    (
        "Top resources",
        '* | SELECT "objectRef.resource" AS resource, count(*) AS events '
        'WHERE "objectRef.resource" IS NOT NULL GROUP BY resource ORDER BY events DESC LIMIT 10',
    ),
    (
        "Top users",
        '* | SELECT "user.username" AS "user", count(*) AS events, '
        "count_if(verb IN ('create', 'update', 'patch', 'delete')) AS writes "
        'GROUP BY "user" ORDER BY events DESC LIMIT 10',
    ),
    (
        "Failures (4xx/5xx) by source IP",
        'responseStatus.code >= 400 | SELECT ip, failures, "401", "403", ip_to_domain(ip) AS '
        "domain, ip_to_country(ip) AS country, ip_to_provider(ip) AS isp FROM (SELECT CASE WHEN "
        "json_array_length(sourceIPs) = 1 THEN json_format(json_array_get(sourceIPs, 0)) ELSE "
        "sourceIPs END AS ip, count(*) AS failures, "
        'count_if("responseStatus.code" = 401) AS "401", '
        'count_if("responseStatus.code" = 403) AS "403" FROM log GROUP BY ip) '
        "ORDER BY failures DESC LIMIT 10",
    ),
)

ATTACKS: tuple[tuple[str, str], ...] = (
    ("Brief 7.1 — exec into a container (query A)", QUERY_A),
    ("Brief 7.2 — public IPs failing > 50 % of > 10 requests (query B)", QUERY_B),
    (
        "Exec/attach/port-forward over WebSocket (verb get)",
        "verb:get and (objectRef.subresource:exec or objectRef.subresource:attach or "
        'objectRef.subresource:portforward) | SELECT "user.username" AS "user", '
        '"objectRef.namespace" AS ns, "objectRef.name" AS pod, "objectRef.subresource" AS sub, '
        "count(*) AS n GROUP BY 1, 2, 3, 4 ORDER BY n DESC",
    ),
    (
        "Privileged or hostPath pods created",
        "verb:create and objectRef.resource:pods and stage:ResponseComplete and "
        "(requestObject.spec.containers.securityContext.privileged:true or "
        'requestObject.spec.volumes.hostPath.path:*) | SELECT "user.username" AS "user", '
        '"objectRef.namespace" AS ns, "objectRef.name" AS pod, '
        "json_extract_scalar(requestObject, '$.spec.volumes[0].hostPath.path') AS host_path "
        "LIMIT 20",
    ),
    (
        "cluster-admin bindings",
        "objectRef.resource:clusterrolebindings and verb:create and stage:ResponseComplete | "
        'SELECT "user.username" AS "user", "objectRef.name" AS binding, json_extract_scalar('
        "requestObject, '$.roleRef.name') AS role WHERE json_extract_scalar(requestObject, "
        "'$.roleRef.name') = 'cluster-admin' LIMIT 20",
    ),
    (
        "Secret enumeration by people",
        "objectRef.resource:secrets and verb:list and stage:ResponseComplete and user.username:* "
        "and not user.username:serviceaccount and not user.username:system | "
        'SELECT "user.username" AS "user", count(*) AS lists, '
        'count(DISTINCT "objectRef.namespace") AS namespaces GROUP BY 1 ORDER BY lists DESC',
    ),
    (
        "Anonymous access to the API",
        'user.username:"system:anonymous" and stage:ResponseComplete not requestURI:livez '
        "not requestURI:readyz not requestURI:healthz | "
        'SELECT requestURI, "responseStatus.code" AS code, count(*) AS n '
        "GROUP BY 1, 2 ORDER BY n DESC LIMIT 10",
    ),
)


@click.command("demo")
@click.option(
    "--data",
    "data_dir",
    default="./kaudit-data",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the store and the sample go.",
)
@click.option(
    "--events",
    default=None,
    type=int,
    help="Size of the sample [default: 40000 live, 200000 offline].",
)
@click.option("--seed", default=7, show_default=True)
@click.option(
    "--offline",
    is_flag=True,
    help="No server: ingest a day of traffic from a file and summarise it.",
)
def demo_cmd(data_dir: str, events: int | None, seed: int, offline: bool) -> None:
    """Start kaudit serve, replay traffic with attacks through the webhook, show the alerts."""
    if offline:
        _offline(data_dir, 200_000 if events is None else events, seed)
    else:
        _live(data_dir, 40_000 if events is None else events, seed)


def _offline(data_dir: str, events: int, seed: int) -> None:
    """Generate a day of realistic audit traffic with attacks, store it, and summarise it."""
    from rich.console import Console

    from kaudit.event.decode import DecodeOptions, expand_inputs
    from kaudit.sample.generate import write_ndjson
    from kaudit.sources.bulk import ingest
    from kaudit.store.duckdb import DuckDBStore

    console = Console()
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    # The sample covers the day before today (UTC): the same all day long, so running the demo
    # again shows idempotent ingest instead of doubling the data.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=1)
    sample = data / f"sample-{start:%Y%m%d}-{seed}-{events}.ndjson"
    if not sample.exists():
        console.rule("[bold]1. A realistic sample")
        summary = write_ndjson(sample, events, seed, start, truth_out=data / "sample-truth.jsonl")
        console.print(
            f"generated {summary.events:,} events ({summary.bytes / 1e6:.0f} MB) from "
            f"{summary.first} to {summary.last} in {summary.elapsed_s:.1f} s: "
            f"{sum(summary.attacks.values())} attack requests in {summary.campaigns} campaigns"
        )
    db = data / "kaudit.duckdb"
    console.rule("[bold]2. Ingest into the embedded store")
    with DuckDBStore.open(db) as store:
        report = ingest(store, expand_inputs([str(sample)]), DecodeOptions())
        s = report.as_dict()
        console.print(
            f"kaudit ingest {sample} -> {db}\n"
            f"read {s['read']:,}  stored {s['stored']:,}  duplicates {s['duplicates']:,}  "
            f"rejected {s['rejected']:,} in {s['seconds']} s ({s['events_per_second']:,} events/s)"
        )
        console.rule("[bold]3. What happened (kaudit query)")
        for title, query in SUMMARY:
            _show(console, store, title, query)
        console.rule("[bold]4. Attacks in the sample")
        for title, query in ATTACKS:
            _show(console, store, title, query)
    console.rule()
    console.print(
        f"The store is {db}. Try:\n"
        f"  kaudit query --db {db} 'verb:delete | SELECT \"user.username\", count(*) GROUP BY 1'\n"
        f"  kaudit stats --db {db}\n"
        "  kaudit policy recommend"
    )


def _show(console: object, store: object, title: str, query: str) -> None:
    from kaudit.query.run import run_query

    result = run_query(store, query)  # type: ignore[arg-type]
    _table(console, title, list(result.columns), list(result.rows), f"kaudit query '{query}'")


def _table(console: object, title: str, columns: list[str], rows: list[Any], query: str) -> None:
    from rich.console import Console
    from rich.table import Table

    assert isinstance(console, Console)
    table = Table(title=f"{title}  ({len(rows)} rows)", title_justify="left")
    for col in columns:
        table.add_column(col, overflow="ellipsis", no_wrap=True, max_width=44)
    for row in rows[:12]:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
    console.print(f"[dim]{query}[/dim]\n", soft_wrap=True, highlight=False)


# --- the live demo ------------------------------------------------------------------------
WANTED = ("exec-into-container", "public-ip-failed-requests")  # the brief's 7.1 and 7.2
BATCH = 400  # --audit-webhook-batch-max-size default
SENDERS = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _server(data: Path, port: int, on_line: Callable[[str], None]) -> Iterator[Any]:
    """`kaudit serve` on the demo's store with a console channel; stopped with SIGTERM (the
    way a supervisor stops it: everything acknowledged is stored)."""
    import yaml

    from kaudit.serve.client import remote_for

    config = {
        "db": str(data / "kaudit.duckdb"),
        "port": port,
        "log_level": "warning",
        "alerts": {
            "lang": "en",
            "channels": {"console": {"type": "console", "lang": "en"}},
            # Every alert is stored (`kaudit alerts list` shows them all); the console pages
            # on high and above, and on the brief's two alerts whatever their severity.
            "routes": [
                {"channels": ["console"], "min_severity": "high"},
                {
                    "channels": ["console"],
                    "rules": ["exec-into-container", "public-ip-failed-requests"],
                },
            ],
            "throttle_messages": 1000,
            "schedule_tick": 0.5,
        },
    }
    cfg_path = data / "demo-serve.yaml"
    cfg_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kaudit.serve", "serve", "--config", str(cfg_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    stderr = proc.stderr

    def pump() -> None:
        for raw in stderr:
            on_line(raw.decode("utf-8", "replace").rstrip("\n"))

    reader = threading.Thread(target=pump, name="demo-serve-stderr", daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        client = None
        while time.monotonic() < deadline and proc.poll() is None:
            client = remote_for(data / "kaudit.duckdb")
            if client is not None:
                with contextlib.suppress(Exception):
                    client.stats()
                    break
            time.sleep(0.1)
        if client is None or proc.poll() is not None:
            raise click.ClickException("kaudit serve did not start (see the lines above)")
        yield client
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        reader.join(5)


def _post(port: int, token: str, body: bytes) -> None:
    """POST like kube-apiserver's webhook: retry with backoff until accepted."""
    import http.client

    delay = 0.1
    for _ in range(30):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
            conn.request("POST", "/audit/webhook", body=body, headers=headers)
            if conn.getresponse().status < 300:
                return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        time.sleep(delay)
        delay = min(2.0, delay * 1.5)
    raise click.ClickException("the webhook did not accept a batch after 30 attempts")


def _live(data_dir: str, events: int, seed: int) -> None:
    from rich.console import Console
    from rich.markup import escape

    from kaudit.detect.model import SEVERITY_RANK
    from kaudit.sample.generate import InjectedAttack, generate
    from kaudit.serve.auth import TokenStore, tokens_path

    console = Console()
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    t_demo = time.monotonic()
    # Recent traffic ending before the current minute: the scheduled rules (the brief's 7.2
    # runs every minute over 15 minutes) see it at once, as rows that arrived late for a
    # window already run, instead of at the next tick.
    tick = datetime.now(UTC).replace(second=0, microsecond=0)
    truth: list[InjectedAttack] = []
    console.rule("[bold]1. Traffic with attacks")
    items = list(generate(events, seed, tick - timedelta(minutes=6),
                          span=timedelta(minutes=5, seconds=30), truth=truth))  # fmt: skip
    kinds = sorted({a.kind for a in truth})
    console.print(
        f"generated {len(items):,} audit events from {items[0]['stageTimestamp']} to "
        f"{items[-1]['stageTimestamp']}: {len(truth)} attack requests ({', '.join(kinds)})"
    )

    console.rule("[bold]2. kaudit serve, fed through the audit webhook")
    tokens = TokenStore(tokens_path(data))
    token, cred = tokens.create("ingest", "ingest", "demo", "demo")
    port = _free_port()
    alert_lines: list[str] = []

    def on_line(line: str) -> None:
        if line.startswith("ALERT "):
            alert_lines.append(line)
            console.print(f"[red]{escape(line)}[/red]", highlight=False, soft_wrap=True)
        elif '"level":"error"' in line or "Traceback" in line:
            console.print(f"[dim]serve: {escape(line)}[/dim]", highlight=False, soft_wrap=True)

    try:
        with _server(data, port, on_line) as client:
            console.print(
                f"kaudit serve on http://127.0.0.1:{port} (store {data / 'kaudit.duckdb'}), "
                f"console alert channel; {SENDERS} senders posting EventLists of {BATCH}"
            )
            batches = [items[i : i + BATCH] for i in range(0, len(items), BATCH)]
            todo = iter(batches)
            lock = threading.Lock()

            def sender() -> None:
                while True:
                    with lock:
                        batch = next(todo, None)
                    if batch is None:
                        return
                    body = orjson.dumps(
                        {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": batch}
                    )
                    _post(port, token, body)

            t0 = time.monotonic()
            threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            sent_s = time.monotonic() - t0
            console.print(
                f"[bold]sent {len(items):,} events in {len(batches)} batches in "
                f"{sent_s:.1f} s ({len(items) / max(sent_s, 1e-9):,.0f} events/s)[/bold]"
            )
            deadline = time.monotonic() + 30
            got: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                got = client._json("GET", "/api/alerts", limit=1000)["alerts"]
                if {a["rule"] for a in got} >= set(WANTED):
                    break
                time.sleep(0.25)
            time.sleep(1.0)  # let the last notifications print
            got = client._json("GET", "/api/alerts", limit=1000)["alerts"]

            console.rule("[bold]3. The alerts (kaudit alerts list)")
            rows = [
                [a["fingerprint"], a["status"], a["severity"], a["count"], a["rule"], a["title"]]
                for a in sorted(got, key=lambda a: (-SEVERITY_RANK[a["severity"]], a["rule"]))
            ]
            cols = ["fingerprint", "status", "severity", "count", "rule", "title"]
            _table(console, "Stored alerts", cols, rows, "kaudit alerts list")
            for rule in WANTED:
                mine = [a for a in got if a["rule"] == rule]
                if not mine:
                    console.print(f"[yellow]no {rule} alert yet[/yellow]")
                    continue
                fields = mine[0]["fields"]
                _table(console, f"{rule}: {mine[0]['title']}", list(fields),
                       [list(a["fields"].values()) for a in mine[:12]],
                       f"kaudit alerts show {mine[0]['fingerprint']}")  # fmt: skip

            console.rule("[bold]4. What happened (kaudit query, through the server's API)")
            for title, query in (*SUMMARY, *ATTACKS):
                res = client.query(query)
                _table(console, title, res["columns"], res["rows"], f"kaudit query '{query}'")
            stats = client.stats()["store"]
    finally:
        tokens.revoke(cred.id)
    db = data / "kaudit.duckdb"
    console.rule()
    console.print(
        f"{len(got)} alerts ({', '.join(sorted({a['rule'] for a in got}))}); the store holds "
        f"{stats['events']:,} events; demo took {time.monotonic() - t_demo:.0f} s.\n"
        f"kaudit serve has stopped. Try:\n"
        f"  kaudit alerts list --db {db}\n"
        f"  kaudit query --db {db} 'verb:delete | SELECT \"user.username\", count(*) GROUP BY 1'\n"
        f"  kaudit serve --config {data / 'demo-serve.yaml'}   # and send it your own audit log",
        highlight=False,
    )


COMMANDS: dict[str, click.Command] = {"demo": demo_cmd}
