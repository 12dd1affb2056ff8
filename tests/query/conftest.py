"""Shared fixtures: stores holding hand-built or generated events, a fake geo provider."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from kaudit.enrich.functions import IpFunctions
from kaudit.enrich.geo import FakeGeoProvider, GeoInfo
from kaudit.enrich.intel import BadNetworks
from kaudit.query.run import prepare
from kaudit.store.duckdb import DuckDBStore

T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC = 2023-11-15 06:13:20 Asia/Shanghai


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event(
    n: int,
    *,
    verb: str = "get",
    user: str = "alice",
    groups: tuple[str, ...] = ("system:authenticated",),
    ips: tuple[str, ...] = ("10.0.0.1",),
    code: int | None = 200,
    resource: str | None = "pods",
    subresource: str | None = None,
    namespace: str | None = "default",
    name: str | None = "nginx",
    stage: str = "ResponseComplete",
    uri: str = "/api/v1/namespaces/default/pods/nginx",
    reason: str = "RBAC: allowed by ClusterRoleBinding",
    agent: str = "kubectl/v1.28.4",
    t: int | None = None,
    request_object: dict[str, Any] | None = None,
    extra_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One audit.k8s.io/v1 event; `n` makes the auditID and (by default) the time."""
    ts = T0 + n if t is None else t
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Request" if request_object is not None else "Metadata",
        "auditID": f"id-{n:05d}",
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "groups": list(groups)},
        "sourceIPs": list(ips),
        "userAgent": agent,
        "requestReceivedTimestamp": iso(ts),
        "stageTimestamp": iso(ts),
        "annotations": {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": reason,
            **(extra_annotations or {}),
        },
    }
    if resource is not None:
        ref: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
        if namespace is not None:
            ref["namespace"] = namespace
        if name is not None:
            ref["name"] = name
        if subresource is not None:
            ref["subresource"] = subresource
        ev["objectRef"] = ref
    if code is not None:
        ev["responseStatus"] = {"metadata": {}, "code": code}
    if request_object is not None:
        ev["requestObject"] = request_object
    return ev


FAKE_GEO = {
    "8.8.4.4": GeoInfo(country="美国", isp="Level3", country_code="US"),
    "47.100.1.2": GeoInfo(
        country="中国", province="上海", city="上海市", isp="阿里云", country_code="CN"
    ),
    "185.220.101.7": GeoInfo(country="德国", province="柏林", country_code="DE"),
    "121.40.77.3": GeoInfo(
        country="中国", province="浙江省", city="杭州市", isp="阿里云", country_code="CN"
    ),
}


def fake_functions() -> IpFunctions:
    import ipaddress

    bad = BadNetworks([ipaddress.ip_network("185.220.101.0/24")])
    return IpFunctions(FakeGeoProvider(FAKE_GEO), bad)


def open_store(events: list[dict[str, Any]], fake: bool = True) -> DuckDBStore:
    store = DuckDBStore.open(":memory:")
    res = store.ingest_events(events)
    assert res.stored == len(events), res
    if fake:
        prepare(store, fake_functions())
    return store


@pytest.fixture
def store_factory() -> Iterator[Any]:
    opened: list[DuckDBStore] = []

    def make(events: list[dict[str, Any]], fake: bool = True) -> DuckDBStore:
        s = open_store(events, fake)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()
