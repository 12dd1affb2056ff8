"""The public query API: compile an SLS query (`search | SQL`) and run it on a store.

    compile_query(text, start=..., end=..., tz=...) -> CompiledQuery  # SQL text + bound values
    run_query(store, text, start=..., end=..., tz=...) -> QueryResult  # columns, rows, timing

The time window `[start, end)` is in unix seconds (or datetimes) and is never part of the text
(spec sls-query §1.1). `tz` is the display time zone of `date_format`/`from_unixtime`; the
default is the machine's zone.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
from duckdb.func import FunctionNullHandling, PythonUDFType
from sqlglot import exp

from kaudit.enrich.functions import IpFunctions, vectorised
from kaudit.enrich.geo import ChainProvider, GeoProvider, Ip2RegionProvider, MmdbProvider
from kaudit.enrich.intel import load_networks
from kaudit.errors import ConfigError, QueryError
from kaudit.query import sls
from kaudit.query.dialect import DUCKDB, Target
from kaudit.query.json_leaves import json_leaves
from kaudit.query.time_series import rewrite_time_series
from kaudit.query.to_sql import Params, column, compile_search
from kaudit.store.base import CompiledQuery, QueryResult
from kaudit.store.schema import COLUMNS

TimeBound = int | float | datetime | None


class ReadableStore(Protocol):
    """What the query layer needs of a store: a cursor on its DuckDB database."""

    def reader(self) -> duckdb.DuckDBPyConnection: ...


def local_zone() -> str:
    """The machine's time zone name (TZ, /etc/timezone, /etc/localtime), else UTC."""
    env = os.environ.get("TZ", "").lstrip(":")
    if env:
        return env
    try:
        name = Path("/etc/timezone").read_text().strip()
        if name:
            return name
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    return "UTC"


def check_zone(tz: str | None) -> str:
    """The display zone: `tz`, else the KAUDIT_TZ setting, else the machine's zone."""
    name = tz or os.environ.get("KAUDIT_TZ") or local_zone()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai)"
        ) from None
    return name


def _seconds(t: TimeBound) -> int | None:
    if t is None:
        return None
    if isinstance(t, datetime):
        return int(t.timestamp())
    return int(t)


def compile_query(
    text: str,
    *,
    start: TimeBound = None,
    end: TimeBound = None,
    tz: str | None = None,
    target: Target = DUCKDB,
    default_limit: int | None = sls.DEFAULT_LIMIT,
) -> CompiledQuery:
    """Compile `search | SQL` (or a bare search) into SQL for `target` with bound values.

    Compiled text is cached: a scheduled rule runs the same query every minute with another
    window, and the window is only parameters (except for `time_series`, whose buckets are
    laid out over the window, so there the window is part of the cache key).
    """
    zone = check_zone(tz)
    lo, hi = _seconds(start), _seconds(end)
    exact = "time_series" in text.lower()
    key_lo = lo if exact or lo is None else 0
    key_hi = hi if exact or hi is None else 0
    sql, params = _compile(text, zone, key_lo, key_hi, target, default_limit)
    window = tuple(v for v in (lo, hi) if v is not None)
    if window:  # the window values are always the last parameters
        params = params[: -len(window)] + window
    return CompiledQuery(sql, params)


@functools.lru_cache(maxsize=256)
def _compile(
    text: str,
    zone: str,
    lo: int | None,
    hi: int | None,
    target: Target,
    default_limit: int | None,
) -> tuple[str, tuple[Any, ...]]:
    search_text, sql_text, sql_offset = sls.split_query(text)
    params = Params()
    where = compile_search(search_text, params, target)
    time_preds: list[exp.Expr] = []
    if lo is not None:
        time_preds.append(exp.GTE(this=column("__time__"), expression=params.add(lo)))
    if hi is not None:
        time_preds.append(exp.LT(this=column("__time__"), expression=params.add(hi)))
    for p in time_preds:
        where = p if where is None else exp.and_(exp.paren(where), p)
    ctx = sls.SqlContext(text, sql_offset, zone)
    tree: exp.Query
    if sql_text is None:
        # A bare search lists the matching events, newest first.
        tree = exp.select(*(column(c.name) for c in COLUMNS)).from_(sls.LOG_TABLE)
        tree = tree.order_by(exp.Ordered(this=column("__time__"), desc=True))
        if default_limit is not None:
            tree = tree.limit(default_limit)
    else:
        parsed = sls.parse_sql(sql_text, ctx)
        if parsed.find(exp.Placeholder) is not None:
            raise ctx.fail(None, "query parameters ('?') are not allowed in the SQL part")
        rewriter = sls.Rewriter(ctx, target)
        parsed = rewrite_time_series(parsed, rewriter, lo, hi)
        tree = rewriter.rewrite(parsed, default_limit)
    tree = sls.with_log(tree, where)
    return tree.sql(dialect=target.sqlglot_dialect), tuple(params.values)


