"""EKS audit logs exported from CloudWatch Logs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _formats_data import fixture, panther_cases

from kaudit.errors import DecodeError
from kaudit.event.formats.detect import sniff
from kaudit.event.formats.eks import (
    eks_cluster_name,
    eks_record_to_event,
    eks_records,
    looks_like_eks,
    parse_eks_export_line,
    unwrap_eks,
)

STREAM = "kube-apiserver-audit-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
EKS_CASES = panther_cases("native_audit_eks")


def _shapes(event: dict[str, Any]) -> dict[str, Any]:
    """The same event in each CloudWatch shape kaudit reads."""
    message = json.dumps(event, separators=(",", ":"))
    record = {"timestamp": 1669680544380, "message": message, "ingestionTime": 1669680545012}
    return {
        "record": {**record, "logStream": STREAM},
        "filter-log-events": {
            "events": [{**record, "logStreamName": STREAM, "eventId": "3719"}],
            "searchedLogStreams": [],
        },
        "subscription": {
            "messageType": "DATA_MESSAGE",
            "owner": "123412341234",
            "logGroup": "/aws/eks/example-cluster/cluster",
            "logStream": STREAM,
            "subscriptionFilters": ["kaudit"],
            "logEvents": [{"id": "3719", "timestamp": 1669680544380, "message": message}],
        },
    }


@pytest.mark.parametrize("case", EKS_CASES, ids=lambda c: f"{c['rule_id']}:{c['name']}")
def test_panther_eks_events_unwrap(case: dict[str, Any]) -> None:
    # Panther's EKS cases are the bare events CloudWatch carries (plus Panther's p_* fields):
    # wrapped back into CloudWatch's shapes they must come out unchanged.
    event = case["event"]
    assert sniff(event) == "v1"
    for shape, wrapped in _shapes(event).items():
        assert sniff(wrapped) == "eks", shape
        (unwrapped,) = unwrap_eks(wrapped)
        assert unwrapped == event, shape
        assert unwrapped.get("verb") == event.get("verb")
        assert unwrapped.get("user") == event.get("user")
        assert unwrapped.get("objectRef") == event.get("objectRef")
        assert unwrapped.get("responseStatus") == event.get("responseStatus")
        assert unwrapped.get("sourceIPs") == event.get("sourceIPs")
    line = f"2022-11-29T00:09:04.380Z {json.dumps(event)}"
    assert sniff(line) == "eks"
    assert parse_eks_export_line(line) == event


def test_filter_log_events_fixture_rejects_only_the_authenticator_record() -> None:
    page = fixture("eks_filter_log_events.json")
    assert looks_like_eks(page) and sniff(page) == "eks"
    records = eks_records(page)
    assert len(records) == 3
    events, rejects = [], []
    for record in records:
        try:
            events.append(eks_record_to_event(record))
        except DecodeError as exc:
            rejects.append(exc.reason)
    assert rejects == ["not_k8s_audit"]
    assert [e["auditID"] for e in events] == [
        "6e3c1b55-7a0f-4b8e-9f2d-31c8a4d7e902",
        "0b7f2d94-c6e1-4a53-8d2b-5e9a1f3c7d60",
    ]
    listing, exec_start = events
    assert listing["user"]["extra"]["sessionName"] == ["jane"]
    assert exec_start["objectRef"]["subresource"] == "exec"
    assert exec_start["responseStatus"]["code"] == 101
    with pytest.raises(DecodeError) as info:
        unwrap_eks(page)  # all-or-nothing helper stops at the authenticator record
    assert info.value.reason == "not_k8s_audit"


def test_subscription_fixture() -> None:
    payload = fixture("eks_subscription.json")
    assert sniff(payload) == "eks"
    events = unwrap_eks(payload)
    assert [e["stage"] for e in events] == ["ResponseComplete", "ResponseStarted"]
    assert eks_cluster_name(payload) == "prod-us"
    page = fixture("eks_filter_log_events.json")
    assert events == [
        eks_record_to_event(page["events"][0]),
        eks_record_to_event(page["events"][2]),
    ]


def test_subscription_from_another_stream_is_not_audit() -> None:
    payload = {**fixture("eks_subscription.json"), "logStream": "kube-scheduler-5b0d9f1e"}
    with pytest.raises(DecodeError) as info:
        eks_records(payload)
    assert info.value.reason == "not_k8s_audit"


def test_control_message_has_no_events() -> None:
    control = {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [
            {
                "id": "",
                "timestamp": 1713426069538,
                "message": "CWL CONTROL MESSAGE: Checking health",
            }
        ],
    }
    assert sniff(control) == "eks"
    assert unwrap_eks(control) == []


def test_message_already_parsed_is_accepted() -> None:
    event = fixture("eks_subscription.json")["logEvents"][0]["message"]
    parsed = json.loads(event)
    assert unwrap_eks({"message": parsed, "timestamp": 1}) == [parsed]


def test_cluster_name() -> None:
    assert eks_cluster_name({"logGroupName": "/aws/eks/dev/cluster"}) == "dev"
    assert eks_cluster_name({"logGroup": "/custom/group"}) is None
    assert eks_cluster_name({"message": "{}"}) is None


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({"message": '{"kind":"Event",', "timestamp": 1}, "bad_eks_message"),
        ({"message": "[1, 2]", "timestamp": 1}, "bad_eks_message"),
        ({"message": 42, "timestamp": 1}, "bad_eks_message"),
        ({"message": '{"hello": "world"}', "timestamp": 1}, "not_k8s_audit"),
        ({"message": '{"kind":"Pod","apiVersion":"v1"}', "timestamp": 1}, "not_k8s_audit"),
        ({"events": "nope"}, "bad_eks_record"),
        ({"messageType": "DATA_MESSAGE", "logStream": STREAM}, "bad_eks_record"),
        ({"timestamp": 1}, "bad_eks_record"),
        ({"events": [["not", "a", "record"]]}, "bad_eks_record"),
    ],
)
def test_malformed(obj: Any, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        unwrap_eks(obj)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "line",
    ["2024-04-18T07:41:09.538Z not json", '{"kind":"Event"}', "", "2024-04-18 07:41:09 {}"],
)
def test_bad_export_line(line: str) -> None:
    with pytest.raises(DecodeError) as info:
        parse_eks_export_line(line)
    assert info.value.reason in ("bad_eks_record", "bad_eks_message")


def test_looks_like_eks() -> None:
    assert not looks_like_eks({"kind": "Event", "auditID": "x", "stage": "ResponseComplete"})
    assert not looks_like_eks({"message": "plain", "other": 1})
    assert not looks_like_eks(["message"])
    assert looks_like_eks({"events": [], "searchedLogStreams": []})
