"""The core commands: ingest, export, stats, rejects, prune and the demo."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from kaudit import units
from kaudit.errors import ConfigError
from kaudit.event.decode import FORMATS

DEFAULT_DB = "./kaudit-data/kaudit.duckdb"

db_option = click.option(
    "--db",
    "db",
    default=DEFAULT_DB,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The DuckDB store file.",
)


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `12h`, `7d`, `2w` as a timedelta; a ConfigError otherwise."""
    try:
        return timedelta(seconds=units.parse_duration(text))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


@click.command("ingest")
@db_option
@click.option(
    "--cluster", default="default", show_default=True, help="Cluster the events came from."
)
@click.option(
    "--format",
    "fmt",
    default="auto",
    show_default=True,
    type=click.Choice(list(FORMATS)),
    help="Input format; auto detects it from the first record.",
)
@click.option(
    "--csv-columns", default=None, help="Columns of a header-less CSV: a list or 'perfspec'."
)
@click.option(
    "--max-event-size",
    default="8MiB",
    show_default=True,
    help="Larger events are rejected (kept in `kaudit rejects`).",
)
@click.option(
    "--no-redact", is_flag=True, help="Keep Secret values (off by default: they are replaced)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on a terminal)."
)
@click.option(
    "--detect/--no-detect",
    default=True,
    show_default=True,
    help="Run the streaming rules over what is stored; alerts go to `kaudit alerts list`.",
)
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    type=click.Path(exists=True),
    help="Rule files or directories (default: the built-in rules).",
)
@click.argument("inputs", nargs=-1, required=True)
def ingest_cmd(
    db: str,
    cluster: str,
    fmt: str,
    csv_columns: str | None,
    max_event_size: str,
    no_redact: bool,
    as_json: bool,
    progress: bool | None,
    detect: bool,
    rule_paths: tuple[str, ...],
    inputs: tuple[str, ...],
) -> None:
    """Store audit events from files, directories or `-` (standard input).

    The streaming rules run over every committed batch, as in `kaudit serve`; their alerts are
    stored (`kaudit alerts list`), not sent: an import is history, and channels are serve's.

    Exit code: 0 when everything was stored (or already was), 2 when some input was rejected
    (see `kaudit rejects`), 1 on a fatal error.
    """
    from kaudit.event.decode import DecodeOptions, expand_inputs, resolve_csv_columns
    from kaudit.sources.bulk import ingest
    from kaudit.store.duckdb import DuckDBStore

    paths = expand_inputs(inputs)
    options = DecodeOptions(
        cluster=cluster,
        format=fmt,
        redact=not no_redact,
        max_event_size=parse_size(max_event_size),
        csv_columns=resolve_csv_columns(csv_columns),
    )
    show = sys.stderr.isatty() if progress is None else progress
    rules = _streaming_rules(rule_paths) if detect else []
    start = time.perf_counter()
    with DuckDBStore.open(db) as store, _detecting(store, rules) as detecting:
        run = functools.partial(
            ingest,
            store,
            paths,
            options,
            after_commit=detecting.committed if detecting else None,
        )
        report = _ingest_with_progress(run) if show else run()
    report.elapsed_s = time.perf_counter() - start  # with the rules' last pass
    summary = report.as_dict()
    if detecting:
        summary["alerts"] = detecting.alerts
        summary["alerts_by_rule"] = dict(sorted(detecting.by_rule.items()))
    if as_json:
        _echo_json(summary)
    else:
        _print_summary(summary, db)
    if report.totals.rejected:
        sys.exit(2)


def _streaming_rules(rule_paths: tuple[str, ...]) -> list[Any]:
    from kaudit.detect.load import builtin_rules, load_paths
    from kaudit.detect.model import Match

    rules = load_paths([Path(p) for p in rule_paths]) if rule_paths else builtin_rules()
    return [r for r in rules if r.enabled and isinstance(r.kind, Match)]


@dataclass(slots=True)
class _Detecting:
    committed: Callable[[], None]
    fingerprints: dict[str, str] = field(default_factory=dict)  # alert -> rule, raised or updated

    @property
    def alerts(self) -> int:
        return len(self.fingerprints)

    @property
    def by_rule(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rule in self.fingerprints.values():
            out[rule] = out.get(rule, 0) + 1
        return out


@contextmanager
def _detecting(store: Any, rules: list[Any]) -> Iterator[_Detecting | None]:
    """Streaming rules following an import's commits, their alerts in the alerts table."""
    if not rules:
        yield None
        return
    from kaudit.alert.model import SystemClock
    from kaudit.alert.pipeline import Notifier
    from kaudit.alert.store import AlertStore
    from kaudit.detect.engine import StreamFollower

    notifier = Notifier(AlertStore(store), {r.id: r for r in rules}, {}, [], SystemClock())
    state = _Detecting(committed=lambda: None)

    def on_hits(hits: list[Any]) -> None:
        for u in notifier.handle(hits):
            state.fingerprints[u.alert.fingerprint] = u.alert.rule_id

    follower = StreamFollower(store, rules, on_hits)
    state.committed = follower.committed
    try:
        yield state
    finally:
        follower.close()
        notifier.close()


def _ingest_with_progress(run: Callable[..., Any]) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} events"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("ingesting", total=None)

        def tick(inp: Any, n: int) -> None:
            bar.update(task, advance=n, description=Path(inp.name).name)

        return run(progress=tick)