# Functions registered per database (cursors of one connection share them), with the cursor
# they were registered on: it must stay open while they are used (DuckDB keeps the Python
# callables alive through it; closing it while a query calls them crashes the process).
_FUNCTIONS: weakref.WeakKeyDictionary[Any, tuple[IpFunctions, duckdb.DuckDBPyConnection]] = (
    weakref.WeakKeyDictionary()
)
_PREPARE_LOCK = threading.Lock()  # two first queries at once must not register twice


def default_functions(intel_dir: Path | None = None) -> IpFunctions:
    """ip2region + the bundled bad-network list, plus what `kaudit intel add` put in intel_dir."""
    providers: list[GeoProvider] = []
    extra_lists: list[Path] = []
    if intel_dir is not None and intel_dir.is_dir():
        for f in sorted(intel_dir.iterdir()):
            if f.suffix == ".mmdb":
                providers.append(MmdbProvider(f))
            elif f.suffix in (".txt", ".list", ".db", ".csv"):
                extra_lists.append(f)
    providers.append(Ip2RegionProvider())
    geo: GeoProvider = providers[0] if len(providers) == 1 else ChainProvider(providers)
    return IpFunctions(geo, load_networks(extra_lists))


def prepare(store: ReadableStore, functions: IpFunctions | None = None) -> IpFunctions:
    """Register the query UDFs on the store's database once; returns the functions in use."""
    with _PREPARE_LOCK:
        return _prepare(store, functions)


def prepared(store: ReadableStore, fallback: Callable[[], IpFunctions]) -> IpFunctions:
    """The functions registered on the store's database, registering `fallback()` only if
    there are none. Unlike `prepare` with another set, it never drops registered functions:
    that frees Python callables a query on another cursor may be running (SIGSEGV)."""
    with _PREPARE_LOCK:
        known = _FUNCTIONS.get(store)
        return known[0] if known is not None else _prepare(store, fallback())


def _prepare(store: ReadableStore, functions: IpFunctions | None) -> IpFunctions:
    known = _FUNCTIONS.get(store)
    if known is not None and (functions is None or functions is known[0]):
        return known[0]
    fns = functions or default_functions()
    if known is not None:
        old = known[1]
        for name in [*fns.scalar_udfs(), "kaudit_json_leaves"]:
            _drop_function(old, name)
    cur = store.reader()
    fns.register(cur)
    cur.create_function(
        "kaudit_json_leaves",
        vectorised(json_leaves, 2, "VARCHAR[]"),
        ["VARCHAR", "VARCHAR"],
        "VARCHAR[]",
        type=PythonUDFType.ARROW,
        null_handling=FunctionNullHandling.SPECIAL,
        side_effects=False,
    )
    _FUNCTIONS[store] = (fns, cur)
    return fns


def _drop_function(cur: duckdb.DuckDBPyConnection, name: str) -> None:
    with contextlib.suppress(duckdb.Error, ValueError):  # not registered yet
        cur.remove_function(name)


def run_query(
    store: ReadableStore,
    text: str,
    *,
    start: TimeBound = None,
    end: TimeBound = None,
    tz: str | None = None,
    functions: IpFunctions | None = None,
) -> QueryResult:
    """Compile and run one query; bad queries raise QueryError (with a position when known)."""
    compiled = compile_query(text, start=start, end=end, tz=tz)
    fns = prepare(store, functions)
    fns.start_query()
    return execute(store, compiled)


def execute(store: ReadableStore, compiled: CompiledQuery) -> QueryResult:
    cur = store.reader()
    try:
        t0 = time.perf_counter()
        try:
            rel = cur.execute(compiled.sql, list(compiled.params))
            columns = tuple(d[0] for d in rel.description or ())
            rows = rel.fetchall()
        except duckdb.Error as e:
            # Errors the compiler cannot foresee (a regex RE2 rejects, a failed cast on data).
            detail = " ".join(str(e).split())
            raise QueryError(f"the query failed while running: {detail}") from None
        return QueryResult(columns, rows, time.perf_counter() - t0)
    finally:
        cur.close()
