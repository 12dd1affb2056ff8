"""GKE Cloud Logging `k8s.io` audit entries mapped to audit.k8s.io/v1 events."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from _formats_data import fixture, panther_cases

from kaudit.errors import DecodeError
from kaudit.event.formats.detect import sniff
from kaudit.event.formats.gke import RPC_TO_HTTP, gke_cluster_name, gke_to_v1, looks_like_gke

GKE_CASES = panther_cases("gcp_cloud_audit_log")
ENTRIES = fixture("gke_entries.json")

# objectRef expected for every resourceName in Panther's cases, written out by hand.
OBJECT_REFS: dict[str, dict[str, str]] = {
    "core/v1/namespaces/example/pods/one-off-valerii-tovstyk-1646666967280/exec": {
        "resource": "pods",
        "namespace": "example",
        "name": "one-off-valerii-tovstyk-1646666967280",
        "apiVersion": "v1",
        "subresource": "exec",
    },
    "rbac.authorization.k8s.io/v1/clusterrolebindings/admin-binding": {
        "resource": "clusterrolebindings",
        "name": "admin-binding",
        "apiGroup": "rbac.authorization.k8s.io",
        "apiVersion": "v1",
    },
    "rbac.authorization.k8s.io/v1/namespaces/kube-system/roles/system:controller": {
        "resource": "roles",
        "namespace": "kube-system",
        "name": "system:controller",
        "apiGroup": "rbac.authorization.k8s.io",
        "apiVersion": "v1",
    },
    "batch/v1/namespaces/default/cronjobs/backup-job": {
        "resource": "cronjobs",
        "namespace": "default",
        "name": "backup-job",
        "apiGroup": "batch",
        "apiVersion": "v1",
    },
    "core/v1/namespaces/default/pods": {
        "resource": "pods",
        "namespace": "default",
        "apiVersion": "v1",
    },
    "core/v1/secrets": {"resource": "secrets", "apiVersion": "v1"},
    "certificates.k8s.io/v1/certificatesigningrequests/persistence-csr": {
        "resource": "certificatesigningrequests",
        "name": "persistence-csr",
        "apiGroup": "certificates.k8s.io",
        "apiVersion": "v1",
    },
}
# Panther cases that are not GKE Kubernetes audit entries (other services or no protoPayload).
NOT_K8S = {
    ("GCP.GKE.Kubernetes.Cron.Job.Created.Or.Modified", 3),
    ("GCP.K8s.IOC.Activity", 2),
    ("GCP.K8s.New.Daemonset.Deployed", 2),
    ("Kubernetes.API.IOC.Activity", 1),
}
# HTTP code expected where the request failed, by rule and the entry's distinguishing text.
FAILURES = {
    ("GCP.K8S.Privileged.Pod.Created", "already exists"): 409,
    ("GCP.K8S.Service.Type.NodePort.Deployed", "already exists"): 409,
    ("Kubernetes.Secret.AccessDenied", "PERMISSION_DENIED"): 403,
    ("Kubernetes.API.Multiple403.PublicIP", "Forbidden"): 403,
}


def _payload(case: dict[str, Any]) -> dict[str, Any]:
    return case["event"].get("protoPayload") or {}


def test_panther_non_k8s_entries_are_rejected() -> None:
    rejected: dict[str, int] = {}
    for case in GKE_CASES:
        assert sniff(case["event"]) == "gke"
        try:
            gke_to_v1(case["event"])
        except DecodeError as exc:
            assert exc.reason == "not_k8s_audit"
            rejected[case["rule_id"]] = rejected.get(case["rule_id"], 0) + 1
    assert set(rejected.items()) == NOT_K8S


K8S_CASES = [
    c
    for c in GKE_CASES
    if _payload(c).get("serviceName", "k8s.io") == "k8s.io"
    and str(_payload(c).get("methodName", "")).startswith("io.k8s.")
]


def test_case_count() -> None:
    assert len(K8S_CASES) == len(GKE_CASES) - sum(n for _, n in NOT_K8S) == 51


@pytest.mark.parametrize("case", K8S_CASES, ids=lambda c: f"{c['rule_id']}:{c['name']}")
def test_panther_k8s_entry_converts(case: dict[str, Any]) -> None:
    entry = case["event"]
    before = copy.deepcopy(entry)
    event = gke_to_v1(entry)
    assert entry == before  # the input is not modified
    payload = entry["protoPayload"]
    method = payload["methodName"]
    resource_name = payload.get("resourceName")

    assert event["kind"] == "Event" and event["apiVersion"] == "audit.k8s.io/v1"
    if method == "io.k8s.readyz":  # a non-resource request: no objectRef, HTTP verb
        assert event["verb"] == "get" and "objectRef" not in event
        assert event["requestURI"] == "/readyz"
    else:
        assert event["verb"] == method.rsplit(".", 1)[1]
        if resource_name in OBJECT_REFS:
            assert event["objectRef"] == OBJECT_REFS[resource_name]
        assert event["objectRef"]["apiVersion"] == "v1"
        if resource_name:
            assert event["requestURI"].startswith(("/api/v1/", "/apis/"))
        if event["verb"] != "create" and resource_name:
            # group prefix aside, the rebuilt path ends with the resourceName path
            assert event["requestURI"].endswith(resource_name.split("/", 2)[2])

    principal = (payload.get("authenticationInfo") or {}).get("principalEmail")
    assert event["user"] == ({"username": principal} if principal else {})
    meta = payload.get("requestMetadata") or {}
    caller = meta.get("callerIp") or meta.get("callerIP")
    assert event.get("sourceIPs") == ([caller] if caller else None)
    assert event.get("userAgent") == meta.get("callerSuppliedUserAgent")

    code = event["responseStatus"]["code"]
    text = str(payload.get("status")) + str(payload.get("response"))
    expected = [
        v for (rule, needle), v in FAILURES.items() if rule == case["rule_id"] and needle in text
    ]
    if expected:
        assert code == expected[0]
        assert event["responseStatus"].get("status") == "Failure"
    elif event.get("objectRef", {}).get("subresource") == "exec":
        assert code == 101
    else:
        assert code == (201 if event["verb"] == "create" else 200)

    if "request" in payload:
        assert event["requestObject"] == {
            k: v for k, v in payload["request"].items() if k != "@type"
        }
    annotations = event["annotations"]
    assert annotations["kaudit.io/source-format"] == "gke"
    assert "requestURI" in annotations["kaudit.io/reconstructed"].split(",")


def test_fixture_exec_start_exactly() -> None:
    assert gke_to_v1(ENTRIES[0]) == {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "5b3e8a61-2f0d-4c7e-9a1b-6c2d4e8f0a13",  # operation.id, not insertId
        "stage": "ResponseStarted",  # operation.first without last
        "requestURI": "/api/v1/namespaces/payments/pods/api-7d9f8c6b5-x2k4q/exec",
        "verb": "create",
        "user": {"username": "dana@example.com"},
        "sourceIPs": ["203.0.113.24"],
        "userAgent": "kubectl/v1.29.2 (darwin/arm64) kubernetes/4b8e819",
        "objectRef": {
            "resource": "pods",
            "namespace": "payments",
            "name": "api-7d9f8c6b5-x2k4q",
            "apiVersion": "v1",
            "subresource": "exec",
        },
        "responseStatus": {"metadata": {}, "code": 101},
        "requestReceivedTimestamp": "2024-05-06T09:14:31.482915Z",
        "stageTimestamp": "2024-05-06T09:14:31.482915Z",
        "annotations": {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": "access granted by IAM permissions.",
            "kaudit.io/source-format": "gke",
            "kaudit.io/reconstructed": "level,stage,requestURI,responseStatus",
        },
    }


def test_fixture_entries() -> None:
    start, end, binding, forbidden, namespace, watch, unauthorized = (gke_to_v1(e) for e in ENTRIES)
    assert all(gke_cluster_name(e) == "prod-eu" for e in ENTRIES)

    # the two entries of one long-running request: same auditID, different stages
    assert (end["auditID"], end["stage"]) == (start["auditID"], "ResponseComplete")
    assert end["stageTimestamp"] == "2024-05-06T09:16:02.004871Z"

    assert binding["level"] == "RequestResponse"
    assert binding["requestURI"] == "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
    assert binding["objectRef"] == {
        "resource": "clusterrolebindings",
        "name": "ops-admin",
        "apiGroup": "rbac.authorization.k8s.io",
        "apiVersion": "v1",
    }
    assert binding["responseStatus"] == {"metadata": {}, "code": 201}
    assert "@type" not in binding["requestObject"] and "@type" not in binding["responseObject"]
    assert binding["requestObject"]["roleRef"]["name"] == "cluster-admin"
    assert binding["responseObject"]["metadata"]["resourceVersion"] == "48211937"

    # the Kubernetes Status in `response` wins over google.rpc's PERMISSION_DENIED
    status = ENTRIES[3]["protoPayload"]["response"]
    assert forbidden["responseStatus"] == {
        k: status[k] for k in ("metadata", "status", "message", "reason", "details", "code")
    }
    assert "responseStatus" not in forbidden["annotations"]["kaudit.io/reconstructed"]
    assert forbidden["annotations"]["authorization.k8s.io/decision"] == "forbid"
    assert forbidden["requestReceivedTimestamp"] == "2024-05-06T10:05:40.118224Z"
    assert forbidden["stageTimestamp"] == "2024-05-06T10:05:40.121997Z"
    assert forbidden["level"] == "RequestResponse"

    # a Namespace is its own namespace in kube's RequestInfo
    assert namespace["objectRef"] == {
        "resource": "namespaces",
        "namespace": "staging",
        "name": "staging",
        "apiVersion": "v1",
    }
    assert namespace["requestURI"] == "/api/v1/namespaces/staging"
    assert namespace["sourceIPs"] == ["::1"]
    # no labels: the decision comes from authorizationInfo and is marked as reconstructed
    assert namespace["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert "authorization.k8s.io/decision" in namespace["annotations"]["kaudit.io/reconstructed"]

    assert watch["verb"] == "watch"
    assert watch["requestURI"] == "/api/v1/namespaces/kube-system/configmaps?watch=true"
    assert watch["stage"] == "ResponseStarted"

    assert unauthorized["user"] == {}
    assert unauthorized["responseStatus"] == {
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "code": 401,
    }
    assert unauthorized["requestURI"] == "/api/v1/nodes"


def test_string_booleans_and_panther_type_key() -> None:
    entry = copy.deepcopy(ENTRIES[5])
    entry["operation"].update(first="true", last="true")
    payload = entry["protoPayload"]
    payload["at_sign_type"] = payload.pop("@type")
    assert gke_to_v1(entry)["stage"] == "ResponseComplete"
    payload["at_sign_type"] = "type.googleapis.com/google.cloud.audit.AuditData"
    with pytest.raises(DecodeError) as info:
        gke_to_v1(entry)
    assert info.value.reason == "not_k8s_audit"


def test_auditid_falls_back_to_insert_id() -> None:
    entry = copy.deepcopy(ENTRIES[2])
    del entry["operation"]
    event = gke_to_v1(entry)
    assert event["auditID"] == entry["insertId"]
    assert event["stage"] == "ResponseComplete"


def test_method_only_entries() -> None:
    # Entries without resourceName or authorizationInfo: the method still names the resource.
    entry = {
        "protoPayload": {
            "methodName": "io.k8s.authorization.rbac.v1.clusterroles.list",
            "serviceName": "k8s.io",
        },
        "insertId": "x1",
        "timestamp": "2024-01-01T00:00:00Z",
    }
    event = gke_to_v1(entry)
    assert event["objectRef"] == {
        "resource": "clusterroles",
        "apiGroup": "rbac.authorization.k8s.io",
        "apiVersion": "v1",
    }
    assert event["requestURI"] == "/apis/rbac.authorization.k8s.io/v1/clusterroles"
    assert "objectRef" in event["annotations"]["kaudit.io/reconstructed"]
    entry["protoPayload"]["methodName"] = "io.k8s.core.v1.pods.exec.create"
    assert gke_to_v1(entry)["objectRef"]["subresource"] == "exec"


@pytest.mark.parametrize(
    ("rpc", "http"), [(0, 200), (3, 400), (5, 404), (6, 409), (7, 403), (16, 401)]
)
def test_rpc_mapping(rpc: int, http: int) -> None:
    assert RPC_TO_HTTP[rpc] == http
    entry = copy.deepcopy(ENTRIES[4])
    entry["protoPayload"]["status"] = {"code": rpc}
    assert gke_to_v1(entry)["responseStatus"]["code"] == http


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e["protoPayload"].pop("methodName"), "bad_gke_entry"),
        (lambda e: e["protoPayload"].update(status={"code": "7"}), "bad_gke_entry"),
        (lambda e: e.update(timestamp="06/05/2024 10:07"), "bad_timestamp"),
        (lambda e: e["protoPayload"].update(serviceName="storage.googleapis.com"), "not_k8s_audit"),
        (lambda e: e.pop("protoPayload"), "not_k8s_audit"),
    ],
)
def test_malformed(change: Any, reason: str) -> None:
    entry = copy.deepcopy(ENTRIES[4])
    change(entry)
    with pytest.raises(DecodeError) as info:
        gke_to_v1(entry)
    assert info.value.reason == reason


def test_not_a_mapping() -> None:
    with pytest.raises(DecodeError) as info:
        gke_to_v1([ENTRIES[0]])  # type: ignore[arg-type]
    assert info.value.reason == "bad_gke_entry"


def test_looks_like_gke() -> None:
    assert all(looks_like_gke(e) for e in ENTRIES)
    assert not looks_like_gke({"kind": "Event", "auditID": "x", "stage": "ResponseComplete"})
    assert not looks_like_gke({"message": "{}", "timestamp": 1})
    assert gke_cluster_name({"resource": {"type": "k8s_cluster"}}) is None
