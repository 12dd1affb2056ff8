"""The SLS search statement: a parser into a small tree, and a renderer back to text.

Grammar (spec sls-query §1.9), precedence from spec §1.4: `and` and `not` bind at the same level,
tighter than `or`; juxtaposition is `and`; `a not b` is `a and not b`; a leading `not` negates.

    query     := '*' | or_expr | <empty>
    or_expr   := and_expr (OR and_expr)*
    and_expr  := unary ((AND | NOT | <juxtaposition>) unary)*
    unary     := NOT unary | primary
    primary   := '(' or_expr ')' | field ':' value | field cmp number
               | field IN ('['|'(') number number (']'|')') | term

What the leaves *mean* (token matching, types) is decided by `to_sql` and by the reference
matcher in the tests; this module only knows the shape of the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dc_field

from kaudit.errors import Location, QueryError

KEYWORDS = frozenset({"and", "or", "not", "in"})
# Characters that end a bare word (field name or full-text term).
_WORD_STOP = frozenset(' \t\r\n()":<>=[]')
# A bare value after ':' may contain ':' (`user.username:system:serviceaccount`).
_VALUE_STOP = frozenset(' \t\r\n()"')
_BARE_FIELD = re.compile(r"[^\s()\":<>=\[\]]+")
_BARE_VALUE = re.compile(r"[^\s()\"]+")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")

Number = int | float


@dataclass(frozen=True, slots=True)
class MatchAll:
    """`*`: every event."""


@dataclass(frozen=True, slots=True)
class Term:
    """A full-text term: some token anywhere in the event."""

    value: str
    quoted: bool = False  # in quotes `*`/`?` are literal
    pos: int = dc_field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class FieldMatch:
    """`field:value`; an unquoted `*` value means the field exists."""

    field: str
    value: str
    quoted: bool = False
    pos: int = dc_field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Compare:
    """`field > 10` etc.: numeric fields only."""

    field: str
    op: str  # one of > >= < <= =
    number: Number
    pos: int = dc_field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Range:
    """`field in [low high]`; `(`/`)` make a bound exclusive."""

    field: str
    low: Number
    high: Number
    low_inclusive: bool = True
    high_inclusive: bool = True
    pos: int = dc_field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


Node = MatchAll | Term | FieldMatch | Compare | Range | And | Or | Not


def error(text: str, pos: int, message: str, offset: int = 0) -> QueryError:
    """A QueryError pointing at `pos` of `text` with a caret line under it."""
    caret = " " * pos + "^"
    return QueryError(f"{message}\n  {text}\n  {caret}", Location("query", 1, offset + pos + 1))


def parse(text: str, offset: int = 0) -> Node:
    """Parse a search statement; `offset` is its column in the whole query (for errors)."""
    return _Parser(text, offset).parse()


class _Parser:
    def __init__(self, text: str, offset: int) -> None:
        self.text = text
        self.offset = offset
        self.i = 0

    def fail(self, message: str, pos: int | None = None) -> QueryError:
        return error(self.text, self.i if pos is None else pos, message, self.offset)

    def ws(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def at_end(self) -> bool:
        self.ws()
        return self.i >= len(self.text)

    def peek_keyword(self) -> str | None:
        """The keyword at the cursor (not consumed), if a bare keyword word starts here."""
        self.ws()
        m = _BARE_FIELD.match(self.text, self.i)
        if m and m.group().lower() in KEYWORDS:
            end = m.end()
            # `not:x` / `in:1` are field names, not keywords
            rest = self.text[end:].lstrip()
            if rest[:1] in (":",) or rest[:1] in ("<", ">", "="):
                return None
            return m.group().lower()
        return None

    def parse(self) -> Node:
        if self.at_end():
            return MatchAll()
        node = self.or_expr()
        if not self.at_end():
            if self.text[self.i] == ")":
                raise self.fail("unbalanced ')'")
            raise self.fail("unexpected text")
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.peek_keyword() == "or":
            self.i += 2
            node = Or(node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.unary()
        while True:
            if self.at_end() or self.text[self.i] == ")":
                return node
            kw = self.peek_keyword()
            if kw == "or":
                return node
            if kw == "and":
                self.i += 3
                node = And(node, self.unary())
            elif kw == "not":
                self.i += 3
                node = And(node, Not(self.unary()))
            else:  # juxtaposition: implicit and
                node = And(node, self.unary())

    def unary(self) -> Node:
        kw = self.peek_keyword()
        if kw == "not":
            self.i += 3
            return Not(self.unary())
        if kw in ("and", "or"):
            raise self.fail(f"'{kw}' needs an expression on its left")
        return self.primary()

    def primary(self) -> Node:
        self.ws()
        if self.i >= len(self.text):
            raise self.fail("expected a term or field:value, found the end of the query")
        start = self.i
        ch = self.text[self.i]
        if ch == "(":
            self.i += 1
            if self.at_end() or self.text[self.i] == ")":
                raise self.fail("empty parentheses")
            node = self.or_expr()
            if self.at_end() or self.text[self.i] != ")":
                raise self.fail("missing ')'", start)
            self.i += 1
            return node
        if ch == ")":
            raise self.fail("unbalanced ')'")
        if ch == "#" and self.text[self.i + 1 : self.i + 2] == '"':
            raise self.fail('phrase search #"..." is not supported; use key:"a b"')
        if ch == '"':
            name, quoted = self.quoted(), True
        else:
            m = _BARE_FIELD.match(self.text, self.i)
            if not m:
                raise self.fail(f"unexpected {ch!r}")
            name, quoted = m.group(), False
            self.i = m.end()
            if name == "*":
                return MatchAll()
        save = self.i
        self.ws()
        nxt = self.text[self.i : self.i + 2]
        if nxt[:1] == ":":
            self.i += 1
            return self.field_value(name, start)
        for op in (">=", "<=", ">", "<", "="):
            if nxt.startswith(op):
                self.i += len(op)
                return Compare(name, op, self.number(), start)
        if self.peek_keyword() == "in":
            kw_at = self.i
            self.i += 2
            self.ws()
            if self.text[self.i : self.i + 1] in ("[", "("):
                return self.range(name, start)
            self.i = kw_at
        self.i = save
        return self.term(name, quoted, start)

    def term(self, value: str, quoted: bool, start: int) -> Node:
        if not quoted:
            self.check_wildcard(value, start)
        return Term(value, quoted, start)

    def check_wildcard(self, value: str, start: int) -> None:
        # SLS: a wildcard word needs a non-wildcard prefix (spec §1.3)
        if value[:1] in ("*", "?"):
            raise self.fail("a wildcard needs a prefix: '*' and '?' cannot start a word", start)

    def field_value(self, name: str, start: int) -> Node:
        self.ws()
        if self.i >= len(self.text) or self.text[self.i] in "()":
            raise self.fail(f"missing value after '{name}:'")
        if self.text[self.i] == '"':
            return FieldMatch(name, self.quoted(), True, start)
        vstart = self.i
        while self.i < len(self.text) and self.text[self.i] not in _VALUE_STOP:
            self.i += 1
        value = self.text[vstart : self.i]
        if value != "*":
            self.check_wildcard(value, vstart)
        return FieldMatch(name, value, False, start)

    def quoted(self) -> str:
        start = self.i
        self.i += 1
        out: list[str] = []
        while self.i < len(self.text):
            ch = self.text[self.i]
            if ch == "\\" and self.i + 1 < len(self.text):
                out.append(self.text[self.i + 1])
                self.i += 2
                continue
            if ch == '"':
                self.i += 1
                return "".join(out)
            out.append(ch)
            self.i += 1
        raise self.fail("unterminated quoted string", start)

    def number(self) -> Number:
        self.ws()
        m = _BARE_FIELD.match(self.text, self.i)
        word = m.group() if m else ""
        if not _NUMBER.fullmatch(word):
            raise self.fail(f"expected a number, found {word or self.text[self.i : self.i + 1]!r}")
        self.i += len(word)
        return _to_number(word)

    def range(self, name: str, start: int) -> Node:
        low_inc = self.text[self.i] == "["
        self.i += 1
        low = self.number()
        high = self.number()
        self.ws()
        close = self.text[self.i : self.i + 1]
        if close not in ("]", ")"):
            raise self.fail("expected ']' or ')' to close the range")
        self.i += 1
        return Range(name, low, high, low_inc, close == "]", start)


def _to_number(word: str) -> Number:
    if re.fullmatch(r"[-+]?\d+", word):
        return int(word)
    return float(word)


# ---- rendering ---------------------------------------------------------------------------------


def render(node: Node) -> str:
    """Canonical text of a tree; `parse(render(t)) == t` for every tree the parser builds."""
    if isinstance(node, MatchAll):
        return "*"
    if isinstance(node, Term):
        return _quote(node.value) if node.quoted else node.value
    if isinstance(node, FieldMatch):
        value = _quote(node.value) if node.quoted else node.value
        return f"{_field(node.field)}:{value}"
    if isinstance(node, Compare):
        return f"{_field(node.field)} {node.op} {_num(node.number)}"
    if isinstance(node, Range):
        lo = "[" if node.low_inclusive else "("
        hi = "]" if node.high_inclusive else ")"
        return f"{_field(node.field)} in {lo}{_num(node.low)} {_num(node.high)}{hi}"
    if isinstance(node, Not):
        inner = node.operand
        text = render(inner)
        return f"not ({text})" if isinstance(inner, And | Or) else f"not {text}"
    if isinstance(node, And):
        left = render(node.left)
        if isinstance(node.left, Or):
            left = f"({left})"
        right = render(node.right)
        if isinstance(node.right, And | Or):
            right = f"({right})"
        return f"{left} and {right}"
    left = render(node.left)
    right = render(node.right)
    if isinstance(node.right, Or):
        right = f"({right})"
    return f"{left} or {right}"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _field(name: str) -> str:
    if _BARE_FIELD.fullmatch(name) and name.lower() not in KEYWORDS and name != "*":
        return name
    return _quote(name)


def _num(n: Number) -> str:
    return repr(n)
