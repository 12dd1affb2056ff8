"""The SLS trigger-condition language (sls-query §3.2), evaluated on one result row.

    [失败率%] > 50 && 访问次数 >= 10 || contains(user, 'admin') || ip =~ "^47\\."

Comparison: both sides are converted to numbers when they can be, else compared as strings.
`=~`/`!~` are regex matches (Python `re`, close to RE2 for the patterns alerts use). A name
with anything but letters and digits is bracketed: `[5xx比例(%)]`. `$0.` prefixes are accepted
and dropped (one query per rule). The result fires only when it is exactly `true`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kaudit.errors import QueryError

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>\d+(?:\.\d+)?)
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<br>\[[^\]]+\])
    | (?P<op>&&|\|\||==|!=|>=|<=|=~|!~|[-+*/%<>()!,])
    | (?P<name>(?:\$\d\.)?[^\W_][\w]*|(?:\$\d\.)?_\w*)
    )""",
    re.VERBOSE,
)

Value = Any
Expr = Callable[[Mapping[str, Any]], Value]

_BIN = {
    "||": 1, "&&": 2, "==": 3, "!=": 3, "=~": 3, "!~": 3, ">": 4, ">=": 4, "<": 4,
    "<=": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6,
}  # fmt: skip


def _num(v: Value) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(str(v))
    except (TypeError, ValueError):
        return None


def _cmp(op: str, a: Value, b: Value) -> bool:
    if a is None or b is None:
        return op == "!=" and (a is None) != (b is None)
    x, y = _num(a), _num(b)
    if x is not None and y is not None:
        pair: tuple[Any, Any] = (x, y)
    elif isinstance(a, bool) or isinstance(b, bool):
        pair = (str(a).lower(), str(b).lower())
    else:
        pair = (str(a), str(b))
    l, r = pair  # noqa: E741
    out: bool = {
        "==": l == r, "!=": l != r, ">": l > r, ">=": l >= r, "<": l < r, "<=": l <= r,
    }[op]  # fmt: skip
    return out


@dataclass(frozen=True, slots=True)
class Condition:
    text: str
    expr: Expr

    def __call__(self, row: Mapping[str, Any]) -> bool:
        try:
            return self.expr(row) is True
        except (TypeError, ZeroDivisionError, re.error):
            return False


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise self.fail(pos, f"unexpected character {text[pos:].lstrip()[:1]!r}")
            kind = m.lastgroup or ""
            self.toks.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0

    def fail(self, pos: int, msg: str) -> QueryError:
        return QueryError(f"trigger condition at column {pos + 1}: {msg}: {self.text}")

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str, int]:
        t = self.peek()
        if t is None:
            raise self.fail(len(self.text), "unexpected end")
        self.i += 1
        return t

    def parse(self) -> Expr:
        e = self.expr(0)
        t = self.peek()
        if t is not None:
            raise self.fail(t[2], f"unexpected {t[1]!r}")
        return e

    def expr(self, min_prec: int) -> Expr:
        left = self.unary()
        while True:
            t = self.peek()
            if t is None or t[0] != "op" or t[1] not in _BIN or _BIN[t[1]] <= min_prec - 1:
                return left
            prec = _BIN[t[1]]
            if prec < min_prec:
                return left
            self.take()
            right = self.expr(prec + 1)
            left = self.binary(t[1], left, right)

    @staticmethod
    def binary(op: str, a: Expr, b: Expr) -> Expr:
        if op == "&&":
            return lambda r: a(r) is True and b(r) is True
        if op == "||":
            return lambda r: a(r) is True or b(r) is True
        if op in ("=~", "!~"):
            neg = op == "!~"
            return lambda r: (re.search(str(b(r)), str(a(r))) is not None) != neg
        if op in ("==", "!=", ">", ">=", "<", "<="):
            return lambda r: _cmp(op, a(r), b(r))

        def arith(r: Mapping[str, Any]) -> Value:
            x, y = _num(a(r)), _num(b(r))
            if x is None or y is None:
                return None
            if op == "+":
                return x + y
            if op == "-":
                return x - y
            if op == "*":
                return x * y
            if op == "/":
                return x / y
            return x % y

        return arith

    def unary(self) -> Expr:
        kind, text, pos = self.take()
        if kind == "op" and text == "!":
            inner = self.unary()
            return lambda r: inner(r) is not True
        if kind == "op" and text == "(":
            e = self.expr(0)
            _k2, t2, p2 = self.take()
            if t2 != ")":
                raise self.fail(p2, "expected ')'")
            if False:  # pragma: no cover
                pass
            return e
        if kind == "op" and text == "-":
            raise self.fail(pos, "a negative number must be parenthesised: x+(-100)")
        if kind == "num":
            v = float(text)
            return lambda r: v
        if kind == "str":
            s = re.sub(r"\\(.)", r"\1", text[1:-1])
            return lambda r: s
        if kind == "br":
            name = text[1:-1]
            return lambda r: r.get(name)
        if kind == "name":
            name = re.sub(r"^\$\d\.", "", text)
            if name in ("true", "false"):
                bv = name == "true"
                return lambda r: bv
            nxt = self.peek()
            if name == "contains" and nxt is not None and nxt[1] == "(":
                self.take()
                a = self.expr(0)
                if self.take()[1] != ",":
                    raise self.fail(pos, "contains(field, 'text') takes two arguments")
                b = self.expr(0)
                if self.take()[1] != ")":
                    raise self.fail(pos, "expected ')'")
                return lambda r: str(b(r)) in str(a(r))
            return lambda r: r.get(name)
        raise self.fail(pos, f"unexpected {text!r}")


def parse_condition(text: str) -> Condition:
    """Parse a trigger condition; raises QueryError with the column at fault."""
    if not 1 <= len(text) <= 128:
        raise QueryError(f"trigger condition must be 1-128 characters: {text!r}")
    return Condition(text, _Parser(text).parse())
