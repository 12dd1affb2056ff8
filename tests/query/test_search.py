"""The search parser: shapes, precedence, errors with positions, and the renderer round trip."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaudit.errors import QueryError
from kaudit.query import search
from kaudit.query.search import And, Compare, FieldMatch, MatchAll, Not, Or, Range, Term


def p(text: str) -> search.Node:
    return search.parse(text)


def test_empty_and_star_match_everything() -> None:
    assert p("") == MatchAll()
    assert p("   ") == MatchAll()
    assert p("*") == MatchAll()


def test_field_value_with_spaces_around_colon() -> None:
    # Alibaba's own templates write `verb : delete`; example A writes `stage:  ResponseStarted`
    assert p("verb : create") == FieldMatch("verb", "create")
    assert p("stage:  ResponseStarted") == FieldMatch("stage", "ResponseStarted")


def test_example_a_search_part() -> None:
    tree = p("verb : create and objectRef.subresource:exec and stage:  ResponseStarted")
    assert tree == And(
        And(FieldMatch("verb", "create"), FieldMatch("objectRef.subresource", "exec")),
        FieldMatch("stage", "ResponseStarted"),
    )


def test_value_may_hold_colons_and_quoted_names() -> None:
    assert p("user.username:system:serviceaccount:kube-system:x") == FieldMatch(
        "user.username", "system:serviceaccount:kube-system:x"
    )
    assert p('"request method":PUT') == FieldMatch("request method", "PUT")
    assert p('user.username:"system:anonymous"') == FieldMatch(
        "user.username", "system:anonymous", quoted=True
    )
    assert p(r'"a\"b":"c\\d"') == FieldMatch('a"b', "c\\d", quoted=True)


def test_precedence_and_not_bind_tighter_than_or() -> None:
    # spec §1.4: `a or b not c` is `a or (b and not c)`
    assert p("a or b not c") == Or(Term("a"), And(Term("b"), Not(Term("c"))))
    assert p("a b") == And(Term("a"), Term("b"))
    assert p("not a") == Not(Term("a"))
    assert p("NOT a AND b OR c") == Or(And(Not(Term("a")), Term("b")), Term("c"))
    assert p("(a or b) c") == And(Or(Term("a"), Term("b")), Term("c"))


def test_ack_delete_template_search() -> None:
    tree = p(
        "verb : delete NOT user.username: node NOT user.username: serviceaccount "
        "NOT user.username: apiserver"
    )
    assert tree == And(
        And(
            And(FieldMatch("verb", "delete"), Not(FieldMatch("user.username", "node"))),
            Not(FieldMatch("user.username", "serviceaccount")),
        ),
        Not(FieldMatch("user.username", "apiserver")),
    )


def test_numeric_forms() -> None:
    assert p("responseStatus.code >= 400") == Compare("responseStatus.code", ">=", 400)
    assert p("responseStatus.code=403") == Compare("responseStatus.code", "=", 403)
    assert p("x < 1.5") == Compare("x", "<", 1.5)
    assert p("responseStatus.code in [400 499]") == Range("responseStatus.code", 400, 499)
    assert p("responseStatus.code in (400 499]") == Range(
        "responseStatus.code", 400, 499, low_inclusive=False
    )


def test_presence_wildcards_and_empty_value() -> None:
    assert p("objectRef.subresource:*") == FieldMatch("objectRef.subresource", "*")
    assert p("user.username:ali*") == FieldMatch("user.username", "ali*")
    assert p('region:"cn*"') == FieldMatch("region", "cn*", quoted=True)
    assert p('key:""') == FieldMatch("key", "", quoted=True)
    assert p("serv?ce") == Term("serv?ce")


def test_nested_json_path() -> None:
    tree = p("requestObject.spec.containers.securityContext.privileged:true")
    assert tree == FieldMatch("requestObject.spec.containers.securityContext.privileged", "true")


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("verb:", 6, "missing value"),
        ("(verb:get", 1, "missing ')'"),
        ("verb:get)", 9, "unbalanced ')'"),
        ('verb:"get', 6, "unterminated"),
        ("user.username:*abc", 15, "wildcard needs a prefix"),
        ("*abc", 1, "wildcard needs a prefix"),
        ("code > abc", 8, "expected a number"),
        ("code in [1 2", 13, "expected ']' or ')'"),
        ("or verb:get", 1, "needs an expression"),
        ("a and", 6, "found the end"),
        ("()", 2, "empty parentheses"),
        ('#"a b"', 1, "phrase search"),
    ],
)
def test_errors_point_at_the_problem(text: str, column: int, message: str) -> None:
    with pytest.raises(QueryError) as info:
        search.parse(text)
    err = info.value
    assert message in err.message
    assert err.location is not None and err.location.column == column
    # the caret line sits under the reported column
    lines = err.message.split("\n")
    assert lines[1] == "  " + text
    assert lines[2].index("^") - 2 == column - 1


# ---- round trip through the renderer --------------------------------------------------------

_WORD = st.from_regex(r"[A-Za-z][A-Za-z0-9._/-]{0,8}", fullmatch=True).filter(
    lambda w: w.lower() not in search.KEYWORDS
)
_VALUE = st.one_of(
    _WORD,
    st.from_regex(r"[a-z][a-z0-9:.-]{0,6}[*?]?", fullmatch=True),
    st.just("*"),
)
_QUOTED = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=8,
)
_NUMBER = st.one_of(
    st.integers(-10_000, 10_000),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(lambda f: round(f, 3)),
)


def _leaf() -> st.SearchStrategy[search.Node]:
    field = st.one_of(_WORD, _QUOTED.filter(lambda s: s != ""))
    return st.one_of(
        st.builds(FieldMatch, field, _VALUE, st.just(False)),
        st.builds(FieldMatch, field, _QUOTED, st.just(True)),
        st.builds(Term, _WORD.filter(lambda w: w[0] not in "*?"), st.just(False)),
        st.builds(Term, _QUOTED.filter(lambda s: s != ""), st.just(True)),
        st.builds(Compare, field, st.sampled_from([">", ">=", "<", "<=", "="]), _NUMBER),
        st.builds(Range, field, _NUMBER, _NUMBER, st.booleans(), st.booleans()),
        st.just(MatchAll()),
    )


trees = st.recursive(
    _leaf(),
    lambda sub: st.one_of(st.builds(And, sub, sub), st.builds(Or, sub, sub), st.builds(Not, sub)),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(trees)
def test_render_round_trips(tree: search.Node) -> None:
    text = search.render(tree)
    assert search.parse(text) == tree
    # rendering is canonical: a second round gives the same text
    assert search.render(search.parse(text)) == text
