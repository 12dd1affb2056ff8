"""AKS audit logs from Azure diagnostic settings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _formats_data import fixture, panther_cases

from kaudit.errors import DecodeError
from kaudit.event.formats.aks import (
    aks_cluster_name,
    aks_record_to_event,
    aks_records,
    looks_like_aks,
    unwrap_aks,
)
from kaudit.event.formats.detect import sniff

AKS_CASES = panther_cases("aks_azure_diagnostic_wrapped")


@pytest.mark.parametrize("case", AKS_CASES, ids=lambda c: f"{c['rule_id']}:{c['name']}")
def test_panther_aks_records(case: dict[str, Any]) -> None:
    record = case["event"]
    assert sniff(record) == "aks"
    if record["category"] not in ("kube-audit", "kube-audit-admin"):
        # Panther's negative case is an Azure activity-log record (a VM write)
        with pytest.raises(DecodeError) as info:
            unwrap_aks(record)
        assert info.value.reason == "not_k8s_audit"
        return
    (event,) = unwrap_aks(record)
    inner = json.loads(record["properties"]["log"])
    assert event == inner == case["native_event"]
    assert event["verb"] == inner["verb"]
    assert event["user"]["username"] == inner["user"]["username"]
    assert event.get("objectRef") == inner.get("objectRef")
    assert event.get("responseStatus", {}).get("code") == inner.get("responseStatus", {}).get(
        "code"
    )
    assert event["sourceIPs"] == inner["sourceIPs"]
    # the same record inside a storage / Event Hub body
    assert unwrap_aks({"records": [record]}) == [event]


def test_records_fixture_keeps_the_audit_categories() -> None:
    body = fixture("aks_records.json")
    assert looks_like_aks(body) and sniff(body) == "aks"
    events, rejects = [], []
    for record in aks_records(body):
        try:
            events.append(aks_record_to_event(record))
        except DecodeError as exc:
            rejects.append(exc.reason)
    assert rejects == ["not_k8s_audit"]  # the kube-apiserver (klog) record
    create, update = events
    assert create["objectRef"]["resource"] == "rolebindings"
    assert create["responseObject"]["metadata"]["uid"] == "8f1d3b5a-7c9e-4b2d-a6f8-0e2c4a6b8d0f"
    assert update["user"]["username"] == "system:serviceaccount:team-a:deployer"
    assert aks_cluster_name(body["records"][0]) == "AKS-WEU-PROD"


def test_properties_as_json_text() -> None:
    record = fixture("aks_records.json")["records"][0]
    text_record = {**record, "properties": json.dumps(record["properties"])}
    assert unwrap_aks(text_record) == unwrap_aks(record)


def test_cluster_name() -> None:
    rid = (
        "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ContainerService"
        "/managedClusters/dev-1"
    )
    assert aks_cluster_name({"resourceId": rid}) == "dev-1"
    assert aks_cluster_name({"resourceId": "/subscriptions/x/resourceGroups/rg"}) is None
    assert aks_cluster_name({}) is None


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        (
            {"category": "kube-audit", "properties": {"log": '{"kind":"Event","verb":'}},
            "bad_aks_log",
        ),
        ({"category": "kube-audit", "properties": {"log": '"just a string"'}}, "bad_aks_log"),
        ({"category": "kube-audit", "properties": {"log": '{"level":"info"}'}}, "not_k8s_audit"),
        ({"category": "kube-audit", "properties": {"stream": "stdout"}}, "bad_aks_record"),
        ({"category": "kube-audit", "properties": "{not json"}, "bad_aks_record"),
        ({"category": "kube-audit"}, "bad_aks_record"),
        ({"category": "guard", "properties": {"log": "{}"}}, "not_k8s_audit"),
        ({"records": {"category": "kube-audit"}}, "bad_aks_record"),
        ({"records": ["text"]}, "bad_aks_record"),
        ({"time": "2024-01-01T00:00:00Z"}, "bad_aks_record"),
    ],
)
def test_malformed(obj: Any, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        unwrap_aks(obj)
    assert info.value.reason == reason


def test_looks_like_aks() -> None:
    assert looks_like_aks({"records": []})
    assert not looks_like_aks({"records": [{"foo": 1}]})
    assert not looks_like_aks({"category": "kube-audit"})  # no other diagnostic-record key
    assert not looks_like_aks({"kind": "Event", "auditID": "x", "stage": "ResponseComplete"})
