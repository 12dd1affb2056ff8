"""Rule -> SLS query text -> SQL.

Every kind becomes one SLS query (`search | SELECT ...`) built as sqlglot trees and compiled by
`kaudit.query.run.compile_query`, so rules use exactly the language users query with. Output
columns every kind shares (the engine reads them): `__event_id` or `__ids` (triggering audit
IDs), `__time` or `__first`/`__last`, `__k0..` (the dedup/group key), `count`, then the
display fields by alias.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from kaudit.detect.model import (
    Cardinality,
    Exceptions,
    Match,
    NewTerm,
    Rule,
    RuleError,
    Scheduled,
    Sequence,
    Spike,
    Threshold,
)
from kaudit.errors import QueryError
from kaudit.query.run import compile_query
from kaudit.store.base import CompiledQuery

READ = "presto"  # SLS SQL is parsed as Presto (sls-query §2.1)


def _col(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True))


def _str(v: str) -> exp.Literal:
    return exp.Literal.string(v)


def sql_expr(text: str, rule: Rule, what: str) -> exp.Expr:
    """An SLS SQL expression of a rule (a field, a key, a condition)."""
    try:
        return sqlglot.parse_one(text, read=READ)
    except sqlglot.errors.ParseError as e:
        raise RuleError(
            f"rule {rule.id}: {what}: not an SQL expression: {text!r} "
            f"({e.errors[0]['description']})",
            rule.location,
        ) from None


def exception_pred(ex: Exceptions) -> exp.Expr | None:
    """True for an event an allow-list covers (the rule then ignores it)."""
    preds: list[exp.Expr] = []
    user = _col("user.username")
    exact = [u for u in ex.users if not u.endswith("*")]
    if exact:
        preds.append(exp.In(this=user, expressions=[_str(u) for u in exact]))
    for u in ex.users:
        if u.endswith("*"):
            preds.append(exp.func("starts_with", user.copy(), _str(u[:-1])))
    for g in ex.groups:
        # user.groups is JSON array text; look for the quoted group name
        preds.append(exp.GT(this=exp.func("strpos", _col("user.groups"), _str(f'"{g}"')),
                            expression=exp.Literal.number(0)))  # fmt: skip
    if ex.namespaces:
        preds.append(
            exp.In(this=_col("objectRef.namespace"), expressions=[_str(n) for n in ex.namespaces])
        )
    for ua in ex.user_agents:
        preds.append(exp.func("starts_with", _col("userAgent"), _str(ua)))
    first_ip = exp.func("json_array_get", _col("sourceIPs"), exp.Literal.number(0))
    for c in ex.cidrs:
        preds.append(exp.func("is_subnet_of", _str(c), exp.func("json_format", first_ip.copy())))
    if ex.images:
        # Every container's image repository (the image up to ':' or '@', as Falco cuts it) is
        # an entry or under one (`registry.k8s.io` covers `registry.k8s.io/pause`) is
        # allowed: remove the allowed ones from the body; no other image may remain.
        alts = "|".join(a for i in ex.images for a in image_patterns(i))
        body = exp.func("coalesce", _col("requestObject"), _str(""))
        stripped = exp.func(
            "regexp_replace",
            body,
            _str(f'"image":\\s*"(?:{alts})"'),
            _str(""),
        )
        preds.append(
            exp.and_(
                exp.func("regexp_like", body.copy(), _str('"image":')),
                exp.not_(exp.func("regexp_like", stripped, _str('"image":'))),
            )
        )
    if not preds:
        return None
    out = preds[0]
    for p in preds[1:]:
        out = exp.or_(out, p)
    return exp.func("coalesce", exp.paren(out), exp.false())


_HUB = r"(?:(?:index\.|registry-1\.)?docker\.io)"
_TAIL = r'(?:[:@][^"]*)?'  # tag and/or digest


def image_patterns(entry: str) -> list[str]:
    """RE2 patterns for the whole image strings an `exceptions.images` entry covers.

    An entry covers itself and the repositories under it, with any tag or digest. A Docker Hub
    entry also covers the short forms the container runtime expands to it (distribution's
    reference.ParseNormalizedNamed: a first path segment that is not a host, i.e. has no '.'
    or ':' and is not `localhost`, means docker.io, and a name without '/' means
    docker.io/library): `docker.io/library` covers `nginx:1.25`, `docker.io/grafana` covers
    `grafana/grafana`, `docker.io` covers every short name. RE2 has no lookahead, so
    `localhost/x` counts as a short name for a bare `docker.io` entry."""
    own = f'{re.escape(entry)}(?:/[^"]*)?{_TAIL}'
    hub, _, rest = entry.partition("/")
    if hub not in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return [own]
    out = [
        f'{_HUB}(?:/[^"]*)?{_TAIL}' if not rest else f'{_HUB}/{re.escape(rest)}(?:/[^"]*)?{_TAIL}'
    ]
    if not rest:
        out += ['[^"/]*', '[^"/.:]+/[^"]*']  # no '/' at all, or a first segment that is no host
    elif rest == "library" or rest.startswith("library/"):
        sub = rest[len("library") :].lstrip("/")
        out.append(f"{re.escape(sub)}{_TAIL}" if sub else '[^"/]*')  # `nginx`, `nginx:1.25`
        out.append(f'{re.escape(rest)}(?:/[^"]*)?{_TAIL}')  # `library/nginx`
    else:
        out.append(f'{re.escape(rest)}/[^"]*')  # `grafana/…` (`grafana` alone is library/)
        if "/" in rest:
            out[-1] = f'{re.escape(rest)}(?:/[^"]*)?{_TAIL}'
    return out


def _where(rule: Rule, where: str | None) -> exp.Expr | None:
    conds: list[exp.Expr] = []
    if where:
        conds.append(exp.paren(sql_expr(where, rule, "where")))
    ex = exception_pred(rule.exceptions)
    if ex is not None:
        conds.append(exp.not_(ex))
    if not conds:
        return None
    out = conds[0]
    for c in conds[1:]:
        out = exp.and_(out, c)
    return out


def _fields(rule: Rule) -> list[exp.Expr]:
    return [
        exp.alias_(sql_expr(f.expr, rule, f"field {f.alias}"), f.alias, quoted=True)
        for f in rule.fields
    ]


def _query_text(search: str, select: exp.Select) -> str:
    return f"{search.strip() or '*'} | {select.sql(dialect=READ)}"


def match_query(rule: Rule, m: Match, keys: tuple[str, ...]) -> str:
    """One row per matching event: id, time, key parts, display fields."""
    sel = exp.select(
        exp.alias_(_col("auditID"), "__event_id", quoted=True),
        exp.alias_(_col("__time__"), "__time", quoted=True),
        *[
            exp.alias_(sql_expr(k, rule, "dedup key"), f"__k{i}", quoted=True)
            for i, k in enumerate(keys)
        ],
        *_fields(rule),
    ).from_("log")
    w = _where(rule, m.where)
    if w is not None:
        sel = sel.where(w)
    return _query_text(m.search, sel)


def _aggregate(
    rule: Rule,
    search: str,
    where: str | None,
    by: tuple[str, ...],
    extra: list[exp.Expr],
    having: exp.Expr | None,
    time_filter: exp.Expr | None = None,
) -> str:
    keys = [sql_expr(b, rule, "by") for b in by]
    sel = exp.select(
        *[exp.alias_(k, f"__k{i}", quoted=True) for i, k in enumerate(keys)],
        exp.alias_(exp.func("min", _col("__time__")), "__first", quoted=True),
        exp.alias_(exp.func("max", _col("__time__")), "__last", quoted=True),
        exp.alias_(exp.func("array_agg", _col("auditID")), "__ids", quoted=True),
        *extra,
        *_fields(rule),
    ).from_("log")
    w = _where(rule, where)
    if time_filter is not None:
        w = time_filter if w is None else exp.and_(w, time_filter)
    if w is not None:
        sel = sel.where(w)
    if keys:
        sel = sel.group_by(*[k.copy() for k in keys])
    if having is not None:
        sel = sel.having(having)
    return _query_text(search, sel)


def _count() -> exp.Expr:
    return exp.Count(this=exp.Star())


@dataclass(frozen=True, slots=True)
class Window:
    """The evaluation window `[start, end)` in unix seconds, and the compiled query's reach
    (`reach_start` may lie before `start` for kinds that compare with history)."""

    start: int
    end: int


def rule_query_text(rule: Rule, window: Window | None = None) -> tuple[str, int | None]:
    """The SLS query text of a rule and how far back before the window it reads."""
    k = rule.kind
    if isinstance(k, Match):
        return match_query(rule, k, rule.dedup.keys), None
    if isinstance(k, Scheduled):
        return k.query, None
    ws = window.start if window is not None else 0
    having: exp.Expr
    if isinstance(k, Threshold):
        having = exp.GTE(this=_count(), expression=exp.Literal.number(k.count))
        extra = [exp.alias_(_count(), "count", quoted=True)]
        return _aggregate(rule, k.search, k.where, k.by, extra, having), None
    if isinstance(k, Cardinality):
        dist = exp.Count(this=exp.Distinct(expressions=[sql_expr(k.distinct, rule, "distinct")]))
        having = exp.GTE(this=dist.copy(), expression=exp.Literal.number(k.count))
        extra = [
            exp.alias_(_count(), "count", quoted=True),
            exp.alias_(dist, "distinct_count", quoted=True),
        ]
        return _aggregate(rule, k.search, k.where, k.by, extra, having), None
    if isinstance(k, NewTerm):
        # every (key, term) pair over the history and the window; `compile_rule` keeps the
        # new ones of known keys (`new_terms_of_known_keys`)
        extra = [exp.alias_(_count(), "count", quoted=True)]
        return _aggregate(rule, k.search, k.where, (*k.by, *k.terms), extra, None), k.history_s
    if isinstance(k, Spike):
        now_t = exp.GTE(this=_col("__time__"), expression=exp.Literal.number(ws))
        cur = exp.func("count_if", now_t)
        ref = exp.func("count_if", exp.not_(now_t.copy()))
        rate = k.window_s / k.reference_s
        having = exp.and_(
            exp.GTE(this=cur.copy(), expression=exp.Literal.number(k.min_count)),
            exp.GTE(
                this=cur.copy(),
                expression=exp.Mul(
                    this=exp.Literal.number(k.factor),
                    expression=exp.paren(
                        exp.Add(
                            this=exp.Mul(this=ref.copy(), expression=exp.Literal.number(rate)),
                            expression=exp.Literal.number(1),
                        )
                    ),
                ),
            ),
        )
        extra = [
            exp.alias_(cur, "count", quoted=True),
            exp.alias_(ref, "reference_count", quoted=True),
        ]
        return _aggregate(rule, k.search, k.where, k.by, extra, having), k.reference_s
    raise TypeError(f"no single query for {type(k).__name__}")


def compile_rule(rule: Rule, window: Window | None = None, tz: str = "UTC") -> CompiledQuery:
    """The SQL of one rule over `window` (None: all stored events)."""
    if isinstance(rule.kind, Sequence):
        return compile_sequence(rule, window, tz)
    text, reach = rule_query_text(rule, window)
    start = end = None
    if window is not None:
        start, end = window.start - (reach or 0), window.end
    try:
        q = compile_query(text, start=start, end=end, tz=tz, default_limit=None)
    except QueryError as e:
        raise RuleError(f"rule {rule.id}: {e}", rule.location) from None
    if isinstance(rule.kind, NewTerm):
        return new_terms_of_known_keys(q, rule.kind, window.start if window is not None else 0)
    return q


def new_terms_of_known_keys(q: CompiledQuery, k: NewTerm, window_start: int) -> CompiledQuery:
    """Of the (key, term) groups read over history and window, the pairs first seen in the
    window whose key had matched at least `learning_s` earlier.

    A pair's `__first` is its first event in reach; the key's first event is the least `__first`
    over its pairs. Without the second condition every key seen for the first time would bring
    only new terms (issue 6: every identity alerting the first time it is seen)."""
    tree, params = retarget(q, None, 0)
    keys = [exp.column(f"__k{i}", quoted=True) for i in range(len(k.by))]
    first = exp.column("__first", quoted=True)
    key_first = exp.Window(this=exp.func("min", first.copy()), partition_by=keys)
    inner = exp.select(exp.Star(), exp.alias_(key_first, "__key_first", quoted=True)).from_(
        exp.Subquery(this=tree, alias=exp.TableAlias(this=exp.to_identifier("g")))
    )
    known = exp.and_(
        exp.GTE(this=first.copy(), expression=exp.Literal.number(window_start)),
        exp.GTE(
            this=first.copy(),
            expression=exp.Add(
                this=exp.column("__key_first", quoted=True),
                expression=exp.Literal.number(k.learning_s),
            ),
        ),
    )
    outer = (
        exp.select(exp.Star(except_=[exp.column("__key_first", quoted=True)]))
        .from_(exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("w"))))
        .where(known)
    )
    return CompiledQuery(outer.sql(dialect="duckdb"), params)


def compile_sequence(rule: Rule, window: Window | None, tz: str) -> CompiledQuery:
    """`first` then `then` for the same key within `within_s`: two compiled queries joined."""
    k = rule.kind
    assert isinstance(k, Sequence)
    a_sel = exp.select(
        exp.alias_(_col("auditID"), "id", quoted=True),
        exp.alias_(_col("__time__"), "t", quoted=True),
        exp.alias_(sql_expr(k.first_key, rule, "first_key"), "k", quoted=True),
    ).from_("log")
    wa = _where(rule, k.first.where)
    if wa is not None:
        a_sel = a_sel.where(wa)
    b_rule = rule
    b_sel = exp.select(
        exp.alias_(_col("auditID"), "__event_id", quoted=True),
        exp.alias_(_col("__time__"), "__time", quoted=True),
        exp.alias_(sql_expr(k.then_key, rule, "then_key"), "k", quoted=True),
        *[
            exp.alias_(sql_expr(x, rule, "dedup key"), f"__k{i}", quoted=True)
            for i, x in enumerate(rule.dedup.keys)
        ],
        *_fields(b_rule),
    ).from_("log")
    wb = _where(rule, k.then.where)
    if wb is not None:
        b_sel = b_sel.where(wb)
    a_start = b_start = end = None
    if window is not None:
        a_start, b_start, end = window.start - k.lookback_s, window.start, window.end
    try:
        qa = compile_query(_query_text(k.first.search, a_sel), start=a_start, end=end, tz=tz,
                           default_limit=None)  # fmt: skip
        qb = compile_query(_query_text(k.then.search, b_sel), start=b_start, end=end, tz=tz,
                           default_limit=None)  # fmt: skip
    except QueryError as e:
        raise RuleError(f"rule {rule.id}: {e}", rule.location) from None
    ta, pa_ = retarget(qa, None, 0)
    tb, pb = retarget(qb, None, len(pa_))
    a_alias, b_alias = exp.to_identifier("a"), exp.to_identifier("b")
    on = exp.and_(
        exp.EQ(this=exp.column("k", "a"), expression=exp.column("k", "b")),
        exp.GTE(this=exp.column("__time", "b", quoted=True), expression=exp.column("t", "a")),
        exp.LTE(
            this=exp.column("__time", "b", quoted=True),
            expression=exp.Add(
                this=exp.column("t", "a"), expression=exp.Literal.number(k.within_s)
            ),
        ),
    )
    # the `then` events for which some `first` event of the same key came shortly before
    first = exp.select("1").from_(exp.Subquery(this=ta, alias=exp.TableAlias(this=a_alias)))
    sel = (
        exp.select(exp.Column(this=exp.Star(), table=b_alias.copy()))
        .from_(exp.Subquery(this=tb, alias=exp.TableAlias(this=b_alias)))
        .where(exp.Exists(this=first.where(on)))
    )
    return CompiledQuery(sel.sql(dialect="duckdb"), (*pa_, *pb))


def retarget(
    q: CompiledQuery, table: str | None, offset: int
) -> tuple[exp.Query, tuple[object, ...]]:
    """The compiled tree with `events` read from `table` (a batch) and its `$n` parameters
    renumbered after `offset`, so several rule queries can form one statement."""
    tree = sqlglot.parse_one(q.sql, read="duckdb")
    assert isinstance(tree, exp.Query)
    if table is not None:
        for t in tree.find_all(exp.Table):
            if t.name == "events" and not t.args.get("db"):
                t.set("this", exp.to_identifier(table))
    if offset:
        for p in tree.find_all(exp.Placeholder):
            if p.this and str(p.this).isdigit():
                p.set("this", str(int(p.this) + offset))
    return tree, tuple(q.params)
