"""simulate/diff over event files and over the DuckDB store give the same, exact figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from kaudit.policy import Policy
from kaudit.policy.simulate import FileGroups, ProbeGroups, StoreGroups, diff, simulate
from kaudit.store.duckdb import DuckDBStore

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
MICROK8S = SHARED / "corpus" / "microk8s_startup_v1.ndjson"


def _event(i: int, **kw: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": f"id-{i}",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/pods",
        "verb": "create",
        "user": {"username": "alice", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.1"],
        "objectRef": {"resource": "pods", "namespace": "default", "name": f"p{i}",
                      "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": {"kind": "Pod", "metadata": {"name": f"p{i}", "managedFields": [
            {"manager": "kubectl", "operation": "Update"}]}, "spec": {"containers": []}},
        "responseObject": {"kind": "Pod", "metadata": {"name": f"p{i}", "uid": "u"}},
        "requestReceivedTimestamp": f"2025-01-01T00:00:{i:02d}.000000Z",
        "stageTimestamp": f"2025-01-01T00:00:{i:02d}.000001Z",
    }  # fmt: skip
    ev.update(kw)
    return ev


EVENTS = [
    _event(1),
    _event(2),
    _event(3, stage="RequestReceived"),
    _event(
        4,
        level="Metadata",
        verb="get",
        requestURI="/healthz",
        objectRef=None,
        requestObject=None,
        responseObject=None,
    ),
]
EVENTS = [{k: v for k, v in e.items() if v is not None} for e in EVENTS]


def _size(ev: dict[str, Any]) -> int:
    return len(orjson.dumps(ev))


def _without(ev: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in ev.items() if k not in keys}


@pytest.fixture
def files(tmp_path: Path) -> FileGroups:
    p = tmp_path / "events.ndjson"
    p.write_bytes(b"\n".join(orjson.dumps(e) for e in EVENTS) + b"\n")
    return FileGroups((str(p),))


@pytest.fixture
def store() -> Any:
    s = DuckDBStore.open(":memory:")
    s.ingest_events(EVENTS, redact=False)
    yield s
    s.close()


POLICY = Policy.from_dict(
    {
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "None", "nonResourceURLs": ["/healthz*"]},
            {"level": "Request", "verbs": ["create"], "resources": [{"resources": ["pods"]}]},
            {"level": "Metadata"},
        ],
    }
)


def test_sizes_at_new_level_are_exact(files: FileGroups) -> None:
    report = simulate(POLICY, files)
    # ResponseComplete creates drop to Request: the responseObject leaves, the request stays
    expected = sum(_size(_without(e, "responseObject")) for e in EVENTS[:2])
    assert report.total.recorded.events == 4
    assert report.total.recorded.bytes == sum(_size(e) for e in EVENTS)
    assert report.total.kept.events == 2
    assert report.total.kept.bytes == expected
    rule1 = report.by_rule["rule 1 (Request)"]
    assert (rule1.recorded.events, rule1.kept.events) == (3, 2)  # RequestReceived omitted
    assert report.by_rule["rule 0 (None)"].kept.events == 0
    assert report.by_level["Request"].kept.bytes == expected


def test_omit_managed_fields_shrinks_bodies(files: FileGroups) -> None:
    policy = Policy.from_dict({"rules": [{"level": "RequestResponse", "omitManagedFields": True}]})
    report = simulate(policy, files)
    stripped = 0
    for e in EVENTS:
        if "requestObject" in e:
            body = dict(e["requestObject"])
            body["metadata"] = _without(body["metadata"], "managedFields")
            stripped += _size(dict(e, requestObject=body))
        else:
            stripped += _size(e)
    assert report.total.kept.bytes == stripped


def test_store_and_files_agree(files: FileGroups, store: Any) -> None:
    a = simulate(POLICY, files).to_dict()
    b = simulate(POLICY, StoreGroups(store)).to_dict()
    for key in ("total", "by_rule", "by_level", "detections"):
        assert a[key] == b[key], key


def test_detection_losses() -> None:
    quiet = Policy.from_dict({"rules": [{"level": "Metadata"}]})
    groups = FileGroups((str(MICROK8S),))
    report = simulate(quiet, groups)
    assert report.total.recorded.events == 2971
    assert report.total.kept.events == 2971  # everything was recorded at Metadata
    dark = Policy.from_dict({"rules": [{"level": "None", "resources": [{"resources": ["secrets"]}]},
                                       {"level": "Metadata"}]})  # fmt: skip
    losses = {d.detection: d for d in simulate(dark, groups).detections}
    assert losses["secret-enumeration"].recorded > 0
    assert losses["secret-enumeration"].lost == losses["secret-enumeration"].recorded


def test_raised_levels_are_counted(files: FileGroups) -> None:
    loud = Policy.from_dict({"rules": [{"level": "RequestResponse"}]})
    report = simulate(loud, files)
    assert report.raised == 1  # the Metadata /healthz event
    assert report.total.kept.bytes == report.total.recorded.bytes


def test_diff_groups_changes(files: FileGroups, store: Any) -> None:
    loud = Policy.from_dict({"rules": [{"level": "RequestResponse"}]})
    groups = diff(POLICY, loud, files)
    assert sum(g.events for g in groups) == 4
    top = groups[0]
    assert (top.old.level, top.new.level, top.events) == ("Request", "RequestResponse", 3)
    assert top.shapes == {"create pods by alice": 3}
    assert [g.to_dict() for g in groups] == [
        g.to_dict() for g in diff(POLICY, loud, StoreGroups(store, also=(loud,)))
    ]
    assert diff(POLICY, POLICY, files) == []
    assert diff(POLICY, loud, ProbeGroups())


def test_store_groups_resource_names_like_the_apiserver(tmp_path: Path) -> None:
    # resourceNames match a get by name and a list with fieldSelector=metadata.name=, never a
    # create (the name is filled from the body after evaluation, §5.1)
    base = {"user": {"username": "ops"}, "level": "Metadata", "stage": "ResponseComplete"}
    ref = {"resource": "configmaps", "namespace": "kube-system", "name": "cfg"}
    events = [
        dict(base, auditID="a", verb="get", objectRef=ref,
             requestURI="/api/v1/namespaces/kube-system/configmaps/cfg"),
        dict(base, auditID="b", verb="list", objectRef={**ref, "name": None},
             requestURI="/api/v1/namespaces/kube-system/configmaps?fieldSelector=metadata.name%3Dcfg"),
        dict(base, auditID="c", verb="watch", objectRef={**ref, "name": None},
             requestURI="/api/v1/namespaces/kube-system/configmaps?watch=1&resourceVersion=5"),
        dict(base, auditID="d", verb="create", objectRef=ref,
             requestURI="/api/v1/namespaces/kube-system/configmaps"),
    ]  # fmt: skip
    for i, e in enumerate(events):
        e["requestReceivedTimestamp"] = e["stageTimestamp"] = f"2025-01-01T00:00:0{i}.000000Z"
    policy = Policy.from_dict(
        {
            "rules": [
                {"level": "None", "resources": [{"resources": ["configmaps"],
                                                 "resourceNames": ["cfg"]}]},
                {"level": "Metadata"},
            ]
        }
    )  # fmt: skip
    store = DuckDBStore.open(":memory:")
    store.ingest_events(events, redact=False)
    p = tmp_path / "e.ndjson"
    p.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    for source in (StoreGroups(store), FileGroups((str(p),))):
        report = simulate(policy, source)
        assert report.by_rule["rule 0 (None)"].recorded.events == 2  # the get and the list
        assert report.by_rule["rule 1 (Metadata)"].recorded.events == 2  # watch and create
    store.close()
