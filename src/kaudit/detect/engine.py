"""Running rules: the streaming pass over a batch, scheduled rounds, backtests, inline tests.

Streaming: every enabled `match` rule is one branch of a single `UNION ALL` statement; each
branch reads the batch's rows (`seq` above the marker taken before the append) straight from
the physical table, so a batch costs one SQL execution whatever the number of rules (issue 6:
vectorised, not one Python call per event per rule). Scheduled and stateful rules run one query
per rule and window; `due_windows` yields every window since the last one run, so a restart
catches up and skips none.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson
from sqlglot import exp

from kaudit.detect.compile import Window, compile_rule, retarget
from kaudit.detect.condition import parse_condition
from kaudit.detect.model import Match, Rule, RuleError, Scheduled
from kaudit.enrich.functions import IpFunctions
from kaudit.errors import QueryError
from kaudit.query.run import default_functions, prepared
from kaudit.store.base import CompiledQuery
from kaudit.store.duckdb import ROWS, STORED, VIRTUAL, DuckDBStore
from kaudit.store.schema import COLUMNS

MAX_EVENT_IDS = 100  # triggering event IDs kept per alert


@functools.cache
def shared_functions() -> IpFunctions:
    """The geo/intel UDFs, loaded once per process: loading them costs far more than one
    batch's detection, and short-lived stores (`kaudit detect`, inline tests) would pay it
    each time."""
    return default_functions()


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule firing for one key: what an alert is made of."""

    rule_id: str
    key: tuple[str, ...]
    fields: dict[str, Any]
    event_ids: tuple[str, ...]
    first: int
    last: int
    count: int


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    return orjson.dumps(v).decode()


def batch_marker(store: DuckDBStore) -> int:
    """Take before an append: the rows stored after it have a greater `seq`."""
    return store.committed_seq()


@dataclass(frozen=True, slots=True)
class StreamingPlan:
    """All streaming rules as one statement over a `seq` range of the stored rows."""

    rules: tuple[Rule, ...]
    sql: str
    params: tuple[Any, ...]

    @classmethod
    def build(cls, rules: Iterable[Rule], tz: str = "UTC") -> StreamingPlan:
        """The plan of the enabled streaming rules. Compiling some sixty rules through sqlglot
        takes about two seconds, paid by every `kaudit ingest`: a plan is kept per process
        and on disk (`$XDG_CACHE_HOME/kaudit/plans`), keyed by the rules, the time zone and
        the source of the code that compiles them."""
        chosen = tuple(r for r in rules if r.enabled and isinstance(r.kind, Match))
        key = hashlib.sha256(f"{_code_digest()}\0{tz}\0{chosen!r}".encode()).hexdigest()
        known = _PLANS.get(key) or _load_plan(key)
        if known is None:
            known = cls._compile(chosen, tz)
            _save_plan(key, known)
        _PLANS[key] = known
        return cls(chosen, known.sql, known.params)

    @classmethod
    def _compile(cls, chosen: tuple[Rule, ...], tz: str) -> StreamingPlan:
        branches: list[exp.Query] = []
        params: list[Any] = []
        bodies = False
        prefilters: list[exp.Expr] | None = []
        for r in chosen:
            tree, ps = retarget(compile_rule(r, None, tz), None, len(params))
            params.extend(ps)
            if _reads_raw(tree):
                bodies = True
                pre = _prefilter(tree)
                if pre is None or prefilters is None:
                    prefilters = None
                else:
                    prefilters.append(pre)
                for t in tree.find_all(exp.Table):
                    if t.name == "events":
                        t.set("this", exp.to_identifier(_BODY_SOURCE))
            q = exp.to_identifier("q")
            branches.append(
                exp.select(
                    exp.alias_(exp.Literal.string(r.id), "rule"),
                    exp.alias_(exp.func("to_json", exp.column(q)), "row"),
                ).from_(exp.Subquery(this=tree, alias=exp.TableAlias(this=q)))
            )
        if not branches:
            return cls((), "", ())
        union: exp.Query = branches[0]
        for b in branches[1:]:
            # built in place: exp.union() copies both sides, quadratic in the number of rules
            union = exp.Union(this=union, expression=b, distinct=False)
        # Every branch reads the new rows straight from the physical table through a CTE that
        # shadows the `events` view, bounded by `seq`: DuckDB skips the older row groups, and
        # evaluates each branch's filters inside the scan, on the compressed columns (cheap).
        # `raw` is another matter: fetching it for a few rows decompresses whole vectors, so
        # a branch that reads a body (`requestObject` …) would decompress the batch's events
        # once per rule. The rows that pass some body rule's other filters are read once,
        # whole, into `kaudit_raw`, which the body rules read instead of the table (joining
        # it to the table by `seq` instead cost a scan of the batch per body rule: 4.5 s of
        # CPU per 1M events for the plan, against 2.7 s).
        lo, hi = len(params) + 1, len(params) + 2
        batch = f"{ROWS} WHERE seq > ${lo} AND seq <= ${hi}"
        ctes = [f"events AS NOT MATERIALIZED ({_batch_source(batch)})"]
        if bodies:
            # only the rows that pass some body rule's search (its filters on the columns)
            wanted = ""
            if prefilters:
                cond = exp.or_(*(exp.Paren(this=p) for p in prefilters), copy=False)
                wanted = f" AND seq IN (SELECT seq FROM events WHERE {cond.sql(dialect='duckdb')})"
            phys = [_quote(c.name) for c in STORED]
            ctes = [
                *ctes,
                f"kaudit_raw AS MATERIALIZED (SELECT {', '.join(phys)}, raw, size, source, seq, "
                f"rowid AS rowid FROM {batch}{wanted})",
                f"{_BODY_SOURCE} AS NOT MATERIALIZED ({_batch_source('kaudit_raw')})",
            ]
        sql = f"WITH {', '.join(ctes)} {union.sql(dialect='duckdb')}"
        return cls(chosen, sql, tuple(params))


