"""v1beta1 / v1alpha1 events get the v1 fields they lack, without losing any (spec §8.3)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from _formats_data import falco_events

from kaudit.event.formats.compat import upgrade_event

OLD_STYLE = [(n, e) for n, e in falco_events() if "timestamp" in e]


def test_corpus_has_old_style_events() -> None:
    # 9 v1beta1 events and 38 without apiVersion carry `timestamp` / `metadata`
    assert len(OLD_STYLE) == 47
    assert sum(e.get("apiVersion") == "audit.k8s.io/v1beta1" for _, e in OLD_STYLE) == 9


@pytest.mark.parametrize(("name", "event"), falco_events(), ids=lambda v: str(v)[:40])
def test_complete_events_are_unchanged(name: str, event: dict[str, Any]) -> None:
    before = copy.deepcopy(event)
    assert upgrade_event(event) == event
    assert event == before


@pytest.mark.parametrize(("name", "event"), OLD_STYLE, ids=lambda v: str(v)[:40])
def test_missing_timestamps_are_filled(name: str, event: dict[str, Any]) -> None:
    stripped = {
        k: v for k, v in event.items() if k not in ("requestReceivedTimestamp", "stageTimestamp")
    }
    before = copy.deepcopy(stripped)
    upgraded = upgrade_event(stripped)
    assert stripped == before  # the input is not mutated
    assert upgraded["requestReceivedTimestamp"] == event["timestamp"].replace("Z", ".000000Z")
    created = event["metadata"]["creationTimestamp"]
    assert upgraded["stageTimestamp"] == created.replace("Z", ".000000Z")
    # nothing removed or renamed: every original field is there with its value
    assert {k: upgraded[k] for k in stripped} == stripped
    # the seconds-precision fill agrees with the original micro timestamps
    assert upgraded["requestReceivedTimestamp"][:19] == event["requestReceivedTimestamp"][:19]
    assert upgraded["stageTimestamp"][:19] == event["stageTimestamp"][:19]


def test_zero_timestamps_are_replaced() -> None:
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1beta1",
        "metadata": {"creationTimestamp": "2018-10-25T13:58:50Z"},
        "timestamp": "2018-10-25T13:58:49Z",
        "auditID": "z",
        "stage": "ResponseComplete",
        "requestReceivedTimestamp": "0001-01-01T00:00:00Z",
        "stageTimestamp": "0001-01-01T00:00:00.000000Z",
    }
    upgraded = upgrade_event(event)
    assert upgraded["requestReceivedTimestamp"] == "2018-10-25T13:58:49.000000Z"
    assert upgraded["stageTimestamp"] == "2018-10-25T13:58:50.000000Z"


def test_one_old_field_fills_both() -> None:
    only_timestamp = upgrade_event({"timestamp": "2018-10-25T13:58:49Z", "auditID": "a"})
    assert only_timestamp["stageTimestamp"] == "2018-10-25T13:58:49.000000Z"
    only_created = upgrade_event({"metadata": {"creationTimestamp": "2018-10-25T13:58:50Z"}})
    assert only_created["requestReceivedTimestamp"] == "2018-10-25T13:58:50.000000Z"


def test_unusable_old_fields_fill_nothing() -> None:
    event = {"timestamp": "not a time", "metadata": {"creationTimestamp": None}, "auditID": "a"}
    assert upgrade_event(event) == event


@pytest.mark.parametrize(
    ("api_version", "ref", "expected"),
    [
        (
            "audit.k8s.io/v1alpha1",
            {"resource": "clusterroles", "apiVersion": "rbac.authorization.k8s.io/v1beta1"},
            {
                "resource": "clusterroles",
                "apiVersion": "rbac.authorization.k8s.io/v1beta1",  # kept as ingested
                "apiGroup": "rbac.authorization.k8s.io",
            },
        ),
        # core group: v1 omits apiGroup, so nothing is added
        ("audit.k8s.io/v1alpha1", {"resource": "pods", "apiVersion": "v1"}, None),
        # an explicit apiGroup is never overwritten
        (
            "audit.k8s.io/v1alpha1",
            {"resource": "deployments", "apiVersion": "apps/v1", "apiGroup": "apps"},
            None,
        ),
        # only v1alpha1 has "group/version" in objectRef.apiVersion
        ("audit.k8s.io/v1beta1", {"resource": "deployments", "apiVersion": "apps/v1"}, None),
    ],
)
def test_v1alpha1_api_group(
    api_version: str, ref: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    event = {"apiVersion": api_version, "objectRef": ref}
    before = copy.deepcopy(event)
    upgraded = upgrade_event(event)
    assert event == before
    assert upgraded["objectRef"] == (expected if expected is not None else ref)