def _print_summary(s: dict[str, Any], db: str) -> None:
    click.echo(
        f"read {s['read']:,}  stored {s['stored']:,}  duplicates {s['duplicates']:,}  "
        f"rejected {s['rejected']:,}  ({s['inputs']} input(s), {s['seconds']} s, "
        f"{s['events_per_second'] or 0:,} events/s) -> {db}"
    )
    if "alerts" in s:
        top = sorted(s["alerts_by_rule"].items(), key=lambda kv: -kv[1])[:5]
        shown = ", ".join(f"{k} {v}" for k, v in top)
        more = f" ({shown}{', ...' if len(s['alerts_by_rule']) > 5 else ''})" if top else ""
        click.echo(
            f"alerts {s['alerts']:,}{more}; see them with: kaudit alerts list"
            + ("" if db == DEFAULT_DB else f" --db {db}")
        )
    reasons = s["rejected_by_reason"]
    if reasons:
        click.echo("rejected by reason: " + ", ".join(f"{k} {v}" for k, v in reasons.items()))
        click.echo("see them with: kaudit rejects" + ("" if db == DEFAULT_DB else f" --db {db}"))


def parse_size(text: str) -> int:
    try:
        return units.parse_size(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@click.command("export")
@db_option
@click.option("--where", default=None, help="An SLS search expression selecting events.")
@click.option("--cluster", default=None, help="Only this cluster's events.")
@click.option("--out", "out", default="-", type=click.Path(dir_okay=False, allow_dash=True))
def export_cmd(db: str, where: str | None, cluster: str | None, out: str) -> None:
    """Write stored events as NDJSON, each exactly the JSON object that was ingested."""

    from kaudit.query.to_sql import selection_filter
    from kaudit.serve.client import store_or_remote

    sql, params = selection_filter(where, cluster)

    local, remote = store_or_remote(db, read_only=True)  # the server's API if it holds the DB
    stream = sys.stdout if out == "-" else open(out, "w", encoding="utf-8")  # noqa: SIM115
    try:
        if remote is not None:
            for line in remote.export(where=where, cluster=cluster):
                stream.write(line.decode())
        else:
            with local as store:
                for raw in store.iter_raw(sql, params):
                    stream.write(raw)
                    stream.write("\n")
    finally:
        if stream is not sys.stdout:
            stream.close()


@click.command("stats")
@db_option
@click.option("--json", "as_json", is_flag=True)
def stats_cmd(db: str, as_json: bool) -> None:
    """Counts by cluster, time range and size on disk."""
    from kaudit.serve.client import store_or_remote

    local, remote = store_or_remote(db, read_only=True)  # the server's API if it holds the DB
    if remote is not None:
        stats = remote.stats()["store"]
    else:
        with local as store:
            stats = store.stats()
    if as_json:
        _echo_json(stats)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{stats['path']}: {stats['events']:,} events")
    for col in ("cluster", "events", "first", "last", "raw bytes"):
        table.add_column(col)
    for c in stats["clusters"]:
        table.add_row(
            c["cluster"], f"{c['events']:,}", c["first"], c["last"], f"{c['raw_bytes']:,}"
        )
    console = Console()
    console.print(table)
    disk = stats["bytes_on_disk"]
    console.print(f"on disk: {disk:,} bytes ({stats['bytes_per_event']} bytes/event)")
    if stats["rejects"]:
        console.print("rejected: " + ", ".join(f"{k} {v}" for k, v in stats["rejects"].items()))


@click.command("rejects")
@db_option
@click.option("--reason", default=None, help="Only this reason.")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines with the raw text.")
def rejects_cmd(db: str, reason: str | None, limit: int, as_json: bool) -> None:
    """The input records that could not be stored: where, why, and their raw text."""
    from kaudit.store.duckdb import DuckDBStore

    with DuckDBStore.open(db, read_only=True) as store:
        rows = store.rejects(limit=limit, reason=reason)
    for r in rows:
        if as_json:
            click.echo(json.dumps(r, ensure_ascii=False, default=str))
            continue
        where = f"{r['source']}:{r['line']}" if r["line"] is not None else r["source"]
        raw = r["raw"] or ""
        snippet = raw[:120].replace("\n", " ") + ("…" if len(raw) > 120 else "")
        click.echo(f"{where}: {r['reason']}: {r['message']}")
        if snippet:
            click.echo(f"    {snippet}")


@click.command("prune")
@db_option
@click.option(
    "--older-than",
    "older_than",
    default=None,
    help="Delete events older than this (e.g. 7d); default: `retention` of the config file.",
)
@click.option(
    "--config",
    "config",
    default=None,
    type=click.Path(dir_okay=False),
    help="kaudit.yaml whose `retention` applies (default: ./kaudit.yaml if present).",
)
def prune_cmd(db: str, older_than: str | None, config: str | None) -> None:
    """Delete old events (retention)."""
    from kaudit.serve.client import store_or_remote
    from kaudit.serve.config import load_config

    if older_than is None:
        path = config or ("kaudit.yaml" if Path("kaudit.yaml").exists() else None)
        retention = load_config(path).retention if path else None
        if retention is None:
            raise ConfigError(
                "say how old: --older-than 7d, or `retention: 7d` in kaudit.yaml (--config)"
            )
        older_than = f"{retention}s"
    cutoff = datetime.now(UTC) - parse_duration(older_than)
    local, remote = store_or_remote(db, read_only=False)  # the server's API if it holds the DB
    if remote is not None:
        deleted = int(remote.prune(older_than)["deleted"])
    else:
        with local as store:
            deleted = store.prune(cutoff)
    click.echo(f"deleted {deleted:,} events older than {cutoff.isoformat(timespec='seconds')}")


COMMANDS: dict[str, click.Command] = {
    "ingest": ingest_cmd,
    "export": export_cmd,
    "stats": stats_cmd,
    "rejects": rejects_cmd,
    "prune": prune_cmd,
}
