"""Search -> SQL: token semantics on real stores, and the property that the SQL path selects
exactly what the reference matcher (tests/query/reference.py) selects."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaudit.errors import QueryError
from kaudit.query import search
from kaudit.query.run import compile_query, execute, run_query
from kaudit.query.search import And, Compare, FieldMatch, Not, Or, Range, Term

from . import reference
from .conftest import event, open_store


def ids(store: Any, q: str, **kw: Any) -> set[str]:
    res = execute(store, compile_query(q + " | select auditID", default_limit=None, **kw))
    return {r[0] for r in res.rows}


@pytest.fixture
def small(store_factory: Any) -> Any:
    return store_factory(
        [
            event(1, user="system:serviceaccount:kube-system:replicaset-controller"),
            event(2, user="alice", verb="delete"),
            event(3, user="system:node:worker-1", verb="Delete"),
            event(4, user="kubernetes-admin", ips=("8.8.4.4", "10.0.0.2"), code=403),
            event(5, user="www.yl.mock.com", code=None, resource=None, uri="/healthz"),
            event(
                6,
                user="bob",
                verb="create",
                request_object={
                    "kind": "Pod",
                    "spec": {
                        "containers": [
                            {"name": "a", "securityContext": {"privileged": False}},
                            {"name": "b", "securityContext": {"privileged": True}},
                        ]
                    },
                },
                extra_annotations={"example.com/team": "red-team"},
            ),
        ]
    )


def test_tokens_not_equality(small: Any) -> None:
    # the official ACK rules rely on ':' being a delimiter (spec §1.9)
    assert ids(small, "user.username:serviceaccount") == {"id-00001"}
    assert ids(small, "not user.username:serviceaccount") == {
        f"id-0000{i}" for i in (2, 3, 4, 5, 6)
    }
    # '.' is not a delimiter: the host name is one token
    assert ids(small, "user.username:www.yl.mock.com") == {"id-00005"}
    assert ids(small, "user.username:mock") == set()


def test_case_insensitive_values_and_names(small: Any) -> None:
    assert ids(small, "verb:DELETE") == {"id-00002", "id-00003"}
    assert ids(small, "VERB:delete USER.USERNAME:alice") == {"id-00002"}


def test_wildcards_presence_numbers(small: Any) -> None:
    assert ids(small, "user.username:serv*") == {"id-00001"}
    assert ids(small, "user.username:al?ce") == {"id-00002"}
    assert ids(small, "objectRef.resource:*") == {f"id-0000{i}" for i in (1, 2, 3, 4, 6)}
    assert ids(small, "responseStatus.code >= 400") == {"id-00004"}
    assert ids(small, "responseStatus.code in [200 200]") == {f"id-0000{i}" for i in (1, 2, 3, 6)}
    assert ids(small, "responseStatus.code in (200 403]") == {"id-00004"}


def test_json_array_text_and_full_text(small: Any) -> None:
    assert ids(small, "sourceIPs:8.8.4.4") == {"id-00004"}
    assert ids(small, "user.groups:system") == {f"id-0000{i}" for i in range(1, 7)}
    assert ids(small, "healthz") == {"id-00005"}


def test_nested_paths_and_annotations(small: Any) -> None:
    assert ids(small, "requestObject.spec.containers.securityContext.privileged:true") == {
        "id-00006"
    }
    assert ids(small, "requestObject.kind:pod") == {"id-00006"}
    assert ids(small, '"annotations.example.com/team":red-team') == {"id-00006"}
    assert ids(small, "annotations.authorization.k8s.io/decision:allow") == {
        f"id-0000{i}" for i in range(1, 7)
    }


def test_time_window_is_a_parameter(small: Any) -> None:
    from .conftest import T0

    assert ids(small, "*", start=T0 + 2, end=T0 + 4) == {"id-00002", "id-00003"}
    q = compile_query("verb:get", start=T0, end=T0 + 10)
    assert "get" in q.params and T0 in q.params and T0 + 10 in q.params


def test_values_are_bound_never_spliced() -> None:
    evil = "x'); DROP TABLE events; --"
    q = compile_query(f'verb:"{evil}" | select count(1)')
    assert "DROP" not in q.sql
    assert evil.lower() in q.params or any(isinstance(p, str) and "drop" in p for p in q.params)


def test_text_field_numeric_comparison_is_an_error() -> None:
    with pytest.raises(QueryError, match="'verb' is a text field"):
        compile_query("verb > 3")
    with pytest.raises(QueryError, match="unknown field 'nosuch'"):
        compile_query("nosuch:x")


# ---- property: SQL path == reference matcher ------------------------------------------------

USERS = [
    "alice",
    "Alice",
    "bob",
    "system:serviceaccount:kube-system:default",
    "system:node:n1",
    "kubernetes-admin",
    "system:anonymous",
]
VERBS = ["get", "list", "create", "delete", "patch", "GET"]
IPS = ["10.0.0.1", "8.8.4.4", "47.100.1.2", "::1"]
RESOURCES = ["pods", "secrets", "nodes", None]

events_strategy = st.lists(
    st.builds(
        lambda n, verb, user, ips, code, res, sub, priv, team: event(
            n,
            verb=verb,
            user=user,
            ips=ips,
            code=code,
            resource=res,
            subresource=sub if res else None,
            request_object=None
            if priv is None
            else {"spec": {"containers": [{"securityContext": {"privileged": p}} for p in priv]}},
            extra_annotations=None if team is None else {"example.com/team": team},
        ),
        st.just(0),
        st.sampled_from(VERBS),
        st.sampled_from(USERS),
        st.lists(st.sampled_from(IPS), min_size=1, max_size=2).map(tuple),
        st.sampled_from([200, 201, 401, 403, 404, None]),
        st.sampled_from(RESOURCES),
        st.sampled_from([None, "exec", "log"]),
        st.one_of(st.none(), st.lists(st.booleans(), max_size=2)),
        st.sampled_from([None, "red", "blue-team"]),
    ),
    max_size=10,
)

TEXT_FIELDS = [
    "verb",
    "user.username",
    "User.UserName",
    "objectRef.resource",
    "objectRef.subresource",
    "sourceIPs",
    "user.groups",
    "annotations.authorization.k8s.io/decision",
    "annotations.example.com/team",
    "requestObject.spec.containers.securityContext.privileged",
    "responseStatus.code",
]
NUMERIC_FIELDS = ["responseStatus.code", "__time__"]
VALUES = [
    "get",
    "Delete",
    "alice",
    "serviceaccount",
    "system",
    "node",
    "kube-system",
    "8.8.4.4",
    "10.0.0.1",
    "pods",
    "exec",
    "red",
    "blue-team",
    "true",
    "false",
    "403",
    "allow",
    "ali*",
    "serv*",
    "po?s",
    "s*t",
    "*",
]


def _leaf() -> st.SearchStrategy[search.Node]:
    return st.one_of(
        st.builds(FieldMatch, st.sampled_from(TEXT_FIELDS), st.sampled_from(VALUES)),
        st.builds(
            FieldMatch,
            st.sampled_from(TEXT_FIELDS),
            st.sampled_from(["system:serviceaccount", "kube-system default", "", "Alice"]),
            st.just(True),
        ),
        st.builds(Term, st.sampled_from([v for v in VALUES if v != "*"])),
        st.builds(
            Compare,
            st.sampled_from(NUMERIC_FIELDS),
            st.sampled_from([">", ">=", "<", "<=", "="]),
            st.sampled_from([200, 401, 403, 1_700_000_000, 300.5]),
        ),
        st.builds(
            Range,
            st.sampled_from(NUMERIC_FIELDS),
            st.sampled_from([200, 400]),
            st.sampled_from([403, 404, 1_800_000_000]),
            st.booleans(),
            st.booleans(),
        ),
    )


search_trees = st.recursive(
    _leaf(),
    lambda sub: st.one_of(st.builds(And, sub, sub), st.builds(Or, sub, sub), st.builds(Not, sub)),
    max_leaves=6,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(events_strategy, st.lists(search_trees, min_size=1, max_size=6))
def test_sql_path_selects_what_the_reference_selects(
    events: list[dict[str, Any]], trees: list[search.Node]
) -> None:
    for i, ev in enumerate(events):
        ev["auditID"] = f"id-{i:05d}"
    store = open_store(events)
    try:
        for tree in trees:
            text = search.render(tree)
            want = {ev["auditID"] for ev in events if reference.matches(tree, ev)}
            got = ids(store, text)
            assert got == want, text
    finally:
        store.close()


def test_bare_search_lists_events_newest_first(small: Any) -> None:
    res = run_query(small, "verb:delete")
    assert res.columns[:3] == ("cluster", "__time__", "auditID")
    assert [r[2] for r in res.rows] == ["id-00003", "id-00002"]


def test_compiled_text_is_reused_across_windows(small: Any) -> None:
    from .conftest import T0

    a = compile_query("verb:delete | select auditID", start=T0, end=T0 + 3)
    b = compile_query("verb:delete | select auditID", start=T0 + 3, end=T0 + 10)
    c = compile_query("verb:delete | select auditID", start=T0 + 3)
    assert a.sql == b.sql and a.params[-2:] == (T0, T0 + 3) and b.params[-2:] == (T0 + 3, T0 + 10)
    assert c.sql != a.sql and c.params[-1] == T0 + 3
    assert ids(small, "verb:delete", start=T0, end=T0 + 3) == {"id-00002"}
    assert ids(small, "verb:delete", start=T0 + 3, end=T0 + 10) == {"id-00003"}


def test_glob_specials_in_quoted_tokens_are_literal(store_factory: Any) -> None:
    store = store_factory(
        [
            event(1, user="x:a*b:y"),
            event(2, user="x:axb:y"),
            event(3, user="x:a\\b:y"),
            event(4, user="x:ab:y"),
        ]
    )
    assert ids(store, 'user.username:"a*b"') == {"id-00001"}
    assert ids(store, 'user.username:"a\\\\b"') == {"id-00003"}
    assert ids(store, "user.username:a*b") == {"id-00001", "id-00002", "id-00003", "id-00004"}
