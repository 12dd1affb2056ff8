"""`kaudit query` (SLS `search | SQL` on the store) and `kaudit intel` (geo / bad-IP data)."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
import orjson

from kaudit import units
from kaudit.errors import ConfigError, InputError, Location
from kaudit.query.values import json_value

DEFAULT_DB = Path("kaudit-data") / "kaudit.duckdb"


def parse_duration(text: str) -> int:
    """`15m`, `2h`, `7d`, `1h30m` -> seconds."""
    try:
        return units.parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"--last: {exc}") from None


def parse_time(text: str, tz: str, option: str) -> int:
    """Unix seconds, or ISO 8601 (a time without offset is in the display zone)."""
    t = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return int(float(t))
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise ConfigError(f"{option}: not a time: {text!r} (ISO 8601 or unix seconds)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(tz))
    return int(dt.timestamp())


def render_json(columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    """One JSON array of objects keyed by the column names exactly as the query names them."""
    objs = [{c: json_value(v) for c, v in zip(columns, row, strict=True)} for row in rows]
    return orjson.dumps(objs, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


def render_csv(columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow(["" if v is None else _text(v) for v in row])
    return buf.getvalue()


def _text(v: Any) -> str:
    if isinstance(v, dict | list):
        return orjson.dumps(json_value(v)).decode()
    return str(json_value(v))


def render_table(columns: tuple[str, ...], rows: list[tuple[Any, ...]], elapsed: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in rows:
        table.add_row(*("NULL" if v is None else _text(v) for v in row))
    console = Console()
    console.print(table)
    console.print(f"{len(rows)} row(s) in {elapsed * 1000:.1f} ms", style="dim")


@click.command("query")
@click.argument("text", metavar="QUERY")
@click.option("--db", "db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
@click.option("--from", "from_", metavar="T", help="window start: ISO 8601 or unix seconds")
@click.option("--to", "to", metavar="T", help="window end (exclusive)")
@click.option("--last", metavar="DURATION", help="window ending now, e.g. 15m, 2h, 7d")
@click.option(
    "--tz",
    metavar="ZONE",
    help="display time zone (default: KAUDIT_TZ, else `tz` of kaudit.yaml, else the machine's)",
)
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    default=None,
    help="kaudit.yaml to read `tz` from (default: ./kaudit.yaml if present)",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.option("--explain", is_flag=True, help="print the generated SQL and its parameters")
def query_cmd(
    text: str,
    db: Path,
    from_: str | None,
    to: str | None,
    last: str | None,
    tz: str | None,
    config: str | None,
    fmt: str,
    explain: bool,
) -> None:
    """Run an SLS query (`search | SQL`) on the store.

    \b
    kaudit query 'verb:delete not user.username:serviceaccount'
    kaudit query --last 1h '* | select "user.username", count(1) as n group by 1 order by n desc'
    """
    from kaudit.query.run import check_zone, compile_query, default_functions, prepare
    from kaudit.query.run import execute as run_compiled

    if tz is None and not os.environ.get("KAUDIT_TZ"):
        from kaudit.serve.config import load_config

        path = config or ("kaudit.yaml" if Path("kaudit.yaml").exists() else None)
        tz = load_config(path).tz if path else None
    zone = check_zone(tz)
    if last and (to or from_):
        raise ConfigError("--last cannot be combined with --from/--to")
    start = end = None
    if last:
        end = int(time.time())
        start = end - parse_duration(last)
    if from_:
        start = parse_time(from_, zone, "--from")
    if to:
        end = parse_time(to, zone, "--to")
    compiled = compile_query(text, start=start, end=end, tz=zone)
    if explain:
        click.echo("-- duckdb")
        click.echo(compiled.sql)
        click.echo("-- parameters: " + orjson.dumps(json_value(list(compiled.params))).decode())
        return
    from kaudit.serve.client import store_or_remote
    from kaudit.store.base import QueryResult

    store, remote = store_or_remote(db, read_only=True)  # the server's API if it holds the DB
    if remote is not None:
        answer = remote.query(text, start, end, zone)
        rows = [tuple(r) for r in answer["rows"]]
        result = QueryResult(tuple(answer["columns"]), rows, float(answer["elapsed_s"]))
    else:
        try:
            fns = default_functions(db.parent / "intel")
            prepare(store, fns)
            fns.start_query()
            result = run_compiled(store, compiled)
        finally:
            store.close()
    if fmt == "json":
        click.echo(render_json(result.columns, result.rows))
    elif fmt == "csv":
        sys.stdout.write(render_csv(result.columns, result.rows))
    else:
        render_table(result.columns, result.rows, result.elapsed_s)


@click.group("intel")
def intel_cmd() -> None:
    """Geo and threat-intel data for the ip_* and security_check_ip functions."""


def _check_intel_file(path: Path) -> str:
    from kaudit.enrich.intel import read_list
    from kaudit.enrich.libloc import flagged_networks

    suffix = path.suffix.lower()
    if suffix == ".mmdb":
        import maxminddb

        try:
            with maxminddb.open_database(str(path)) as reader:
                kind = str(reader.metadata().database_type)
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as e:
            raise InputError(f"not a readable mmdb file: {e}", Location(str(path))) from None
        return f"mmdb geo database ({kind})"
    if suffix == ".db":
        n = sum(1 for _ in flagged_networks(path))
        return f"libloc database: {n} drop/anonymous-proxy networks"
    if suffix in (".txt", ".list", ".csv"):
        return f"bad-IP list: {len(read_list(path))} networks"
    raise InputError(
        "unknown intel file type: use .mmdb (MaxMind/DB-IP), .db (IPFire libloc) or "
        ".txt/.list (one IP or CIDR per line)",
        Location(str(path)),
    )


@intel_cmd.command("add")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--data",
    "data",
    type=click.Path(path_type=Path),
    default=DEFAULT_DB.parent,
    show_default=True,
    help="kaudit data directory (the store's directory)",
)
def intel_add(file: Path, data: Path) -> None:
    """Add an mmdb geo database or a bad-IP list (used by every later query)."""
    if not file.is_file():
        raise InputError("no such file", Location(str(file)))
    what = _check_intel_file(file)
    dest_dir = data / "intel"
    dest_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(file, dest_dir / file.name)
    click.echo(f"added {file.name}: {what} -> {dest_dir / file.name}")


@intel_cmd.command("list")
@click.option(
    "--data", "data", type=click.Path(path_type=Path), default=DEFAULT_DB.parent, show_default=True
)
def intel_list(data: Path) -> None:
    """Show the intel files in use (the bundled defaults first)."""
    from kaudit.enrich.intel import DEFAULT_LIST
    from kaudit.enrich.xdb import default_xdb_path

    click.echo(f"geo (bundled): ip2region {default_xdb_path()}")
    click.echo(f"bad networks (bundled, CC-BY-SA-4.0 IPFire): {DEFAULT_LIST}")
    d = data / "intel"
    if d.is_dir():
        for f in sorted(d.iterdir()):
            click.echo(f"added: {f}")


COMMANDS: dict[str, click.Command] = {"query": query_cmd, "intel": intel_cmd}
