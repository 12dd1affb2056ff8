"""SigmaHQ's 16 Kubernetes audit rules import and fire on events of their meaning; how each
flawed rule is handled (detect/sigma.py docstring) is asserted here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kaudit.detect.engine import _with_defaults, run_all
from kaudit.detect.load import load_text
from kaudit.detect.sigma import Refused, convert, convert_paths
from kaudit.store.duckdb import DuckDBStore

SIGMA = Path(__file__).resolve().parents[2] / ".." / "shared" / "sigma"
IMPORTED = {Path(p).stem: r for p, r in convert_paths([SIGMA])}


def ev(verb: str, resource: str, **kw: Any) -> dict[str, Any]:
    ref = {"resource": resource, **kw.pop("ref", {})}
    return {"verb": verb, "objectRef": ref, "user": {"username": "mallory"}, **kw}


POD = {
    "spec": {
        "containers": [{"image": "x", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}],
        "volumes": [{"name": "v", "hostPath": {"path": "/etc"}}],
    }
}
# rule file stem -> (an event it must match, a close event it must not)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "kubernetes_audit_change_admission_controller": (
        ev(
            "create",
            "mutatingwebhookconfigurations",
            ref={"apiGroup": "admissionregistration.k8s.io"},
        ),
        ev(
            "get", "mutatingwebhookconfigurations", ref={"apiGroup": "admissionregistration.k8s.io"}
        ),
    ),
    "kubernetes_audit_cronjob_modification": (
        ev("patch", "cronjobs", ref={"apiGroup": "batch"}),
        ev("list", "cronjobs", ref={"apiGroup": "batch"}),
    ),
    "kubernetes_audit_deployment_deleted": (ev("delete", "deployments"), ev("delete", "pods")),
    "kubernetes_audit_events_deleted": (ev("delete", "events"), ev("list", "events")),
    # flaw: WebSocket exec is `get` — matched here
    "kubernetes_audit_exec_into_container": (
        ev("get", "pods", ref={"subresource": "exec"}),
        ev("get", "pods", ref={"subresource": "log"}),
    ),
    # flaw: synthetic hostPath/capabilities — derived from the pod spec
    "kubernetes_audit_hostpath_mount": (
        ev("create", "pods", requestObject=POD),
        ev("create", "pods", requestObject={"spec": {}}),
    ),
    "kubernetes_audit_pod_in_system_namespace": (
        ev("create", "pods", ref={"namespace": "kube-system"}),
        ev("create", "pods", ref={"namespace": "a"}),
    ),
    # flaw: 'ALLOW' against an integer — read as the decision annotation
    "kubernetes_audit_potential_enumeration_activity": (
        ev(
            "get",
            "pods",
            userAgent="TruffleHog/3",
            annotations={"authorization.k8s.io/decision": "allow"},
        ),
        ev(
            "get",
            "pods",
            userAgent="TruffleHog/3",
            annotations={"authorization.k8s.io/decision": "forbid"},
        ),
    ),
    "kubernetes_audit_privileged_pod_creation": (
        ev("create", "pods", requestObject=POD),
        ev("create", "pods", requestObject={"spec": {}}),
    ),
    # flaw: top-level apiGroup — mapped to objectRef.apiGroup
    "kubernetes_audit_rbac_permisions_listing": (
        ev("create", "selfsubjectrulesreviews", ref={"apiGroup": "authorization.k8s.io"}),
        ev("create", "selfsubjectrulesreviews", ref={"apiGroup": "other"}),
    ),
    "kubernetes_audit_rolebinding_modification": (
        ev("create", "clusterrolebindings", ref={"apiGroup": "rbac.authorization.k8s.io"}),
        ev("get", "clusterrolebindings", ref={"apiGroup": "rbac.authorization.k8s.io"}),
    ),
    "kubernetes_audit_secrets_enumeration": (ev("list", "secrets"), ev("get", "secrets")),
    "kubernetes_audit_secrets_modified_or_deleted": (ev("delete", "secrets"), ev("get", "secrets")),
    # flaw: TokenRequest is not a new service account — excluded
    "kubernetes_audit_serviceaccount_creation": (
        ev("create", "serviceaccounts"),
        ev("create", "serviceaccounts", ref={"subresource": "token"}),
    ),
    "kubernetes_audit_sidecar_injection": (
        ev("patch", "deployments", ref={"apiGroup": "apps"}),
        ev("update", "deployments", ref={"apiGroup": "apps"}),
    ),
    "kubernetes_audit_unauthorized_unauthenticated_actions": (
        ev("get", "pods", responseStatus={"code": 403}),
        ev("get", "pods", responseStatus={"code": 404}),
    ),
}


def fires(rule_yaml: str, event: dict[str, Any]) -> bool:
    rule = load_text(rule_yaml)[0]
    store = DuckDBStore.open(":memory:")
    try:
        store.ingest_events([_with_defaults(event, 0)], redact=False)
        return bool(run_all(store, [rule]))
    finally:
        store.close()


def test_all_16_import() -> None:
    assert len(IMPORTED) == 16 and set(IMPORTED) == set(CASES)
    assert all(r.startswith("id: sigma-") for r in IMPORTED.values())


@pytest.mark.parametrize("stem", sorted(CASES))
def test_imported_rule_matches_its_meaning(stem: str) -> None:
    yes, no = CASES[stem]
    assert fires(IMPORTED[stem], yes)
    assert not fires(IMPORTED[stem], no)


def test_unmappable_field_is_refused_by_name() -> None:
    text = (SIGMA / "kubernetes_audit_deployment_deleted.yml").read_text()
    text = text.replace("objectRef.resource:", "objectRef.fieldThatDoesNotExist:")
    with pytest.raises(Refused, match=r"'objectRef\.fieldThatDoesNotExist'"):
        convert(text)


def test_string_against_integer_field_is_refused() -> None:
    text = (SIGMA / "kubernetes_audit_unauthorized_unauthenticated_actions.yml").read_text()
    with pytest.raises(Refused, match="integer"):
        convert(text.replace("- 401", "- 'four-oh-one'"))
