"""The --audit-log-format=legacy line (spec k8s-audit §9.4) to v1 events and back."""

from __future__ import annotations

from typing import Any

import pytest
from _formats_data import FIXTURES
from hypothesis import given
from hypothesis import strategies as st

from kaudit.errors import DecodeError
from kaudit.event.formats.legacy import format_legacy_line, looks_like_legacy, parse_legacy_line

# The spec's example (from kube-apiserver's backend_test.go), with its elided time and ID filled.
SPEC_LINE = (
    '2017-07-26T14:16:05.123456789+02:00 AUDIT: id="c939d2a7-1c37-4ef1-b2f7-4ba9b1e43b53" '
    'stage="RequestReceived" ip="127.0.0.1" method="get" user="admin" '
    'groups="\\"system:masters\\",\\"system:authenticated\\"" as="<self>" asgroups="<lookup>" '
    'user-agent="kube-admin" namespace="default" uri="/apis/rbac.authorization.k8s.io/v1/roles" '
    'response="200"'
)


def test_spec_example() -> None:
    assert parse_legacy_line(SPEC_LINE) == {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": "c939d2a7-1c37-4ef1-b2f7-4ba9b1e43b53",
        "stage": "RequestReceived",
        "requestURI": "/apis/rbac.authorization.k8s.io/v1/roles",
        "verb": "get",
        "user": {"username": "admin", "groups": ["system:masters", "system:authenticated"]},
        "sourceIPs": ["127.0.0.1"],
        "userAgent": "kube-admin",
        "objectRef": {"namespace": "default"},
        "responseStatus": {"code": 200},
        # +02:00 converted to UTC; nanoseconds truncated to MicroTime's 6 digits
        "requestReceivedTimestamp": "2017-07-26T12:16:05.123456Z",
        "stageTimestamp": "2017-07-26T12:16:05.123456Z",
        "annotations": {"kaudit.io/source-format": "legacy"},
    }
    assert "level" not in parse_legacy_line(SPEC_LINE)


def _fixture_lines() -> list[str]:
    return (FIXTURES / "legacy_audit.log").read_text().splitlines()


def test_fixture_file() -> None:
    events = [parse_legacy_line(line) for line in _fixture_lines()]
    received, complete, unauthenticated, impersonated, tricky = events

    assert received["requestReceivedTimestamp"] == "2024-02-01T08:00:01.123456Z"
    assert "responseStatus" not in received  # response="<deferred>"
    assert "objectRef" not in received  # namespace="<none>"
    assert complete["responseStatus"] == {"code": 200}
    assert complete["stageTimestamp"] == "2024-02-01T08:00:01.130000Z"

    # 401: no user, no groups, empty user agent → absent
    assert unauthenticated["user"] == {}
    assert "userAgent" not in unauthenticated
    assert unauthenticated["requestReceivedTimestamp"] == "2024-02-01T08:00:02.500000Z"
    assert unauthenticated["responseStatus"] == {"code": 401}
    assert unauthenticated["objectRef"] == {"namespace": "kube-system"}

    assert impersonated["impersonatedUser"] == {
        "username": "jane@example.com",
        "groups": ["dev", 'qa, "night" team'],
    }
    assert impersonated["requestURI"].endswith(
        "command=id%3Bcat+%2Fetc%2Fpasswd&container=web&stdin=true&stdout=true&tty=true"
    )
    assert impersonated["requestReceivedTimestamp"] == "2024-02-01T08:00:03.000000Z"

    assert tricky["userAgent"] == 'curl/8.5.0 "x" \\ok\\ \t\x00\u200b日本'
    assert tricky["requestReceivedTimestamp"] == "2024-02-01T08:00:04.000001Z"
    for event in events:
        assert looks_like_legacy(format_legacy_line(event))


def test_format_reproduces_the_fixture() -> None:
    # Our writer matches EventString byte for byte after the time, which it writes in UTC
    # with at most 6 fractional digits.
    for line in _fixture_lines():
        written = format_legacy_line(parse_legacy_line(line))
        assert written.partition(" AUDIT: ")[2] == line.partition(" AUDIT: ")[2]
    assert format_legacy_line(parse_legacy_line(SPEC_LINE)).startswith(
        "2017-07-26T12:16:05.123456Z AUDIT: "
    )


