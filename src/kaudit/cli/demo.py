"""`kaudit demo`: kaudit's main job on its embedded store, with a realistic sample.

It generates a day of audit traffic with attacks (deterministic for the day, so re-running it
stores nothing twice), ingests it into the DuckDB store and shows what an analyst asks first —
written in the SLS query language kaudit speaks, including the product brief's two queries.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

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
@click.option("--events", default=200_000, show_default=True, help="Size of the sample.")
@click.option("--seed", default=7, show_default=True)
def demo_cmd(data_dir: str, events: int, seed: int) -> None:
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
    from rich.console import Console
    from rich.table import Table

    from kaudit.query.run import run_query

    assert isinstance(console, Console)
    result = run_query(store, query)  # type: ignore[arg-type]
    table = Table(title=f"{title}  ({len(result.rows)} rows)", title_justify="left")
    for col in result.columns:
        table.add_column(col, overflow="ellipsis", no_wrap=True, max_width=44)
    for row in result.rows[:12]:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
    console.print(f"[dim]kaudit query '{query}'[/dim]\n", soft_wrap=True, highlight=False)


COMMANDS: dict[str, click.Command] = {"demo": demo_cmd}
