"""Everything that depends on the target engine, in one place (DuckDB today).

A second engine (ClickHouse) is a second `Target` with the same methods: the search compiler
(`to_sql`) and the SQL rewriter (`sls`) only call these builders and never write engine SQL
themselves. Every builder returns a sqlglot expression.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

# SLS's default token delimiters (spec sls-query §1.2): , ' " ; = ( ) [ ] { } ? @ & < > / : \n \t \r
# and the space. `.`, `-` and `_` are not delimiters, so `www.yl.mock.com` stays one token.
DELIMITERS = ",'\";=()[]{}?@&<>/: \n\t\r"
# The same set as a GLOB character class (`]` first, as GLOB requires).
GLOB_DELIMITERS = "[],'\";=()[{}?@&<>/: \n\t\r]"
# The same set as an RE2 character class (escapes, not raw control characters).
DELIMITER_CLASS = r"[,'\";=()\[\]{}?@&<>/: \n\t\r]"


def _p(template: str, **parts: exp.Expr) -> exp.Expr:
    """Parse a DuckDB template and substitute `{name}` placeholders with expressions."""
    tree = sqlglot.parse_one(template, read="duckdb")

    def sub(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.name.startswith("__part_"):
            return parts[node.name[len("__part_") :]].copy()
        return node

    return tree.transform(sub)


def _t(template: str) -> str:
    # `{x}` -> a column named __part_x that `_p` replaces
    out = template
    for name in ("a", "b", "c", "d", "e"):
        out = out.replace("{" + name + "}", f"__part_{name}")
    return out


@dataclass(frozen=True, slots=True)
class DuckDBTarget:
    """SQL builders for DuckDB."""

    name: str = "duckdb"
    sqlglot_dialect: str = "duckdb"

    # ---- search predicates ----------------------------------------------------------------

    def token_patterns(self, token: str) -> list[str]:
        """GLOB patterns that, with equality, decide token membership exactly (bound values).

        The token never holds a delimiter (it was split at them), so only GLOB's `*` and its
        escape `\\` need quoting; `[`, `]` and `?` are delimiters.
        """
        t = token.replace("\\", "[\\]").replace("*", "[*]")
        d = GLOB_DELIMITERS
        return [f"{t}{d}*", f"*{d}{t}", f"*{d}{t}{d}*"]

    def token_match(self, text: exp.Expr, token: exp.Expr, patterns: list[exp.Expr]) -> exp.Expr:
        """Some delimiter-separated token of lower(text) equals `token` (already lower-case).

        Never NULL (a missing value does not match), so that NOT needs no COALESCE. Every part
        is an expression on one column that DuckDB pushes into the table scan: `contains` is a
        cheap necessary condition, equality settles most rows, and the GLOBs (`t<d>*`,
        `*<d>t`, `*<d>t<d>*` with <d> the delimiter class) are the exact SLS rule. A regex
        would not be pushed down and costs 3x.
        """
        low = exp.Lower(this=text.copy())
        exact: exp.Expr = exp.EQ(this=low.copy(), expression=token.copy())
        for pat in patterns:
            exact = exp.or_(exact, exp.Glob(this=low.copy(), expression=pat))
        return exp.paren(
            exp.and_(
                exp.Not(this=exp.Is(this=text.copy(), expression=exp.null())),
                exp.Anonymous(this="contains", expressions=[low.copy(), token.copy()]),
                exp.paren(exact),
            )
        )

    def token_like(self, text: exp.Expr, prefix: exp.Expr, pattern: exp.Expr) -> exp.Expr:
        """Some token of lower(text) matches the LIKE `pattern` (escape `\\`)."""
        return _p(
            _t(
                "({a} IS NOT NULL AND contains(lower({a}), {b}) AND len(list_filter("
                "string_split_regex(lower({a}), {d}), "
                "lambda t: t LIKE {c} ESCAPE '\\')) > 0)"
            ),
            a=text,
            b=prefix,
            c=pattern,
            d=exp.Literal.string(DELIMITER_CLASS),
        )

    def as_text(self, value: exp.Expr) -> exp.Expr:
        return exp.cast(value, exp.DataType.build("VARCHAR"))

    def try_double(self, value: exp.Expr) -> exp.Expr:
        return exp.TryCast(this=value, to=exp.DataType.build("DOUBLE"))

    def json_leaves(self, doc: exp.Expr, path: exp.Expr) -> exp.Expr:
        """All scalar leaves at a dotted path, descending into arrays (a registered UDF)."""
        return exp.Anonymous(this="kaudit_json_leaves", expressions=[doc, path])

    def any_leaf_matches(self, leaves: exp.Expr, predicate_on_t: exp.Expr) -> exp.Expr:
        """`predicate_on_t` uses column `t` for the element."""
        lam = exp.Lambda(this=predicate_on_t, expressions=[exp.to_identifier("t")])
        return _p(
            _t("COALESCE(len(list_filter({a}, {b})) > 0, FALSE)"),
            a=leaves,
            b=lam,
        )

    def json_key(self, doc: exp.Expr, key: str) -> exp.Expr:
        """The text of one top-level key of a JSON object (keys may hold `.` and `/`)."""
        quoted = key.replace("\\", "\\\\").replace('"', '\\"')
        return exp.Anonymous(
            this="json_extract_string", expressions=[doc, exp.Literal.string(f'$."{quoted}"')]
        )

    def json_path_text(self, doc: exp.Expr, segments: list[str]) -> exp.Expr:
        path = "$" + "".join('."' + s.replace('"', '\\"') + '"' for s in segments)
        return exp.Anonymous(
            this="json_extract_string", expressions=[doc, exp.Literal.string(path)]
        )

    # ---- SLS functions --------------------------------------------------------------------

    def json_array_element_text(self, array: exp.Expr, index: int) -> exp.Expr:
        """Presto `json_format(json_array_get(a, i))`: the element, strings unquoted (§2.2)."""
        # an integer index is markedly faster than the path '$[i]' in DuckDB
        key = exp.Literal.string(f"$[#{index}]") if index < 0 else exp.Literal.number(index)
        return exp.Anonymous(this="json_extract_string", expressions=[array, key])

    def regexp_extract(self, s: exp.Expr, pattern: exp.Expr, group: exp.Expr | None) -> exp.Expr:
        """Presto semantics: NULL when there is no match (DuckDB returns '')."""
        args = [s.copy(), pattern.copy()] + ([group.copy()] if group is not None else [])
        return exp.Case(
            ifs=[
                exp.If(
                    this=exp.Anonymous(this="regexp_matches", expressions=[s, pattern]),
                    true=exp.Anonymous(this="regexp_extract", expressions=args),
                )
            ]
        )

    def local_time_from_unix(self, seconds: exp.Expr, tz: str) -> exp.Expr:
        """A naive timestamp: unix seconds shown in the display zone."""
        return exp.Anonymous(
            this="timezone",
            expressions=[
                exp.Literal.string(tz),
                exp.Anonymous(this="to_timestamp", expressions=[seconds]),
            ],
        )

    def local_time_from_utc(self, ts: exp.Expr, tz: str) -> exp.Expr:
        """A stored UTC timestamp shown in the display zone."""
        utc = exp.Anonymous(this="timezone", expressions=[exp.Literal.string("UTC"), ts])
        return exp.Anonymous(this="timezone", expressions=[exp.Literal.string(tz), utc])

    def local_to_unix(self, local: exp.Expr, tz: str) -> exp.Expr:
        """A naive display-zone timestamp back to unix seconds (BIGINT)."""
        aware = exp.Anonymous(this="timezone", expressions=[exp.Literal.string(tz), local])
        return exp.cast(
            exp.Anonymous(this="epoch", expressions=[aware]), exp.DataType.build("BIGINT")
        )

    def strftime(self, ts: exp.Expr, python_format: str) -> exp.Expr:
        # sqlglot's Presto reader already turned the MySQL codes (%i, %T, %s, %e ...) into
        # strftime codes; DuckDB's strftime speaks those directly.
        return exp.Anonymous(this="strftime", expressions=[ts, exp.Literal.string(python_format)])

    def date_trunc(self, unit: str, ts: exp.Expr) -> exp.Expr:
        return exp.Anonymous(this="date_trunc", expressions=[exp.Literal.string(unit), ts])

    def url_extract_parameter(self, url: exp.Expr, name: exp.Expr) -> exp.Expr:
        pattern = _p(
            _t("'[?&]' || regexp_escape({a}) || '=([^&#]*)'"),
            a=name,
        )
        value = self.regexp_extract(url, pattern, exp.Literal.number(1))
        return exp.Anonymous(this="url_decode", expressions=[value])

    def url_part(self, url: exp.Expr, part: str) -> exp.Expr:
        patterns = {
            "protocol": r"^([a-zA-Z][a-zA-Z0-9+.-]*):",
            "host": r"^[a-zA-Z][a-zA-Z0-9+.-]*://([^/:?#]*)",
            "port": r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/:?#]*:([0-9]+)",
            "path": r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*)?([^?#]*)",
            "query": r"\?([^#]*)",
            "fragment": r"#(.*)$",
        }
        return self.regexp_extract(url, exp.Literal.string(patterns[part]), exp.Literal.number(1))


DUCKDB = DuckDBTarget()
Target = DuckDBTarget
