"""The analytic (SQL) part of an SLS query: parse with sqlglot (Presto), guard, rewrite.

Rewrites, in order (spec sls-query §5.4):
1. refuse anything but one read-only SELECT, any table but `log`, any function off the list;
2. implicit `FROM log` for the outer query; `log` is a CTE over `events` filtered by the search
   part and the time range (so `from log` in subqueries gets the same filter);
3. column names resolved case-insensitively to the exact schema spelling, `"annotations.<key>"`
   and `"requestObject.a.b"` to JSON extraction; select aliases in GROUP BY/HAVING/ORDER BY;
4. SLS function semantics (pair rule, regexp_extract NULL, time zone, date_trunc on seconds ...)
   through the target's builders (`dialect.py`);
5. HAVING without GROUP BY and without aggregates filters the output rows (§2.6);
6. a default LIMIT 100 on the outer query.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import TokenType

from kaudit.errors import Location, QueryError
from kaudit.query.dialect import DUCKDB, Target
from kaudit.query.to_sql import FieldRef, column, resolve_field
from kaudit.store.schema import COLUMNS

LOG_TABLE = "log"
EVENTS_TABLE = "events"
DEFAULT_LIMIT = 100

# The function allow-list (SLS names). Anything else is refused by name.
FUNCTIONS: dict[str, str] = {
    # aggregates
    "count": "aggregate",
    "sum": "aggregate",
    "avg": "aggregate",
    "min": "aggregate",
    "max": "aggregate",
    "count_if": "aggregate: rows where the condition holds",
    "approx_distinct": "aggregate: approximate distinct count",
    "arbitrary": "aggregate: any value of the group",
    "histogram": "aggregate: map value -> count",
    "approx_percentile": "aggregate: approximate percentile",
    "max_by": "aggregate",
    "min_by": "aggregate",
    "bool_and": "aggregate",
    "bool_or": "aggregate",
    "stddev": "aggregate",
    "variance": "aggregate",
    "array_agg": "aggregate",
    # window
    "row_number": "window",
    "rank": "window",
    "dense_rank": "window",
    "lag": "window",
    "lead": "window",
    # conditional and casts
    "coalesce": "first non-NULL",
    "if": "if(cond, a, b)",
    "nullif": "nullif(a, b)",
    "greatest": "largest argument",
    "least": "smallest argument",
    "cast": "cast(x AS type)",
    "try_cast": "cast, NULL on failure",
    # strings
    "lower": "string",
    "upper": "string",
    "length": "string",
    "substr": "string",
    "substring": "string",
    "concat": "string",
    "trim": "string",
    "ltrim": "string",
    "rtrim": "string",
    "replace": "string",
    "strpos": "string",
    "split_part": "string",
    "reverse": "string",
    "lpad": "string",
    "rpad": "string",
    "starts_with": "string",
    "regexp_extract": "first match (group), NULL when there is no match",
    "regexp_extract_all": "all matches",
    "regexp_like": "pattern matches anywhere",
    "regexp_replace": "replace matches",
    # math
    "abs": "math",
    "round": "math",
    "floor": "math",
    "ceil": "math",
    "ceiling": "math",
    "sqrt": "math",
    "power": "math",
    "pow": "math",
    "ln": "math",
    "log10": "math",
    "mod": "math",
    # time
    "date_format": "format a timestamp with MySQL codes, in the display time zone",
    "from_unixtime": "unix seconds -> timestamp in the display time zone",
    "to_unixtime": "timestamp -> unix seconds",
    "date_trunc": "truncate a timestamp, or unix seconds (returns unix seconds)",
    "date_parse": "parse text with MySQL codes",
    "now": "current timestamp",
    "time_series": "gap-filled time buckets",
    # json
    "json_array_length": "elements of a JSON array",
    "json_array_get": "element i (0-based) of a JSON array; strings unquoted (Presto)",
    "json_format": "JSON as text",
    "json_extract": "JSON value at a path",
    "json_extract_scalar": "scalar text at a path",
    "cardinality": "array length",
    "array_join": "join array elements",
    # url
    "url_decode": "percent-decoding",
    "url_encode": "percent-encoding",
    "url_extract_parameter": "decoded value of a query parameter",
    "url_extract_host": "url part",
    "url_extract_path": "url part",
    "url_extract_query": "url part",
    "url_extract_protocol": "url part",
    "url_extract_port": "url part",
    "url_extract_fragment": "url part",
    # ip and threat intel (kaudit.enrich)
    "ip_to_domain": "intranet / internet / invalid",
    "ip_to_country": "country (Chinese), or ISO code with 'en'",
    "ip_to_country_code": "ISO country code",
    "ip_to_province": "province (Chinese)",
    "ip_to_city": "city (Chinese)",
    "ip_to_provider": "ISP (Chinese)",
    "ip_to_geo": "'lat,lon'",
    "ip_to_city_geo": "'lat,lon'",
    "ip_prefix": "ip_prefix(ip, bits) -> CIDR",
    "is_subnet_of": "is_subnet_of(cidr, ip)",
    "is_prefix_subnet_of": "is_prefix_subnet_of(cidr, cidr2)",
    "ip_subnet_min": "lowest address of a CIDR",
    "ip_subnet_max": "highest address of a CIDR",
    "ip_subnet_range": "[min, max] of a CIDR",
    "security_check_ip": "1 = known bad network, 0 = not",
}

# Words that may be followed by '(' without being a function call.
_STRUCTURAL = frozenset(
    [
        "select",
        "from",
        "where",
        "join",
        "on",
        "using",
        "in",
        "exists",
        "values",
        "over",
        "as",
        "and",
        "or",
        "not",
        "when",
        "then",
        "else",
        "case",
        "by",
        "having",
        "limit",
        "is",
        "like",
        "between",
        "with",
        "union",
        "intersect",
        "except",
        "all",
        "any",
        "some",
        "distinct",
        "filter",
        "within",
        "group",
        "partition",
        "order",
        "lateral",
        "unnest",
        "array",
        "row",
        "map",
        "interval",
        "escape",
        "decimal",
        "varchar",
        "char",
        "numeric",
        "double",
        "bigint",
        "integer",
        "int",
        "real",
        "boolean",
        "timestamp",
        "date",
    ]
)
_FILE_FUNCTIONS = ("read_", "parquet_scan", "glob", "sniff_csv", "query_table", "query")
_ALLOWED_ROOTS = ("select", "with", "(")
_LOOKAROUND = re.compile(r"\(\?(?:<?[=!])|\\[1-9]")

_IP_EN = {"ip_to_country", "ip_to_province", "ip_to_city", "ip_to_provider"}
_URL_PARTS = {
    "url_extract_host": "host",
    "url_extract_path": "path",
    "url_extract_query": "query",
    "url_extract_protocol": "protocol",
    "url_extract_port": "port",
    "url_extract_fragment": "fragment",
}


@dataclass(frozen=True, slots=True)
class SqlContext:
    """The whole query text and where the SQL part starts in it (for error carets)."""

    text: str
    offset: int
    tz: str

    def fail(self, pos: int | None, message: str) -> QueryError:
        if pos is None:
            return QueryError(message, Location("query"))
        at = self.offset + pos
        return QueryError(f"{message}\n  {self.text}\n  {' ' * at}^", Location("query", 1, at + 1))


def split_query(text: str) -> tuple[str, str | None, int]:
    """Split at the first `|` outside double quotes: (search, sql or None, sql offset)."""
    in_quote = False
    i = 0
    while i < len(text):
        ch = text[i]
        if in_quote and ch == "\\":
            i += 2
            continue
        if ch == '"':
            in_quote = not in_quote
        elif ch == "|" and not in_quote:
            return text[:i], text[i + 1 :], i + 1
        i += 1
    return text, None, len(text)


def parse_sql(sql: str, ctx: SqlContext) -> exp.Query:
    """Parse the SQL part and refuse anything that is not one read-only SELECT."""
    stripped = sql.lstrip()
    first = re.match(r"\(|[A-Za-z_]+", stripped)
    word = first.group().lower() if first else stripped[:1]
    lead = len(sql) - len(stripped)
    if word not in _ALLOWED_ROOTS:
        if word in ("where", "extend", "project", "stats", "parse-json"):
            raise ctx.fail(lead, "SPL pipelines are not supported: the part after '|' is SQL")
        raise ctx.fail(
            lead,
            f"only SELECT queries can run: {word.upper() or 'empty SQL'} is refused "
            "(queries are read-only)",
        )
    _check_function_names(sql, ctx)
    try:
        statements = [s for s in sqlglot.parse(sql, read="presto") if s is not None]
    except ParseError as e:
        err = e.errors[0] if e.errors else {}
        col = int(err.get("col") or 1)
        line = int(err.get("line") or 1)
        pos = _line_col_to_pos(sql, line, col)
        raise ctx.fail(pos, f"SQL syntax error: {err.get('description', str(e))}") from None
    except TokenError as e:
        raise ctx.fail(None, f"SQL syntax error: {e}") from None
    if len(statements) != 1:
        raise ctx.fail(None, "a query is exactly one SELECT statement (found several)")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise ctx.fail(lead, f"only SELECT queries can run: {tree.key.upper()} is refused")
    for node in tree.walk():
        if isinstance(
            node,
            exp.DML
            | exp.Create
            | exp.Drop
            | exp.Alter
            | exp.Command
            | exp.Set
            | exp.Pragma
            | exp.Copy
            | exp.Use,
        ):
            raise ctx.fail(None, f"{node.key.upper()} is refused: queries are read-only")
    return tree


def _line_col_to_pos(text: str, line: int, col: int) -> int:
    lines = text.split("\n")
    return sum(len(x) + 1 for x in lines[: line - 1]) + max(col - 1, 0)


def _check_function_names(sql: str, ctx: SqlContext) -> None:
    try:
        toks = sqlglot.Dialect.get_or_raise("presto").tokenize(sql)
    except TokenError as e:
        raise ctx.fail(None, f"SQL syntax error: {e}") from None
    for prev, tok, nxt in zip([None, *toks[:-1]], toks, [*toks[1:], None], strict=True):
        if nxt is None or nxt.token_type != TokenType.L_PAREN:
            continue
        if tok.token_type in (TokenType.IDENTIFIER, TokenType.STRING, TokenType.R_PAREN):
            continue
        if prev is not None and prev.token_type == TokenType.DOT:
            raise ctx.fail(tok.start, f"qualified function names are not allowed: {tok.text}")
        name = tok.text.lower()
        if name in _STRUCTURAL or name in FUNCTIONS or not re.fullmatch(r"\w+", name):
            continue
        if name.startswith(_FILE_FUNCTIONS):
            raise ctx.fail(
                tok.start, f"function {tok.text} is refused: queries can only read `log`"
            )
        raise ctx.fail(tok.start, f"unknown function {tok.text}")


# ---- rewriting ---------------------------------------------------------------------------------


class Rewriter:
    """Applies the SLS rewrites to one parsed query (a new tree; the input is not reused)."""

    def __init__(self, ctx: SqlContext, target: Target = DUCKDB) -> None:
        self.ctx = ctx
        self.target = target
        self.ctes: set[str] = set()

    def fail(self, node: exp.Expr | None, message: str) -> QueryError:
        pos = None
        if node is not None:
            for sub in node.walk():
                if "start" in sub.meta:
                    pos = int(sub.meta["start"])
                    break
        return self.ctx.fail(pos, message)

    def rewrite(self, tree: exp.Query, default_limit: int | None) -> exp.Query:
        for cte in tree.find_all(exp.CTE):
            self.ctes.add(cte.alias_or_name.lower())
        self.check_tables(tree)
        # implicit FROM log for the outer select(s)
        for sel in _outer_selects(tree):
            if sel.args.get("from_") is None:
                sel.set("from_", exp.From(this=exp.to_table(LOG_TABLE)))
        for sel in list(tree.find_all(exp.Select)):
            if self.reads_log(sel):
                self.resolve_columns(sel)
        tree = self.rewrite_functions(tree)
        self.json_values_as_text(tree)
        for sel in list(tree.find_all(exp.Select)):
            self.check_offset(sel)
        tree = self.having_without_group_by(tree)
        if default_limit is not None and tree.args.get("limit") is None:
            tree = tree.limit(default_limit, copy=False)
        return tree

    def json_values_as_text(self, tree: exp.Query) -> None:
        """SLS users treat `sourceIPs` as JSON array text: in `CASE ... THEN <string> ELSE
        sourceIPs END` the result must be text, or DuckDB re-parses the string as JSON."""
        for col in list(tree.find_all(exp.Column)):
            if col.meta.get("sls_type") != "json":
                continue
            parent = col.parent
            if isinstance(parent, exp.If | exp.Case | exp.Coalesce | exp.Nullif) or (
                isinstance(parent, exp.Anonymous) and parent.name.lower() in ("greatest", "least")
            ):
                col.replace(self.target.as_text(col.copy()))

    def check_offset(self, sel: exp.Select) -> None:
        if sel.args.get("offset") is not None:
            raise self.fail(sel.args["offset"], "OFFSET is not supported (SLS)")

    def check_tables(self, tree: exp.Query) -> None:
        for table in tree.find_all(exp.Table):
            if not isinstance(table.this, exp.Identifier):
                raise self.fail(table, "table functions are refused: queries can only read `log`")
            if table.args.get("db") or table.args.get("catalog"):
                raise self.fail(table, f"unknown table {table.sql('presto')}: queries read `log`")
            name = table.name.lower()
            if name != LOG_TABLE and name not in self.ctes:
                raise self.fail(table, f"unknown table {table.name}: queries read `log`")

    def reads_log(self, sel: exp.Select) -> bool:
        sources: list[exp.Expr] = []
        frm = sel.args.get("from_")
        if frm is not None:
            sources.append(frm.this)
        sources.extend(j.this for j in sel.args.get("joins") or [])
        return any(isinstance(s, exp.Table) and s.name.lower() == LOG_TABLE for s in sources)

    def resolve_columns(self, sel: exp.Select) -> None:
        aliases: dict[str, exp.Expr] = {}
        for proj in sel.expressions:
            if isinstance(proj, exp.Alias):
                aliases[proj.alias.lower()] = proj.this
        log_names = {LOG_TABLE}
        frm = sel.args.get("from_")
        if frm is not None and isinstance(frm.this, exp.Table) and frm.this.alias:
            log_names.add(frm.this.alias.lower())
        for col in list(sel.find_all(exp.Column)):
            if col.find_ancestor(exp.Select) is not sel or isinstance(col.this, exp.Star):
                continue
            name = col.name
            if col.table and col.table.lower() not in log_names:
                # an unquoted dotted name (`user.username`) parses as table.column
                joined = f"{col.table}.{name}"
                if col.args.get("db") or resolve_field(joined) is None:
                    continue
                name = joined
                col.set("table", None)
            clause = col.find_ancestor(exp.Group, exp.Having, exp.Order, exp.Select)
            if not col.table and name.lower() in aliases and not isinstance(clause, exp.Select):
                if isinstance(clause, exp.Having) and sel.args.get("group") is not None:
                    # SLS allows aliases in HAVING (§2.1); substitute the expression itself
                    col.replace(exp.paren(aliases[name.lower()].copy()))
                continue
            ref = resolve_field(name)
            if ref is None:
                raise self.fail(col, f'unknown column "{name}"')
            new = self.field_expr(ref)
            if "start" in col.this.meta:  # keep the position for later errors
                new.meta["start"] = col.this.meta["start"]
            col.replace(new)
        self.check_types(sel)

    def field_expr(self, ref: FieldRef) -> exp.Expr:
        if ref.kind == "column":
            node: exp.Expr = column(ref.column)
        elif ref.kind == "annotation":
            node = self.target.json_key(column("annotations"), ref.key)
        else:
            node = self.target.json_path_text(column(ref.column), list(ref.path))
        node.meta["sls_type"] = ref.sls_type
        node.meta["sls_name"] = (
            ref.column if ref.kind == "column" else ref.key or ".".join(ref.path)
        )
        return node

    def check_types(self, sel: exp.Select) -> None:
        for cmp in sel.find_all(exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE):
            for a, b in ((cmp.this, cmp.expression), (cmp.expression, cmp.this)):
                t = a.meta.get("sls_type")
                if not isinstance(b, exp.Literal):
                    continue
                name = a.meta.get("sls_name")
                if t == "text" and not b.is_string:
                    raise self.fail(
                        cmp,
                        f'"{name}" is a text column: compare it with a string '
                        f"('{b.this}'), not the number {b.this}",
                    )
                if t in ("long", "double") and b.is_string and not _is_number(b.this):
                    raise self.fail(
                        cmp,
                        f'"{name}" is a {t} (numeric) column: compare it with a number, '
                        f"not the string '{b.this}'",
                    )

    # ---- functions -----------------------------------------------------------------------

    def rewrite_functions(self, tree: exp.Query) -> exp.Query:
        out = tree.transform(self._fn, copy=False)
        assert isinstance(out, exp.Query)
        return out

    def rw(self, node: exp.Expr | None) -> exp.Expr:
        assert node is not None
        return node.transform(self._fn, copy=False)

    def _fn(self, node: exp.Expr) -> exp.Expr:
        t = self.target
        tz = self.ctx.tz
        if isinstance(node, exp.JSONFormat):
            inner = node.this
            if isinstance(inner, exp.Anonymous) and inner.name.lower() == "json_array_get":
                return self.array_get(inner)
            return t.as_text(self.rw(inner))
        if isinstance(node, exp.RegexpExtract):
            self.check_regex(node.expression)
            group = node.args.get("group")
            return t.regexp_extract(self.rw(node.this), node.expression, group)
        if isinstance(node, exp.RegexpLike):
            self.check_regex(node.expression)
            return node
        if isinstance(node, exp.TimeToStr):
            fmt = node.args.get("format")
            if not isinstance(fmt, exp.Literal):
                raise self.fail(node, "date_format needs a literal format string")
            return t.strftime(self.localize(node.this), fmt.this)
        if isinstance(node, exp.UnixToTime):
            return t.local_time_from_unix(self.rw(node.this), tz)
        if isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
            return self.date_trunc(node)
        if isinstance(node, exp.Anonymous):
            return self.anonymous(node)
        return node

    def anonymous(self, node: exp.Anonymous) -> exp.Expr:
        t = self.target
        name = node.name.lower()
        args = node.expressions
        if name == "json_array_get":
            return self.array_get(node)
        if name == "url_extract_parameter":
            self.arity(node, 2)
            return t.url_extract_parameter(self.rw(args[0]), self.rw(args[1]))
        if name in _URL_PARTS:
            self.arity(node, 1)
            return t.url_part(self.rw(args[0]), _URL_PARTS[name])
        if name in _IP_EN and len(args) == 2:
            lang = args[1]
            if not (isinstance(lang, exp.Literal) and lang.this.lower() == "en"):
                raise self.fail(node, f"{name}: the second argument can only be 'en'")
            return exp.Anonymous(this=f"{name}_en", expressions=[self.rw(args[0])])
        if name == "time_series":
            raise self.fail(
                node, "time_series(...) must be a select item of a query that groups by it"
            )
        return node

    def arity(self, node: exp.Anonymous, n: int) -> None:
        if len(node.expressions) != n:
            raise self.fail(node, f"{node.name} takes {n} argument(s)")

    def array_get(self, node: exp.Anonymous) -> exp.Expr:
        self.arity(node, 2)
        array, index = node.expressions
        if not (isinstance(index, exp.Literal) and _is_int(index.this)) and not (
            isinstance(index, exp.Neg) and isinstance(index.this, exp.Literal)
        ):
            raise self.fail(node, "json_array_get needs a literal integer index")
        i = int(index.sql("presto"))
        return self.target.json_array_element_text(self.rw(array), i)

    def localize(self, node: exp.Expr) -> exp.Expr:
        """A timestamp expression in the display zone (naive)."""
        if isinstance(node, exp.UnixToTime):
            return self.rw(node)
        rewritten = self.rw(node)
        if rewritten.meta.get("sls_type") == "timestamp":
            return self.target.local_time_from_utc(rewritten, self.ctx.tz)
        return rewritten

    def date_trunc(self, node: exp.Expr) -> exp.Expr:
        unit_node = node.args.get("unit")
        unit = unit_node.name if unit_node is not None else ""
        if not unit:
            raise self.fail(node, "date_trunc needs a unit such as 'minute'")
        arg = node.this
        t = self.target
        if isinstance(arg, exp.UnixToTime) or arg.meta.get("sls_type") == "timestamp":
            return t.date_trunc(unit.lower(), self.localize(arg))
        # SLS accepts unix seconds (§2.4); we return unix seconds of the truncated local time.
        # Seconds, minutes, and hours in a zone whose offsets are whole hours, need no time
        # zone arithmetic: `x - x % 3600` (the ICU conversion costs 2x on big scans).
        step = {"second": 1, "minute": 60, "hour": 3600}.get(unit.lower())
        if step is not None and (step < 3600 or _whole_hour_zone(self.ctx.tz)):
            x = self.rw(arg)
            if step == 1:
                return x
            return exp.Sub(
                this=x,
                expression=exp.paren(exp.Mod(this=x.copy(), expression=exp.Literal.number(step))),
            )
        local = t.local_time_from_unix(self.rw(arg), self.ctx.tz)
        return t.local_to_unix(t.date_trunc(unit.lower(), local), self.ctx.tz)

    def check_regex(self, pattern: exp.Expr | None) -> None:
        if not isinstance(pattern, exp.Literal):
            return
        text = pattern.this
        if _LOOKAROUND.search(text):
            raise self.fail(
                pattern,
                f"regex {text!r} uses look-around or a back-reference, "
                "which the engine (RE2) does not support",
            )
        try:
            re.compile(text)
        except re.error as e:
            raise self.fail(pattern, f"invalid regex {text!r}: {e}") from None

    # ---- HAVING without GROUP BY ---------------------------------------------------------

    def having_without_group_by(self, tree: exp.Query) -> exp.Query:
        for sel in list(tree.find_all(exp.Select)):
            having = sel.args.get("having")
            if having is None or sel.args.get("group") is not None:
                continue
            if any(p.find(exp.AggFunc) for p in sel.expressions):
                continue  # a real global aggregation: standard semantics
            # SLS: a filter on the output rows, select aliases in scope (§2.6)
            order = sel.args.get("order")
            limit = sel.args.get("limit")
            inner = sel.copy()
            for key in ("having", "order", "limit"):
                inner.set(key, None)
            outer = exp.select("*").from_(inner.subquery("_sls_rows"))
            outer.set("where", exp.Where(this=having.this.copy()))
            if order is not None:
                outer.set("order", order.copy())
            if limit is not None:
                outer.set("limit", limit.copy())
            if sel is tree:
                tree = outer
            else:
                sel.replace(outer)
        return tree


def _outer_selects(tree: exp.Expr) -> list[exp.Select]:
    if isinstance(tree, exp.Select):
        return [tree]
    if isinstance(tree, exp.SetOperation):
        return _outer_selects(tree.this) + _outer_selects(tree.expression)
    if isinstance(tree, exp.Subquery):
        return _outer_selects(tree.this)
    return []


@functools.cache
def _whole_hour_zone(tz: str) -> bool:
    """True when every UTC offset of `tz` from 1990 to 2040 is a whole number of hours."""
    zone = ZoneInfo(tz)
    return all(
        (datetime(year, month, 15, tzinfo=zone).utcoffset() or timedelta()).total_seconds() % 3600
        == 0
        for year in range(1990, 2041)
        for month in (1, 4, 7, 10)
    )


def _is_int(s: str) -> bool:
    return re.fullmatch(r"-?\d+", s) is not None


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def log_cte(where: exp.Expr | None) -> exp.CTE:
    """`log AS (SELECT <schema columns> FROM events WHERE <search and time range>)`.

    JSON columns keep their type here (casting them all to text costs 2-3x in example B); a
    JSON column used as a CASE/IF/COALESCE value is cast to text where it is used
    (`Rewriter.json_values_as_text`).
    """
    projections: list[exp.Expr] = [column(col.name) for col in COLUMNS]
    body = exp.select(*projections).from_(EVENTS_TABLE)
    if where is not None:
        body = body.where(where)
    return exp.CTE(
        this=body, alias=exp.TableAlias(this=exp.to_identifier(LOG_TABLE)), materialized=False
    )


def with_log(tree: exp.Query, where: exp.Expr | None) -> exp.Query:
    """Prepend the `log` CTE to the query's own CTEs."""
    cte = log_cte(where)
    existing = tree.args.get("with_")
    if existing is not None:
        existing.set("expressions", [cte, *existing.expressions])
    else:
        tree.set("with_", exp.With(expressions=[cte]))
    return tree


Transform = Callable[[exp.Expr], exp.Expr]
