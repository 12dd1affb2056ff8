"""Format sniffing from the first record or line."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _formats_data import FIXTURES, SHARED, falco_events, fixture, panther_cases

from kaudit.errors import DecodeError
from kaudit.event.formats.detect import FORMATS, sniff

EXPECTED_BY_SHAPE = {
    "native_audit_eks": "v1",
    "aks_azure_diagnostic_wrapped": "aks",
    "gcp_cloud_audit_log": "gke",
}


def _microk8s_lines(n: int) -> list[str]:
    with (SHARED / "corpus" / "microk8s_startup_v1.ndjson").open() as handle:
        return [next(handle) for _ in range(n)]


def test_native_v1_lines_and_bytes() -> None:
    for line in _microk8s_lines(5):
        assert sniff(line) == "v1"
        assert sniff(line.encode()) == "v1"
        assert sniff("\ufeff" + line) == "v1"  # a BOM at the start of a file
        assert sniff(json.loads(line)) == "v1"


def test_falco_events_of_every_version() -> None:
    # v1beta1, v1 and events without apiVersion; fal_01_003.json ({"kind": 0}) is garbage.
    for name, event in falco_events():
        if name == "fal_01_003.json":
            with pytest.raises(DecodeError) as info:
                sniff(event)
            assert info.value.reason == "unknown_format"
        else:
            assert sniff(event) == "v1", name


def test_event_list_and_arrays() -> None:
    items = [json.loads(line) for line in _microk8s_lines(3)]
    event_list = {
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "metadata": {},
        "items": items,
    }
    assert sniff(event_list) == "eventlist"
    assert sniff(json.dumps(event_list)) == "eventlist"
    # a webhook body without kind is still recognised by its items
    assert sniff({"apiVersion": "audit.k8s.io/v1", "items": items}) == "eventlist"
    assert sniff(items) == "v1"
    assert sniff(json.dumps(items)) == "v1"
    assert sniff([fixture("gke_entries.json")[0]]) == "gke"


@pytest.mark.parametrize("shape", sorted(EXPECTED_BY_SHAPE))
def test_panther_events(shape: str) -> None:
    cases = panther_cases(shape)
    assert cases
    for case in cases:
        assert sniff(case["event"]) == EXPECTED_BY_SHAPE[shape], case["name"]


def test_fixtures() -> None:
    assert sniff(fixture("eks_filter_log_events.json")) == "eks"
    assert sniff(fixture("eks_subscription.json")) == "eks"
    assert sniff(fixture("aks_records.json")) == "aks"
    assert sniff(fixture("aks_records.json")["records"][0]) == "aks"
    assert sniff(fixture("gke_entries.json")) == "gke"
    for line in (FIXTURES / "legacy_audit.log").read_text().splitlines():
        assert sniff(line) == "legacy"
    assert sniff('2024-04-18T07:41:09.538Z {"kind":"Event","auditID":"x"}') == "eks"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ([], "empty"),
        ("[]", "empty"),
        ("hello world", "unknown_format"),
        ("{truncated", "unknown_format"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "unknown_format"),
        (42, "unknown_format"),
        ("42", "unknown_format"),
        ('"just a string"', "unknown_format"),
        ({"kind": "Pod", "apiVersion": "v1", "metadata": {}}, "unknown_format"),
        ({"foo": 1}, "unknown_format"),
    ],
)
def test_unknown(value: Any, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        sniff(value)
    assert info.value.reason == reason


def test_formats_tuple() -> None:
    assert set(FORMATS) == {"v1", "eventlist", "eks", "aks", "gke", "legacy"}
