"""Loader, validation, RequestInfo, event mapping and version semantics (beyond conformance)."""

from __future__ import annotations

import pytest

from kaudit.errors import ConfigError, PolicyError
from kaudit.policy import (
    Policy,
    PolicyErrors,
    RequestAttributes,
    check_policy,
    load_policy,
    request_info,
)

MISINDENTED = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  resources:
  - group: coordination.k8s.io
    resources:
    - "leases"
    verbs: ["watch", "get", "list"] # invalid indentation on verbs
- level: Metadata
"""


def test_unknown_field_is_dropped_with_a_warning_and_its_line() -> None:
    policy = load_policy(MISINDENTED, source="p.yaml")
    assert policy.rules[0].verbs == ()
    [warning] = policy.warnings
    assert warning.field == "rules[0].resources[0].verbs"
    assert warning.line == 9
    # the dropped key widened the rule: every verb on leases is now unaudited
    lease_update = request_info("PUT", "/apis/coordination.k8s.io/v1/namespaces/a/leases/x")
    assert policy.evaluate(lease_update).level == "None"


def test_rule_lines_are_recorded() -> None:
    policy = load_policy(MISINDENTED)
    assert [r.line for r in policy.rules] == [4, 10]
    assert policy.line_of("rules[0].resources[0].group") == 6


def test_validation_error_names_path_and_line() -> None:
    text = (
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"
        "- level: Metadata\n  nonResourceURLs: [/ok, logs]\n"
    )
    with pytest.raises(PolicyError) as info:
        load_policy(text, source="audit.yaml")
    err = info.value
    assert err.field == "rules[1].nonResourceURLs[1]"
    assert err.location is not None and err.location.line == 6
    assert str(err).startswith("audit.yaml:6: rules[1].nonResourceURLs[1]")


def test_collect_errors_returns_every_error() -> None:
    data = {
        "omitStages": ["Nope"],
        "rules": [{"level": "Loud"}, {}, {"level": "None", "resources": [{"group": "Apps"}]}],
    }
    with pytest.raises(PolicyErrors) as info:
        Policy.from_dict(data, collect_errors=True)
    fields = [e.field for e in info.value.errors]
    assert fields == [
        "omitStages[0]",
        "rules[0].level",
        "rules[1].level",
        "rules[2].resources.group",
    ]
    result = check_policy("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: X\n- {}\n")
    assert not result.ok and len(result.errors) == 2 and result.policy is None


def test_type_errors_are_policy_errors_not_crashes() -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  verbs: get\n"
        )
    assert info.value.field == "rules[0].verbs"
    with pytest.raises(PolicyError, match="invalid YAML"):
        load_policy("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [\n")
    with pytest.raises(PolicyError, match="object"):
        load_policy("- a\n- b\n")


def test_json_policy_is_accepted() -> None:
    text = (
        '{"apiVersion": "audit.k8s.io/v1", "kind": "Policy",\n\t"rules": [{"level": "Metadata"}]}'
    )
    assert load_policy(text).rules[0].level == "Metadata"


def test_old_api_versions_only_for_old_clusters() -> None:
    text = "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: Metadata\n"
    with pytest.raises(PolicyError, match=r"removed in Kubernetes 1\.24"):
        load_policy(text)
    old = load_policy(text, kubernetes_version="1.23")
    assert old.api_version == "audit.k8s.io/v1beta1"
    assert any("deprecated" in w.message for w in old.warnings)
    with pytest.raises(PolicyError, match="Policy"):
        load_policy("apiVersion: audit.k8s.io/v1\nkind: Pod\nrules:\n- level: None\n")


def test_group_wildcard_needs_136() -> None:
    data = {"rules": [{"level": "Request", "resources": [{"group": "*"}]}]}
    Policy.from_dict(data)
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(data, kubernetes_version="1.35")
    assert info.value.field == "rules[0].resources.group"


def test_older_semantics() -> None:
    data = {"rules": [{"level": "Request", "resources": [{"resources": ["pods/*"]}]}]}
    log = request_info("GET", "/api/v1/namespaces/a/pods/x/log")
    assert Policy.from_dict(data).evaluate(log).level == "Request"
    # before 1.10 `pods/*` was a literal
    assert Policy.from_dict(data, kubernetes_version="1.9").evaluate(log).level == "None"
    # before 1.8 `pods` also covered subresources
    plain = {"rules": [{"level": "Request", "resources": [{"resources": ["pods"]}]}]}
    assert Policy.from_dict(plain, kubernetes_version="1.7").evaluate(log).level == "Request"
    assert Policy.from_dict(plain).evaluate(log).level == "None"
    # omitManagedFields is an unknown field before 1.23
    omf = {"omitManagedFields": True, "rules": [{"level": "Metadata"}]}
    old = Policy.from_dict(omf, kubernetes_version="1.22")
    assert old.omit_managed_fields is False and old.warnings
    with pytest.raises(ConfigError):
        Policy.from_dict(omf, kubernetes_version="banana")


def test_request_info_details() -> None:
    exec_ws = request_info("GET", "/api/v1/namespaces/d/pods/web/exec?command=sh&stdin=true")
    assert (exec_ws.verb, exec_ws.resource, exec_ws.subresource, exec_ws.name) == (
        "get",
        "pods",
        "exec",
        "web",
    )
    assert request_info("POST", "/api/v1/namespaces/d/pods/web/exec").verb == "create"
    assert request_info("OPTIONS", "/api/v1/pods").verb == ""
    assert request_info("POST", "/healthz").verb == "post"
    watch = request_info("GET", "https://k8s:6443/api/v1/pods?watch=yes")
    assert watch.verb == "watch" and watch.path == "/api/v1/pods"
    assert request_info("GET", "/api/v1/pods?watch=bogus").verb == "watch"
    assert request_info("GET", "/api/v1/pods?watch=f").verb == "list"
    bad_name = request_info("GET", "/api/v1/pods?fieldSelector=metadata.name%3D..")
    assert bad_name.name == ""
    ns = request_info("GET", "/api/v1/namespaces/foo")
    assert (ns.namespace, ns.name) == ("foo", "foo")


EVENT = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Metadata",
    "auditID": "1",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/default/pods/web/exec?command=sh&container=c",
    "verb": "get",
    "user": {"username": "alice", "groups": ["dev", "system:authenticated"]},
    "impersonatedUser": {"username": "bob", "groups": ["system:masters"]},
    "objectRef": {"resource": "pods", "namespace": "default", "name": "web",
                  "apiVersion": "v1", "subresource": "exec"},
}  # fmt: skip


def test_from_event_websocket_exec_and_impersonation() -> None:
    a = RequestAttributes.from_event(EVENT)
    assert a == RequestAttributes(
        user="alice",
        groups=("dev", "system:authenticated"),
        verb="get",
        resource_request=True,
        namespace="default",
        api_version="v1",
        resource="pods",
        subresource="exec",
        name="web",
        path="/api/v1/namespaces/default/pods/web/exec",
    )
    policy = Policy.from_dict(
        {
            "rules": [
                {"level": "None", "userGroups": ["system:masters"]},
                {
                    "level": "Request",
                    "verbs": ["create"],
                    "resources": [{"resources": ["pods/exec"]}],
                },
                {"level": "Metadata"},
            ]
        }
    )
    # the impersonated system:masters is never matched, and WebSocket exec is not `create`
    assert policy.evaluate(a).rule_index == 2


def test_from_event_create_name_list_name_and_no_user() -> None:
    ref = {"resource": "pods", "namespace": "default", "name": "web"}
    create = dict(EVENT, verb="create", requestURI="/api/v1/namespaces/default/pods", objectRef=ref)
    assert RequestAttributes.from_event(create).name == ""
    lst = dict(EVENT, verb="list",
               requestURI="/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dweb",
               objectRef={"resource": "pods", "namespace": "default"})  # fmt: skip
    assert RequestAttributes.from_event(lst).name == "web"
    anon = dict(EVENT, user={}, objectRef=None, requestURI="/healthz?verbose", verb="get")
    a = RequestAttributes.from_event(anon)
    assert a.user is None and a.groups == () and not a.resource_request and a.path == "/healthz"