@pytest.mark.parametrize(
    ("user", "groups", "expected"),
    [
        ("<none>", "<none>", {}),
        ("alice", "<none>", {"username": "alice"}),
        # groups are only written for a named user: this user is literally called "<none>"
        ("<none>", '\\"g\\"', {"username": "<none>", "groups": ["g"]}),
    ],
)
def test_user_sentinels(user: str, groups: str, expected: dict[str, Any]) -> None:
    line = SPEC_LINE.replace('user="admin"', f'user="{user}"').replace(
        'groups="\\"system:masters\\",\\"system:authenticated\\""', f'groups="{groups}"'
    )
    assert parse_legacy_line(line)["user"] == expected


@pytest.mark.parametrize(
    ("as_user", "as_groups", "expected"),
    [
        ("<self>", "<lookup>", None),
        ("bob", "<lookup>", {"username": "bob"}),
        ("bob", "", {"username": "bob", "groups": []}),  # empty, non-nil group list
        ("", '\\"ops\\"', {"groups": ["ops"]}),  # v1 omits an empty username
    ],
)
def test_impersonation(as_user: str, as_groups: str, expected: dict[str, Any] | None) -> None:
    line = SPEC_LINE.replace(
        'as="<self>" asgroups="<lookup>"', f'as="{as_user}" asgroups="{as_groups}"'
    )
    assert parse_legacy_line(line).get("impersonatedUser") == expected


def test_unknown_ip_and_crlf() -> None:
    event = parse_legacy_line(SPEC_LINE.replace('ip="127.0.0.1"', 'ip="<unknown>"') + "\r\n")
    assert "sourceIPs" not in event
    assert event["requestURI"] == "/apis/rbac.authorization.k8s.io/v1/roles"


def test_extra_keys_are_ignored() -> None:
    event = parse_legacy_line(SPEC_LINE + ' future-key="x"')
    assert event == parse_legacy_line(SPEC_LINE)


