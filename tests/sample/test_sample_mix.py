"""The traffic mix is roughly that of real clusters (enrichment.md, "Traffic mix")."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable
from typing import Any

from _sample_data import N, sample


def share(key: Callable[[dict[str, Any]], str]) -> dict[str, float]:
    counts = Counter(key(e) for e in sample()[1])
    return {k: v / N for k, v in counts.items()}


def user_class(ev: dict[str, Any]) -> str:
    name = ev["user"].get("username", "")
    if name.startswith("system:serviceaccount:"):
        return "serviceaccount"
    if name.startswith("system:node:"):
        return "node"
    if name.startswith("system:"):
        return "system"
    return "human" if name else "unauthenticated"


def test_verbs() -> None:
    verbs = share(lambda e: e["verb"])
    assert 0.30 < verbs["get"] < 0.55
    assert 0.15 < verbs["update"] < 0.35
    assert 0.05 < verbs["list"] < 0.18
    assert 0.05 < verbs["watch"] < 0.15
    assert 0.03 < verbs["create"] < 0.12
    assert 0.02 < verbs["patch"] < 0.10
    assert 0.002 < verbs["delete"] < 0.03


def test_users() -> None:
    users = share(user_class)
    assert 0.25 < users["serviceaccount"] < 0.50
    assert 0.15 < users["system"] < 0.40
    assert 0.15 < users["node"] < 0.40
    assert 0.02 < users["human"] < 0.10
    assert users["unauthenticated"] < 0.01


def test_resources_leases_dominate() -> None:
    resources = share(lambda e: e.get("objectRef", {}).get("resource", "-"))
    top = max(resources, key=resources.__getitem__)
    assert top == "leases" and 0.2 < resources["leases"] < 0.4
    assert 0.05 < resources["-"] < 0.2  # discovery, health, /metrics
    for name in ("pods", "nodes", "secrets", "configmaps"):
        assert 0.02 < resources[name] < 0.2, name


def test_response_codes() -> None:
    done = [e for e in sample()[1] if e["stage"] != "RequestReceived"]
    codes = Counter(e["responseStatus"]["code"] for e in done)
    total = len(done)
    assert 0.85 < codes[200] / total < 0.95
    assert 0.03 < codes[201] / total < 0.12
    for code, top in ((404, 0.03), (403, 0.02), (409, 0.02), (401, 0.01), (101, 0.01)):
        assert 0 < codes[code] / total < top, code
    # half the events are RequestReceived: the policy logs both stages
    assert 0.4 < (N - total) / N < 0.55


def test_levels_and_sizes() -> None:
    raw, events, _, _ = sample()
    levels = share(lambda e: e["level"])
    assert levels["Metadata"] > 0.8
    assert 0.03 < levels["RequestResponse"] < 0.15
    sizes: dict[str, list[int]] = {}
    for line, ev in zip(raw.splitlines(), events, strict=True):
        key = ev["level"] if ev["stage"] != "RequestReceived" else "received"
        sizes.setdefault(key, []).append(len(line) + 1)
    for values in sizes.values():
        values.sort()
    median = {k: v[len(v) // 2] for k, v in sizes.items()}
    assert 700 < median["Metadata"] < 1400  # spec §11: ~1 KB
    assert 3000 < median["RequestResponse"] < 10_000  # several KB with bodies


def test_secrets_with_data_at_request_response() -> None:
    with_data = [
        e
        for e in sample()[1]
        if e.get("objectRef", {}).get("resource") == "secrets"
        and e["level"] == "RequestResponse"
        and ("data" in (e.get("requestObject") or {}) or "data" in (e.get("responseObject") or {}))
    ]
    verbs = {e["verb"] for e in with_data}
    assert {"get", "create"} <= verbs


def test_source_addresses_mostly_in_cluster() -> None:
    ips = Counter(e["sourceIPs"][0] for e in sample()[1])
    private = sum(v for ip, v in ips.items() if not ipaddress.ip_address(ip).is_global)
    assert private / N > 0.97
    assert any(ipaddress.ip_address(ip).is_global for ip in ips)
    assert len(ips) > 150
    control_plane = sum(v for ip, v in ips.items() if ip.startswith("192.168.0.1") or ip == "::1")
    assert 0.25 < control_plane / N < 0.6
