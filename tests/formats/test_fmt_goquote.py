"""Go %q quoting and unquoting, checked against strconv.Quote/Unquote behaviour."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaudit.event.formats.goquote import GoQuoteError, go_quote, go_unquote, scan_go_string

# (Python string, what Go's strconv.Quote writes for it)
QUOTE_CASES = [
    ("", '""'),
    ("plain", '"plain"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("back\\slash", '"back\\\\slash"'),
    ("\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
    ("\x00\x1f\x7f", '"\\x00\\x1f\\x7f"'),
    ("café 日本 😀", '"café 日本 😀"'),  # printable runes stay as they are
    ("\u00a0", '"\\u00a0"'),  # no-break space is not printable for Go
    ("\u200b", '"\\u200b"'),
    ("\U000e0001", '"\\U000e0001"'),  # LANGUAGE TAG, a format character
    ("'single'", "\"'single'\""),
]


@pytest.mark.parametrize(("text", "quoted"), QUOTE_CASES)
def test_quote_matches_go(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted
    assert go_unquote(quoted) == text


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ('"\\101\\060"', "A0"),  # octal escapes are bytes
        ('"\\xe4\\xb8\\xad"', "中"),  # hex bytes that form UTF-8
        ('"\\u4e2d\\U0001F600"', "中😀"),
        ('"\\x41\\x42"', "AB"),
        ('"\\xff"', "\ufffd"),  # a lone invalid byte cannot be kept in a str
        ('"tab\there"', "tab\there"),  # a raw tab is allowed inside the quotes
    ],
)
def test_unquote_escapes(literal: str, value: str) -> None:
    assert go_unquote(literal) == value


@pytest.mark.parametrize(
    ("literal", "offset"),
    [
        ('"\\q"', 1),  # unknown escape
        ('"\\\'"', 1),  # \' is only valid in rune literals
        ('"\\x4"', 1),
        ('"\\x_1"', 1),  # int(..., 16) would accept the underscore; Go does not
        ('"\\u12"', 1),
        ('"\\ud800"', 1),  # surrogate halves are not code points
        ('"\\U00110000"', 1),
        ('"\\400"', 1),  # octal above 255
        ('"\\12"', 1),
        ('"open', 0),
        ('"a\nb"', 2),
        ('"a"b', 3),
        ("noquote", 0),
    ],
)
def test_unquote_rejects(literal: str, offset: int) -> None:
    with pytest.raises(GoQuoteError) as info:
        go_unquote(literal)
    assert info.value.offset == offset


def test_scan_returns_end_index() -> None:
    text = 'x="a\\"b" y="c"'
    value, end = scan_go_string(text, 2)
    assert (value, text[end:]) == ('a"b', ' y="c"')


@given(st.text(alphabet=st.characters(exclude_categories=("Cs",))))
def test_round_trip(text: str) -> None:
    quoted = go_quote(text)
    assert go_unquote(quoted) == text
    # %q output is one line of printable text: safe inside a log line
    assert "\n" not in quoted and quoted.isprintable()
