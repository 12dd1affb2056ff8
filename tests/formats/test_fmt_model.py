"""Converted events are accepted by the event model (auditID, stage and a timestamp present)."""

from __future__ import annotations

from _formats_data import FIXTURES, fixture

from kaudit.event.formats import gke_to_v1, parse_legacy_line, unwrap_aks, unwrap_eks
from kaudit.event.model import AuditEvent


def test_realistic_fixtures_make_records() -> None:
    events = [
        parse_legacy_line(x) for x in (FIXTURES / "legacy_audit.log").read_text().splitlines()
    ]
    events += [gke_to_v1(e) for e in fixture("gke_entries.json")]
    events += unwrap_eks(fixture("eks_subscription.json"))
    events += unwrap_aks({"records": [fixture("aks_records.json")["records"][0]]})
    records = [AuditEvent.from_dict(e, cluster="c") for e in events]
    assert [r.stage for r in records[:3]] == [
        "RequestReceived",
        "ResponseComplete",
        "ResponseStarted",
    ]
    exec_start = records[5]
    assert (exec_start.verb, exec_start.subresource, exec_start.code) == ("create", "exec", 101)
    assert exec_start.source_ips == ("203.0.113.24",)
    assert exec_start.annotations["kaudit.io/source-format"] == "gke"
    # (auditID, stage) keeps the two GKE entries of one exec apart
    assert records[5].key != records[6].key
    assert len({r.key for r in records}) == len(records)
