"""Search tree -> a sqlglot predicate over the events table, with every value bound.

Semantics (spec sls-query §1.2-1.3, §1.9):
- `f:v` is token membership: the value of `f`, lower-cased and split at SLS's delimiters, holds
  every token of `v` (`key:"a b"` means `key:a and key:b`). So `user.username:serviceaccount`
  matches every `system:serviceaccount:ns:name`, as the official ACK rules rely on.
- A bare term is token membership over the whole event (its JSON text, keys included).
- `*`/`?` in an unquoted value match within one token; a wildcard needs a prefix.
- `f:*` means the field is present (not NULL); `f:""` means it is the empty string.
- `>`/`in [a b]` need a long/double field: on a text field it is an error, not SLS's silent
  fall-back to full-text search.
- Nested fields: `requestObject.a.b:v` matches any scalar leaf at that path (arrays are
  descended); `"annotations.<key>"` reads one key of the annotations object.
A missing field never matches, so `not f:v` keeps events without `f`: every leaf predicate is
two-valued (never NULL), which also keeps the filters cheap for DuckDB (no COALESCE).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from kaudit.query import search
from kaudit.query.dialect import DELIMITERS, DUCKDB, Target
from kaudit.store.schema import COLUMN_BY_LOWER, SlsType, annotation_key

# JSON columns whose inner paths the search and SQL may address as "col.a.b".
JSON_PATH_COLUMNS = ("requestObject", "responseObject")
FULL_TEXT_COLUMN = "raw"  # the whole event as JSON text (hidden store column)

_SPLIT = re.compile("[" + re.escape(DELIMITERS) + "]+")
_SPLIT_KEEP_WILDCARDS = re.compile("[" + re.escape(DELIMITERS.replace("?", "")) + "]+")


def tokens(text: str) -> list[str]:
    """SLS tokens of a text: lower-cased, split at the delimiters, empty pieces dropped."""
    return [t for t in _SPLIT.split(text.lower()) if t]


@dataclass(slots=True)
class Params:
    """Values bound as numbered parameters (`$1`, `$2` ...), in numbering order."""

    values: list[Any] = field(default_factory=list)

    def add(self, value: Any) -> exp.Expr:
        self.values.append(value)
        return exp.Placeholder(this=str(len(self.values)))


@dataclass(frozen=True, slots=True)
class FieldRef:
    """What a search or SQL name refers to."""

    kind: str  # "column" | "annotation" | "json_path"
    column: str  # exact schema spelling of the column that holds it
    sls_type: SlsType
    key: str = ""  # annotation key
    path: tuple[str, ...] = ()  # json path segments


def resolve_field(name: str) -> FieldRef | None:
    """Resolve a name case-insensitively to a column, an annotation key or a JSON path."""
    col = COLUMN_BY_LOWER.get(name.lower())
    if col is not None:
        return FieldRef("column", col.name, col.sls_type)
    key = annotation_key(name)
    if key:
        return FieldRef("annotation", "annotations", "text", key=key)
    head, _, rest = name.partition(".")
    for json_col in JSON_PATH_COLUMNS:
        if head.lower() == json_col.lower() and rest:
            return FieldRef("json_path", json_col, "text", path=tuple(rest.split(".")))
    return None


def column(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True))


class SearchCompiler:
    """Compiles one search tree; raises QueryError pointing into `text`."""

    def __init__(self, text: str, params: Params, target: Target = DUCKDB, offset: int = 0) -> None:
        self.text = text
        self.params = params
        self.target = target
        self.offset = offset

    def fail(self, pos: int, message: str) -> Exception:
        return search.error(self.text, pos, message, self.offset)

    def compile(self, node: search.Node) -> exp.Expr | None:
        """The predicate, or None for `*` (no filter)."""
        if isinstance(node, search.MatchAll):
            return None
        return self.pred(node)

    def pred(self, node: search.Node) -> exp.Expr:
        if isinstance(node, search.MatchAll):
            return exp.true()
        if isinstance(node, search.And):
            return exp.and_(self.pred(node.left), self.pred(node.right), wrap=True)
        if isinstance(node, search.Or):
            return exp.or_(self.pred(node.left), self.pred(node.right), wrap=True)
        if isinstance(node, search.Not):
            return exp.not_(exp.paren(self.pred(node.operand)))
        if isinstance(node, search.Term):
            raw = exp.column(FULL_TEXT_COLUMN)
            return self.text_match(raw, node.value, node.quoted, node.pos)
        if isinstance(node, search.FieldMatch):
            return self.field_match(node)
        return self.numeric(node)

    def ref(self, name: str, pos: int) -> FieldRef:
        ref = resolve_field(name)
        if ref is None:
            raise self.fail(pos, f"unknown field {name!r}")
        return ref

    def field_match(self, node: search.FieldMatch) -> exp.Expr:
        ref = self.ref(node.field, node.pos)
        t = self.target
        presence = node.value == "*" and not node.quoted
        if ref.kind == "json_path":
            leaves = t.json_leaves(column(ref.column), self.params.add(".".join(ref.path)))
            if presence:
                return t.any_leaf_matches(leaves, exp.true())
            if node.value == "":
                return t.any_leaf_matches(leaves, exp.column("t").eq(self.params.add("")))
            return t.any_leaf_matches(
                leaves, self.text_match(exp.column("t"), node.value, node.quoted, node.pos)
            )
        value: exp.Expr
        if ref.kind == "annotation":
            value = t.json_key(column("annotations"), ref.key)
        else:
            value = column(ref.column)
        if presence:
            return exp.Not(this=exp.Is(this=value, expression=exp.null()))
        if ref.sls_type not in ("text",):
            value = t.as_text(value)
        if node.value == "":
            return _not_null_and(value, value.eq(self.params.add("")))
        return self.text_match(value, node.value, node.quoted, node.pos)

    def text_match(self, text: exp.Expr, value: str, quoted: bool, pos: int) -> exp.Expr:
        wild = not quoted and ("*" in value or "?" in value)
        parts = [p for p in (_SPLIT_KEEP_WILDCARDS if wild else _SPLIT).split(value.lower()) if p]
        if not parts:
            raise self.fail(pos, f"{value!r} has no searchable token (only delimiters)")
        preds: list[exp.Expr] = []
        for part in parts:
            if wild and ("*" in part or "?" in part):
                if part[0] in "*?":
                    raise self.fail(
                        pos, "a wildcard needs a prefix: '*' and '?' cannot start a word"
                    )
                prefix = re.split(r"[*?]", part, maxsplit=1)[0]
                like = (
                    part.replace("\\", "\\\\")
                    .replace("%", "\\%")
                    .replace("_", "\\_")
                    .replace("*", "%")
                    .replace("?", "_")
                )
                preds.append(
                    self.target.token_like(
                        text.copy(), self.params.add(prefix), self.params.add(like)
                    )
                )
            else:
                token = self.params.add(part)
                patterns = [self.params.add(p) for p in self.target.token_patterns(part)]
                preds.append(self.target.token_match(text.copy(), token, patterns))
        out = preds[0]
        for p in preds[1:]:
            out = exp.and_(out, p)
        return exp.paren(out) if len(preds) > 1 else out

    def numeric(self, node: search.Compare | search.Range) -> exp.Expr:
        ref = self.ref(node.field, node.pos)
        t = self.target
        value: exp.Expr
        if ref.kind == "column":
            if ref.sls_type not in ("long", "double"):
                raise self.fail(
                    node.pos,
                    f"{ref.column!r} is a {ref.sls_type} field: numeric comparisons and ranges "
                    f"need a long or double field (SLS would silently search the text instead)",
                )
            value = column(ref.column)
        elif ref.kind == "annotation":
            value = t.try_double(t.json_key(column("annotations"), ref.key))
        else:
            value = t.try_double(exp.column("t"))
        pred = self.compare(value, node)
        if ref.kind == "json_path":
            leaves = t.json_leaves(column(ref.column), self.params.add(".".join(ref.path)))
            return t.any_leaf_matches(leaves, pred)
        return _not_null_and(value, pred)

    def compare(self, value: exp.Expr, node: search.Compare | search.Range) -> exp.Expr:
        if isinstance(node, search.Compare):
            n = self.params.add(node.number)
            ops: dict[str, type[exp.Binary]] = {
                ">": exp.GT,
                ">=": exp.GTE,
                "<": exp.LT,
                "<=": exp.LTE,
                "=": exp.EQ,
            }
            return ops[node.op](this=value, expression=n)
        lo_cls: type[exp.Binary] = exp.GTE if node.low_inclusive else exp.GT
        hi_cls: type[exp.Binary] = exp.LTE if node.high_inclusive else exp.LT
        lo = lo_cls(this=value.copy(), expression=self.params.add(node.low))
        hi = hi_cls(this=value.copy(), expression=self.params.add(node.high))
        return exp.paren(exp.and_(lo, hi))


def _not_null_and(value: exp.Expr, pred: exp.Expr) -> exp.Expr:
    """`value IS NOT NULL AND pred`: never NULL, so `NOT` keeps events without the field."""
    return exp.paren(exp.and_(exp.Not(this=exp.Is(this=value.copy(), expression=exp.null())), pred))


def compile_search(
    text: str, params: Params, target: Target = DUCKDB, offset: int = 0
) -> exp.Expr | None:
    """Parse and compile a search statement; None when it selects everything."""
    tree = search.parse(text, offset)
    return SearchCompiler(text, params, target, offset).compile(tree)


def selection_filter(
    where: str | None,
    cluster: str | None = None,
    start: int | None = None,
    end: int | None = None,
    target: Target = DUCKDB,
) -> tuple[str | None, list[Any]]:
    """The WHERE clause (or None) and its values selecting events by an SLS search, a cluster
    and a `[start, end)` window of unix seconds — what `export` reads, locally or by the API."""
    params = Params()
    preds: list[exp.Expr] = []
    if cluster is not None:
        preds.append(exp.EQ(this=column("cluster"), expression=params.add(cluster)))
    if start is not None:
        preds.append(exp.GTE(this=column("__time__"), expression=params.add(start)))
    if end is not None:
        preds.append(exp.LT(this=column("__time__"), expression=params.add(end)))
    if where:
        tree = compile_search(where, params, target)
        if tree is not None:
            preds.append(exp.paren(tree))
    if not preds:
        return None, []
    return exp.and_(*preds).sql(dialect=target.sqlglot_dialect), params.values
