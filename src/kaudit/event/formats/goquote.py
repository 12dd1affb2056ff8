"""Go's `%q` string quoting (`strconv.Quote`) and its exact inverse (`strconv.Unquote`).

The legacy audit line format (spec k8s-audit §9.4) writes every value with `%q`, so reading it
back needs Go's escape rules, not Python's: `\\xNN` and octal `\\NNN` are raw *bytes* (which
may form UTF-8 sequences), `\\u`/`\\U` are code points, and `\\'` is not allowed in a
double-quoted string.
"""

from __future__ import annotations

import re

_SIMPLE_ESCAPES = {
    "a": 0x07,
    "b": 0x08,
    "f": 0x0C,
    "n": 0x0A,
    "r": 0x0D,
    "t": 0x09,
    "v": 0x0B,
    "\\": 0x5C,
    '"': 0x22,
}
_QUOTE_ESCAPES = {chr(v): f"\\{k}" for k, v in _SIMPLE_ESCAPES.items()}
_HEX = frozenset("0123456789abcdefABCDEF")
_OCT = frozenset("01234567")
_SPECIAL = re.compile(r'["\\\n]')
# A literal without escapes, the common case: read it in one step.
_PLAIN = re.compile(r'"([^"\\\n]*)"')


class GoQuoteError(ValueError):
    """A malformed Go string literal; `offset` is the 0-based index of the problem."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def go_quote(text: str) -> str:
    """`strconv.Quote(text)`: a double-quoted Go literal, printable runes kept as they are."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif ch.isprintable():
            # Python's isprintable and Go's unicode.IsPrint agree: letters, marks, numbers,
            # punctuation, symbols and the ASCII space.
            out.append(ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            # Go strings cannot hold surrogates; strconv.Quote writes U+FFFD for invalid runes.
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _hex_value(text: str, start: int, width: int) -> int:
    digits = text[start : start + width]
    if len(digits) != width or not set(digits) <= _HEX:
        raise GoQuoteError(f"escape needs {width} hex digits", start - 2)
    return int(digits, 16)


def scan_go_string(text: str, start: int) -> tuple[str, int]:
    """Read the Go double-quoted literal at `text[start]`; return its value and the end index.

    Bytes from `\\xNN`/octal escapes that do not form valid UTF-8 become U+FFFD.
    """
    if start >= len(text) or text[start] != '"':
        raise GoQuoteError("expected a double-quoted string", start)
    buf = bytearray()
    i = start + 1
    n = len(text)
    while True:
        if i >= n:
            raise GoQuoteError("unterminated string", start)
        ch = text[i]
        if ch == '"':
            return buf.decode("utf-8", "replace"), i + 1
        if ch == "\n":
            raise GoQuoteError("newline inside a quoted string", i)
        if ch != "\\":
            special = _SPECIAL.search(text, i)
            j = n if special is None else special.start()
            buf += text[i:j].encode("utf-8", "surrogatepass")
            i = j
            continue
        if i + 1 >= n:
            raise GoQuoteError("unterminated string", start)
        esc = text[i + 1]
        if esc in _SIMPLE_ESCAPES:
            buf.append(_SIMPLE_ESCAPES[esc])
            i += 2
        elif esc == "x":
            buf.append(_hex_value(text, i + 2, 2))
            i += 4
        elif esc in "uU":
            width = 4 if esc == "u" else 8
            code = _hex_value(text, i + 2, width)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise GoQuoteError(f"\\{esc} escape is not a valid code point", i)
            buf += chr(code).encode("utf-8")
            i += 2 + width
        elif esc in _OCT:
            digits = text[i + 1 : i + 4]
            if len(digits) != 3 or not set(digits) <= _OCT:
                raise GoQuoteError("octal escape needs 3 digits", i)
            value = int(digits, 8)
            if value > 0xFF:
                raise GoQuoteError("octal escape above \\377", i)
            buf.append(value)
            i += 4
        else:
            raise GoQuoteError(f"invalid escape \\{esc}", i)


def go_unquote(literal: str) -> str:
    """`strconv.Unquote` for a double-quoted literal; the whole input must be one literal."""
    value, end = scan_go_string(literal, 0)
    if end != len(literal):
        raise GoQuoteError("text after the closing quote", end)
    return value
