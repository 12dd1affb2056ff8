"""`time_series(x, window, format, padding)`: gap-filled time buckets (spec sls-query §2.4).

    SELECT time_series(__time__, '1m', '%H:%i', '0') AS t, count(1) AS n GROUP BY t ORDER BY t

becomes: the grouped query with the bucket as unix seconds (`_sls_ts`), a series of every bucket
of the window (the query's time range when given, else the data's), a LEFT JOIN, and the padding
(`'0'`, `'null'`, `'last'`, `'next'`) applied to the other columns; buckets are formatted in the
display time zone and ordered ascending, as SLS requires.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

if TYPE_CHECKING:
    from kaudit.query.sls import Rewriter

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CTE = "_sls_ts"


def _window_seconds(text: str) -> int | None:
    m = re.fullmatch(r"(\d+)\s*([smhd])", text.strip().lower())
    if not m:
        return None
    return int(m.group(1)) * _UNITS[m.group(2)]


def rewrite_time_series(
    tree: exp.Query, rw: Rewriter, start: int | None, end: int | None
) -> exp.Query:
    if not isinstance(tree, exp.Select):
        return tree
    for i, proj in enumerate(tree.expressions):
        call = proj.this if isinstance(proj, exp.Alias) else proj
        if isinstance(call, exp.Anonymous) and call.name.lower() == "time_series":
            return _rewrite(tree, i, call, proj.alias_or_name or "time_series", rw, start, end)
    return tree


def _literal(rw: Rewriter, node: exp.Expr, what: str) -> str:
    if not isinstance(node, exp.Literal) or not node.is_string:
        raise rw.fail(node, f"time_series: the {what} must be a string literal")
    return str(node.this)


def _rewrite(
    sel: exp.Select,
    index: int,
    call: exp.Anonymous,
    alias: str,
    rw: Rewriter,
    start: int | None,
    end: int | None,
) -> exp.Query:
    args = call.expressions
    if sel.args.get("group") is None:
        raise rw.fail(call, "time_series(...) needs GROUP BY its alias (and ORDER BY it)")
    if len(args) != 4:
        raise rw.fail(call, "time_series takes 4 arguments: (time, window, format, padding)")
    x = args[0]
    window_text = _literal(rw, args[1], "window")
    fmt = _literal(rw, args[2], "format")
    padding = _literal(rw, args[3], "padding").lower()
    w = _window_seconds(window_text)
    if w is None or (w < 86400 and 86400 % w) or (w >= 86400 and w != 86400):
        raise rw.fail(args[1], f"time_series: unsupported window {window_text!r} (1s..1h, 1d)")
    if padding not in ("0", "null", "last", "next"):
        raise rw.fail(args[3], f"time_series: unsupported padding {padding!r}")
    t = rw.target
    tz = rw.ctx.tz
    wl = exp.Literal.number(w)
    if w == 86400:  # a day is a local-time day
        bucket: exp.Expr = t.local_to_unix(
            t.date_trunc("day", t.local_time_from_unix(x.copy(), tz)), tz
        )
    else:
        bucket = exp.Sub(this=x.copy(), expression=exp.paren(exp.Mod(this=x.copy(), expression=wl)))
    inner = sel.copy()
    inner.expressions[index].replace(exp.alias_(bucket, alias, quoted=True))
    order, limit = sel.args.get("order"), sel.args.get("limit")
    inner.set("order", None)
    inner.set("limit", None)
    if inner.args.get("from_") is None:  # the implicit FROM log of the outer query
        inner.set("from_", exp.From(this=exp.to_table("log")))
    # python strftime codes, the same conversion sqlglot applies to date_format
    py_fmt = sqlglot.parse_one(
        f"date_format(x, '{fmt.replace(chr(39), chr(39) * 2)}')", read="presto"
    )
    fmt_lit = py_fmt.args["format"].this if isinstance(py_fmt, exp.TimeToStr) else fmt

    b = exp.column("b", table="g")
    q_a = exp.column(exp.to_identifier(alias, quoted=True), table="q")
    if start is not None and end is not None:
        lo: exp.Expr = exp.Literal.number(start - start % w)
        hi: exp.Expr = exp.Literal.number(end)
        series = exp.select(
            exp.alias_(
                exp.Anonymous(
                    this="unnest",
                    expressions=[exp.Anonymous(this="range", expressions=[lo, hi, wl.copy()])],
                ),
                "b",
            )
        )
    else:
        a = exp.column(exp.to_identifier(alias, quoted=True))
        series = exp.select(
            exp.alias_(
                exp.Anonymous(
                    this="unnest",
                    expressions=[
                        exp.Anonymous(
                            this="range",
                            expressions=[
                                exp.func("min", a.copy()),
                                exp.Add(this=exp.func("max", a.copy()), expression=wl.copy()),
                                wl.copy(),
                            ],
                        )
                    ],
                ),
                "b",
            )
        ).from_(_CTE)
    outs: list[exp.Expr] = []
    for j, proj in enumerate(sel.expressions):
        name = proj.alias_or_name
        if j == index:
            local = t.local_time_from_unix(b.copy(), tz)
            outs.append(exp.alias_(t.strftime(local, fmt_lit), alias, quoted=True))
            continue
        val: exp.Expr = exp.column(exp.to_identifier(name, quoted=True), table="q")
        if padding == "0":
            val = exp.func("COALESCE", val, exp.Literal.number(0))
        elif padding in ("last", "next"):
            fn = "last_value" if padding == "last" else "first_value"
            frame = (
                "UNBOUNDED PRECEDING AND CURRENT ROW"
                if padding == "last"
                else ("CURRENT ROW AND UNBOUNDED FOLLOWING")
            )
            template = sqlglot.parse_one(
                f"{fn}(__v IGNORE NULLS) OVER (ORDER BY g.b ROWS BETWEEN {frame})", read="duckdb"
            )
            template.find(exp.Column).replace(val)  # type: ignore[union-attr]
            val = template
        outs.append(exp.alias_(val, name, quoted=True))
    outer = (
        exp.select(*outs)
        .from_(series.subquery("g"))
        .join(
            exp.Table(
                this=exp.to_identifier(_CTE), alias=exp.TableAlias(this=exp.to_identifier("q"))
            ),
            on=exp.EQ(this=q_a, expression=b.copy()),
            join_type="LEFT",
        )
        .order_by(b.copy())
    )
    if order is not None and any(o.args.get("desc") for o in order.expressions):
        raise rw.fail(call, "time_series results are ordered ascending only (SLS)")
    if limit is not None:
        outer.set("limit", limit.copy())
    cte = exp.CTE(this=inner, alias=exp.TableAlias(this=exp.to_identifier(_CTE)))
    outer.set("with_", exp.With(expressions=[cte]))
    return outer