HAND_MADE: list[dict[str, Any]] = [
    {
        "auditID": "a1",
        "stage": "ResponseComplete",
        "requestURI": '/api/v1/namespaces/x/configmaps?fieldSelector=metadata.name%3D"q"',
        "verb": "list",
        "user": {"username": 'we"ird\\name', "groups": ["a,b", '"quoted"', "back\\slash", ""]},
        "sourceIPs": ["2001:db8::1", "10.0.0.1"],
        "userAgent": "agent\nwith\nnewlines\x7f and \u2028 separators",
        "objectRef": {"namespace": "x"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": "2024-01-01T00:00:00.000000Z",
    },
    {
        "auditID": "a2",
        "stage": "Panic",
        "requestURI": "/healthz",
        "verb": "get",
        "user": {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
        "impersonatedUser": {"username": "😀", "groups": []},
        "responseStatus": {"code": 500},
        "requestReceivedTimestamp": "1999-12-31T23:59:59.999999Z",
    },
]


@pytest.mark.parametrize("event", HAND_MADE, ids=lambda e: e["auditID"])
def test_round_trip_hand_made(event: dict[str, Any]) -> None:
    line = format_legacy_line(event)
    assert "\n" not in line
    back = parse_legacy_line(line)
    assert back["auditID"] == event["auditID"]
    assert back["stage"] == event["stage"]
    assert back["requestURI"] == event["requestURI"]
    assert back["verb"] == event["verb"]
    assert back["user"] == event["user"]
    assert back.get("impersonatedUser") == event.get("impersonatedUser")
    assert back.get("userAgent") == event.get("userAgent")
    # only the first source IP is written
    assert back.get("sourceIPs") == (event.get("sourceIPs", [])[:1] or None)
    assert back.get("objectRef") == event.get("objectRef")
    assert back["responseStatus"] == event["responseStatus"]
    assert back["requestReceivedTimestamp"] == event["requestReceivedTimestamp"]


_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30)


@given(
    audit_id=_TEXT,
    username=_TEXT.filter(lambda s: s not in ("", "<none>")),
    groups=st.lists(_TEXT, max_size=4),
    agent=_TEXT,
    uri=_TEXT,
    namespace=_TEXT.filter(lambda s: s not in ("", "<none>")),
    code=st.integers(min_value=100, max_value=599),
)
def test_round_trip_property(
    audit_id: str,
    username: str,
    groups: list[str],
    agent: str,
    uri: str,
    namespace: str,
    code: int,
) -> None:
    event: dict[str, Any] = {
        "auditID": audit_id,
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": "patch",
        "user": {"username": username, "groups": groups} if groups else {"username": username},
        "userAgent": agent,
        "objectRef": {"namespace": namespace},
        "responseStatus": {"code": code},
        "requestReceivedTimestamp": "2024-06-01T12:00:00.500000Z",
    }
    back = parse_legacy_line(format_legacy_line(event))
    assert (back["auditID"], back["requestURI"], back["user"]) == (audit_id, uri, event["user"])
    assert back.get("userAgent", "") == agent
    assert back["objectRef"] == {"namespace": namespace}
    assert back["responseStatus"] == {"code": code}


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("", "prefix"),
        ('{"kind":"Event"}', "prefix"),
        (SPEC_LINE.replace("2017-07-26T14:16:05.123456789+02:00", "yesterday"), "timestamp"),
        (SPEC_LINE.replace("2017-07-26T14", "2017-13-26T14"), "timestamp"),
        (SPEC_LINE.replace(' response="200"', ""), "missing response"),
        (SPEC_LINE + ' id="again"', "twice"),
        (SPEC_LINE.replace('uri="/apis', 'uri="/ap\\qis'), "invalid escape"),
        (SPEC_LINE[:-1], "unterminated"),
        (SPEC_LINE[:-5], "double-quoted"),
        (SPEC_LINE.replace('stage="RequestReceived" ', 'stage="RequestReceived"'), "space"),
        (SPEC_LINE.replace('ip="127.0.0.1"', "ip=127.0.0.1"), "double-quoted"),
        (SPEC_LINE.replace(' method="get"', ' "get"'), "key="),
        (SPEC_LINE.replace('response="200"', 'response="OK"'), "status code"),
        (SPEC_LINE.replace('\\"system:masters\\",', '\\"system:masters\\" '), "','"),
        (SPEC_LINE.replace(',\\"system:authenticated\\"', ","), "trailing"),
        (SPEC_LINE.replace('\\"system:masters\\"', "system:masters"), "groups"),
    ],
)
def test_malformed(line: str, needle: str) -> None:
    with pytest.raises(DecodeError) as info:
        parse_legacy_line(line)
    assert info.value.reason == "bad_legacy_line"
    assert needle in info.value.message


def test_error_carries_column() -> None:
    line = SPEC_LINE.replace('uri="/apis', 'uri="/ap\\qis')
    with pytest.raises(DecodeError) as info:
        parse_legacy_line(line)
    assert info.value.location is not None
    column = info.value.location.column
    assert column is not None and line[column - 1 : column + 1] == "\\q"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (SPEC_LINE, True),
        ("  " + SPEC_LINE, True),
        ('2024-01-01T00:00:00Z AUDIT: id="x"', True),
        ('{"kind":"Event"}', False),
        ('I0101 00:00:00.000000 1 audit.go:1] AUDIT: id="x"', False),
        ('2024-01-01T00:00:00Z {"kind":"Event"}', False),
    ],
)
def test_looks_like_legacy(line: str, expected: bool) -> None:
    assert looks_like_legacy(line) is expected


def test_slow_path_agrees_with_fast_path() -> None:
    # Reordered keys miss the one-regex fast path and go through the general scanner.
    for line in [SPEC_LINE, *_fixture_lines()]:
        head, _, rest = line.partition(" AUDIT: ")
        first, second, tail = rest.split(" ", 2)
        reordered = f"{head} AUDIT: {second} {first} {tail}"
        assert parse_legacy_line(reordered) == parse_legacy_line(line)