_PLANS: dict[str, StreamingPlan] = {}


@functools.cache
def _code_digest() -> str:
    """A digest of the code a plan depends on (rule compiler, query language, store schema):
    a cached plan never outlives a change to it."""
    root = Path(__file__).resolve().parent.parent
    versions = f"{duckdb.__version__} {importlib.metadata.version('sqlglot')}"
    h = hashlib.sha256(versions.encode())
    for sub in ("detect", "query", "store"):
        for f in sorted((root / sub).glob("*.py")):
            h.update(f.read_bytes())
    return h.hexdigest()


def _plan_file(key: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kaudit" / "plans" / f"{key}.json"


def _load_plan(key: str) -> StreamingPlan | None:
    try:
        d = orjson.loads(_plan_file(key).read_bytes())
        return StreamingPlan((), str(d["sql"]), tuple(d["params"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no cache, or an unreadable one: compile


def _save_plan(key: str, plan: StreamingPlan) -> None:
    """Best effort: a read-only home only costs the next run its compile time."""
    path = _plan_file(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps({"sql": plan.sql, "params": list(plan.params)}))
        tmp.replace(path)
    except OSError:
        pass


_BODY_SOURCE = "kaudit_events_with_raw"
_RAW_COLUMNS = {*VIRTUAL, "raw"}


def _over_events(sel: exp.Select) -> bool:
    src = sel.args.get("from_")
    return (
        isinstance(src, exp.From) and isinstance(src.this, exp.Table) and src.this.name == "events"
    )


def _prefilter(tree: exp.Expr) -> exp.Expr | None:
    """The condition every row a compiled rule can match passes before its body is read: the
    search of the selects over `events` (None when one has none, or reads a body itself)."""
    conds = []
    for sel in tree.find_all(exp.Select):
        if not _over_events(sel):
            continue
        where = sel.args.get("where")
        if where is None or _reads_raw(where.this):
            return None
        conds.append(where.this.copy())
    return exp.or_(*conds, copy=False) if conds else None


def _reads_raw(tree: exp.Expr) -> bool:
    """Does a compiled rule read `raw` or a body computed from it? A select over `events`
    that only passes a body on (the rule's `log` of every column) does not read it; what
    reads it is a condition, a display field or a `*` that reaches the output."""
    for node in tree.find_all(exp.Column, exp.Star):
        if isinstance(node, exp.Column) and node.name not in _RAW_COLUMNS:
            continue
        if isinstance(node.parent, exp.Column):
            continue  # the star of `t.*` is seen as its column
        parent = node.parent.parent if isinstance(node.parent, exp.Alias) else node.parent
        passed_on = (
            isinstance(parent, exp.Select)
            and _over_events(parent)
            and (node.parent in parent.expressions or node in parent.expressions)
        )
        if not passed_on:
            return True
    return False


def _batch_source(rows: str) -> str:
    """The `events` view's columns (bodies computed from `raw`) over `rows`, a FROM clause."""
    cols = [
        f"CAST({VIRTUAL[c.name]} AS {c.sql_type}) AS {_quote(c.name)}"
        if c.name in VIRTUAL
        else _quote(c.name)
        for c in COLUMNS
    ]
    return f"SELECT {', '.join(cols)}, raw, size, source, seq, rowid FROM {rows}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_NO_END = 2**62  # `seq` bound when the batch runs to the end of the table


def run_streaming(
    store: DuckDBStore, plan: StreamingPlan, since_seq: int = -1, until_seq: int | None = None
) -> list[Hit]:
    """Evaluate every streaming rule over the rows stored after `since_seq` (one statement)."""
    if not plan.rules:
        return []
    prepared(store, shared_functions)
    hi = _NO_END if until_seq is None else until_seq
    cur = store.reader()
    try:
        rows = cur.execute(plan.sql, [*plan.params, since_seq, hi]).fetchall()
    except duckdb.Error as e:
        raise QueryError(f"streaming rules failed: {' '.join(str(e).split())}") from None
    finally:
        cur.close()
    by_id = {r.id: r for r in plan.rules}
    return _event_hits([(rid, orjson.loads(j)) for rid, j in rows], by_id)


class StreamFollower:
    """The streaming rules over what a writer commits, on a thread of their own: a bulk import
    stores its next batch while the last one is examined (DuckDB releases the GIL), so the
    rules cost the import little wall time. `committed()` after each commit; `close()` runs
    the last pass and raises what the thread raised."""

    def __init__(
        self,
        store: DuckDBStore,
        rules: Sequence[Rule],
        on_hits: Callable[[list[Hit]], object],
        since: int | None = None,
    ) -> None:
        self.store, self.rules, self.on_hits = store, rules, on_hits
        self.plan: StreamingPlan | None = None  # compiled on the thread, beside the first batch
        self.done = store.committed_seq() if since is None else since
        self.hits = 0
        self.seconds = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="kaudit-stream", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        self._wake.set()

    def _pass(self) -> None:
        if self.plan is None:
            self.plan = StreamingPlan.build(self.rules)
        top = self.store.committed_seq()
        if top <= self.done:
            return
        t0 = time.perf_counter()
        hits = run_streaming(self.store, self.plan, self.done, top)
        if hits:
            self.on_hits(hits)
        self.hits += len(hits)
        self.done = top
        self.seconds += time.perf_counter() - t0

    def _loop(self) -> None:
        try:
            self.plan = StreamingPlan.build(self.rules)
            while not self._stop.is_set():
                self._wake.wait()
                self._wake.clear()
                self._pass()
        except BaseException as exc:  # raised by close(), in the caller's thread
            self._error = exc

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()
        if self._error is not None:
            raise self._error
        self._pass()  # what was committed after the thread's last look


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("__")}


def _key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(_text(row[k]) for k in sorted(k for k in row if k.startswith("__k")))


def _event_hits(rows: Sequence[tuple[str, dict[str, Any]]], rules: dict[str, Rule]) -> list[Hit]:
    """Per-event rows -> one hit per (rule, key); no dedup keys means one hit per event."""
    groups: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    for rid, row in rows:
        key = _key(row) if rules[rid].dedup.keys else (_text(row.get("__event_id")),)
        groups.setdefault((rid, key), []).append(row)
    hits = []
    for (rid, key), rs in groups.items():
        rs.sort(key=lambda r: r.get("__time") or 0)
        ids = tuple(dict.fromkeys(_text(r.get("__event_id")) for r in rs))
        times = [int(r.get("__time") or 0) for r in rs]
        hits.append(
            Hit(rid, key, _public(rs[-1]), ids[:MAX_EVENT_IDS], min(times), max(times), len(rs))
        )
    return hits


def run_rule(store: DuckDBStore, rule: Rule, window: Window | None, tz: str = "UTC") -> list[Hit]:
    """One rule over one window (None: all stored events)."""
    compiled = compile_rule(rule, window, tz)
    return _hits_of(store, rule, compiled)


def _hits_of(store: DuckDBStore, rule: Rule, compiled: CompiledQuery) -> list[Hit]:
    fns = prepared(store, shared_functions)
    fns.start_query()
    cur = store.reader()
    try:
        rel = cur.execute(compiled.sql, list(compiled.params))
        cols = [d[0] for d in rel.description or ()]
        rows = [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]
    except duckdb.Error as e:
        raise RuleError(
            f"rule {rule.id} failed: {' '.join(str(e).split())}", rule.location
        ) from None
    finally:
        cur.close()
    k = rule.kind
    if isinstance(k, Match) or "__event_id" in cols:
        return _event_hits([(rule.id, r) for r in rows], {rule.id: rule})
    if isinstance(k, Scheduled):
        cond = parse_condition(k.trigger) if k.trigger else None
        hits = []
        for r in rows:
            if cond is not None and not cond(r):
                continue
            key = tuple(_text(r.get(g)) for g in k.group_by)
            hits.append(Hit(rule.id, key, {c: r[c] for c in cols}, (), 0, 0, 1))
        return _merge_same_key(hits)
    out = []
    for r in rows:
        ids = tuple(dict.fromkeys(_text(i) for i in (r.get("__ids") or [])))
        out.append(
            Hit(
                rule.id,
                _key(r),
                {c: r[c] for c in cols if not c.startswith("__")},
                ids[:MAX_EVENT_IDS],
                int(r.get("__first") or 0),
                int(r.get("__last") or 0),
                int(r.get("count") or len(ids) or 1),
            )
        )
    return out


def _merge_same_key(hits: list[Hit]) -> list[Hit]:
    seen: dict[tuple[str, ...], Hit] = {}
    for h in hits:
        if h.key in seen:
            o = seen[h.key]
            seen[h.key] = Hit(h.rule_id, h.key, o.fields, o.event_ids, 0, 0, o.count + 1)
        else:
            seen[h.key] = h
    return list(seen.values())


def due_windows(last_end: int | None, now: int, every_s: int, window_s: int) -> list[Window]:
    """The windows to evaluate at `now`: one per `every_s` tick since `last_end`, each the
    `window_s` before its tick (ticks aligned to `every_s`). Nothing is skipped after downtime."""
    tick = now - now % every_s
    if last_end is None:
        return [Window(tick - window_s, tick)]
    out = []
    t = last_end + every_s
    while t <= tick:
        out.append(Window(t - window_s, t))
        t += every_s
    return out


STATE_DDL = "CREATE TABLE IF NOT EXISTS detect_state (rule VARCHAR PRIMARY KEY, last_end BIGINT)"


def last_ends(store: DuckDBStore) -> dict[str, int]:
    cur = store.reader()
    try:
        cur.execute(STATE_DDL)
        return {str(r): int(t) for r, t in cur.execute("SELECT * FROM detect_state").fetchall()}
    finally:
        cur.close()


def save_last_end(store: DuckDBStore, rule_id: str, end: int) -> None:
    cur = store.reader()
    try:
        cur.execute(STATE_DDL)
        cur.execute("INSERT OR REPLACE INTO detect_state VALUES (?, ?)", [rule_id, end])
    finally:
        cur.close()


@dataclass(slots=True)
class Round:
    """What one scheduled round did."""

    hits: list[Hit] = field(default_factory=list)
    windows: dict[str, list[Window]] = field(default_factory=dict)


def run_scheduled(store: DuckDBStore, rules: Iterable[Rule], now: int, tz: str = "UTC") -> Round:
    """Run every non-streaming rule for each window due at `now`; remember the last window."""
    state = last_ends(store)
    out = Round()
    for rule in rules:
        if not rule.enabled or rule.streaming:
            continue
        wins = due_windows(state.get(rule.id), now, rule.every_s, rule.window_s)
        for w in wins:
            out.hits.extend(run_rule(store, rule, w, tz))
            save_last_end(store, rule.id, w.end)
        out.windows[rule.id] = wins
    return out


def backtest(
    store: DuckDBStore, rules: Iterable[Rule], start: int, end: int, tz: str = "UTC"
) -> list[Hit]:
    """Rules over stored history `[start, end)` with the live semantics: streaming rules over
    the range, scheduled rules on every tick of their schedule inside it."""
    hits: list[Hit] = []
    for rule in rules:
        if rule.streaming:
            hits.extend(run_rule(store, rule, Window(start, end), tz))
            continue
        t = start - start % rule.every_s + rule.every_s
        while t <= end + rule.every_s - 1:
            hits.extend(run_rule(store, rule, Window(t - rule.window_s, t), tz))
            t += rule.every_s
    return hits


def span(store: DuckDBStore) -> tuple[int, int]:
    row = store.reader().execute("SELECT min(__time__), max(__time__) FROM events").fetchone()
    if not row or row[0] is None:
        return (0, 0)
    return int(row[0]), int(row[1]) + 1


def _windows_with_events(store: DuckDBStore, step: int, width: int) -> list[int]:
    """Starts (multiples of `step`) of the windows `[start, start + width)` holding at least
    one stored event: a window without events raises nothing, whatever the rule's kind, and a
    file spanning days is mostly quiet minutes."""
    cur = store.reader()
    try:
        buckets = cur.execute(
            "SELECT DISTINCT __time__ // ? FROM events WHERE __time__ IS NOT NULL", [step]
        ).fetchall()
    finally:
        cur.close()
    span = -(-width // step)  # buckets one window covers
    starts = {(b - k) * step for (b,) in buckets for k in range(span)}
    return sorted(starts)


def run_all(store: DuckDBStore, rules: Sequence[Rule], tz: str = "UTC") -> list[Hit]:
    """Every rule over everything stored (`kaudit detect`, inline tests): streaming rules once,
    the others over windows of their own `window`, half overlapping, across the stored events
    (one window when they all fit in one). One window spanning a multi-day file would count
    a rule's "10 secrets in 10 minutes" over days. A key found in several windows is one hit:
    the window where it counted most, with the first and last time over all of them."""
    lo, hi = span(store)
    hits = run_streaming(store, StreamingPlan.build(rules, tz))
    for r in rules:
        if not r.enabled or r.streaming:
            continue
        if hi - lo <= r.window_s:
            hits.extend(run_rule(store, r, Window(lo, hi), tz))
            continue
        step = max(1, r.window_s // 2)
        best: dict[tuple[str, ...], Hit] = {}
        for start in _windows_with_events(store, step, r.window_s):
            for h in run_rule(store, r, Window(start, start + r.window_s), tz):
                old = best.get(h.key)
                if old is None:
                    best[h.key] = h
                    continue
                top = h if h.count > old.count else old
                best[h.key] = dataclasses.replace(
                    top, first=min(old.first, h.first), last=max(old.last, h.last)
                )
        hits.extend(best.values())
    return hits


@dataclass(frozen=True, slots=True)
class TestResult:
    rule_id: str
    name: str
    ok: bool
    detail: str


def run_tests(rule: Rule, tz: str = "UTC") -> list[TestResult]:
    """Each inline test on a fresh in-memory store."""
    out = []
    test_rule = rule if rule.enabled else _enabled(rule)
    for t in rule.tests:
        store = DuckDBStore.open(":memory:")
        try:
            store.ingest_events(
                [_with_defaults(e, i) for i, e in enumerate(t.events)], redact=False
            )
            hits = run_all(store, [test_rule], tz)
        finally:
            store.close()
        n = len(hits)
        ok = (n > 0) == t.expect and (t.count is None or n == t.count)
        want = (
            f"{t.count} alert(s)"
            if t.count is not None
            else ("a match" if t.expect else "no match")
        )
        out.append(TestResult(rule.id, t.name, ok, f"expected {want}, got {n} alert(s)"))
    return out


def _enabled(rule: Rule) -> Rule:
    import dataclasses

    return dataclasses.replace(rule, enabled=True)


def _with_defaults(ev: dict[str, Any], i: int) -> dict[str, Any]:
    """Inline test events may leave out what does not matter to the rule."""
    out = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "stage": "ResponseComplete",
        "auditID": str(uuid.UUID(int=i + 1)),
        "stageTimestamp": "2026-01-01T00:00:00.000000Z",
        "requestReceivedTimestamp": "2026-01-01T00:00:00.000000Z",
    }
    out.update(ev)
    return out
