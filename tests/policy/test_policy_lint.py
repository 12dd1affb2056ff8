"""Each lint check on a policy that triggers it, and the shipped profiles lint clean."""

from __future__ import annotations

import pytest

from kaudit.policy.lint import Finding, builtin_checks, lint_text, rule_covers
from kaudit.policy.model import GroupResources, PolicyRule
from kaudit.policy.recommend import PROFILES, profile_policy, profile_text

HEAD = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n"
GOOD_TAIL = "- level: Metadata\n"


def lint(rules: str, head: str = HEAD) -> list[Finding]:
    return lint_text(head + rules, source="p.yaml")


def by_check(findings: list[Finding], check: str) -> list[Finding]:
    return [f for f in findings if f.check == check]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profiles_lint_clean(profile: str) -> None:
    assert lint_text(profile_text(profile), source=profile) == []
    policy = profile_policy(profile)
    assert policy.api_version == "audit.k8s.io/v1"
    assert "RequestReceived" in policy.omit_stages


def test_recommended_rules_each_have_a_comment() -> None:
    lines = profile_text("recommended").splitlines()
    for rule in profile_policy("recommended").rules:
        assert rule.line is not None
        assert lines[rule.line - 2].strip().startswith("#"), rule


def test_credential_leak_is_an_error_at_the_rule_line() -> None:
    found = by_check(lint("- level: RequestResponse\n"), "credential-leak")
    assert {f.severity for f in found} == {"error"}
    assert {f.line for f in found} == {5}
    assert any("secrets" in f.message for f in found)
    assert any("tokenreviews" in f.message for f in found)


def test_request_received_not_omitted() -> None:
    head = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
    [f] = by_check(lint(GOOD_TAIL, head), "request-received-kept")
    assert f.severity == "warning" and "doubling" in f.message


def test_response_started_omitted_loses_401s() -> None:
    head = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [ResponseStarted]\nrules:\n"
    findings = lint(GOOD_TAIL, head)
    assert by_check(findings, "response-started-omitted")
    blind = by_check(findings, "detection-blind")
    assert any("failed-authentication" in f.message for f in blind)


def test_no_catch_all() -> None:
    [f] = by_check(lint("- level: Metadata\n  verbs: [get]\n"), "no-catch-all")
    assert f.line == 5


def test_shadowed_rule() -> None:
    rules = (
        "- level: Metadata\n  resources: [{group: '', resources: ['pods/*']}]\n"
        "- level: Request\n  verbs: [create]\n  resources: [{group: '', resources: [pods/log]}]\n"
        "- level: None\n  nonResourceURLs: ['/healthz*']\n"
        "- level: None\n  nonResourceURLs: ['/healthz/etcd']\n" + GOOD_TAIL
    )
    found = by_check(lint(rules), "shadowed-rule")
    assert [f.rule_index for f in found] == [1, 3]
    assert found[0].line == 7


def test_rule_covers_is_conservative() -> None:
    pods = PolicyRule("None", resources=(GroupResources("", ("pods",)),))
    pods_log = PolicyRule("None", resources=(GroupResources("", ("pods/log",)),))
    star_sub = PolicyRule("None", resources=(GroupResources("", ("*/log",)),))
    catch_all = PolicyRule("Metadata")
    assert not rule_covers(pods, pods_log)
    assert rule_covers(star_sub, pods_log)
    assert rule_covers(catch_all, pods)
    assert not rule_covers(pods, catch_all)
    alice = PolicyRule("None", users=("alice",))
    assert not rule_covers(alice, pods) and rule_covers(catch_all, alice)


def test_detection_blind_names_detections() -> None:
    rules = "- level: None\n  resources: [{group: '', resources: [pods/exec]}]\n- level: Metadata\n"
    blind = by_check(lint(rules), "detection-blind")
    text = " ".join(f.message for f in blind)
    assert "exec-into-container" in text
    assert "privileged-pod" in text  # pods create needs Request, catch-all gives Metadata
    assert "rbac-cluster-admin-binding" in text
    exec_finding = next(f for f in blind if "exec-into-container" in f.message)
    assert exec_finding.line == 5


def test_high_volume_and_health_urls() -> None:
    found = by_check(lint("- level: RequestResponse\n"), "high-volume")
    assert any("events" in f.message and f.severity == "warning" for f in found)
    assert any("leases" in f.message for f in found)
    assert any("/healthz" in f.message and f.severity == "info" for f in found)


def test_wide_wildcards() -> None:
    rules = "- level: None\n  namespaces: ['']\n  resources: [{group: '', resources: [pods/*]}]\n"
    found = by_check(lint(rules + GOOD_TAIL), "wide-wildcard")
    assert len(found) == 2 and {f.severity for f in found} == {"info"}


def test_never_matches() -> None:
    rules = (
        "- level: Request\n  verbs: [GET, create]\n"
        "  resources: [{resources: [deployments, '*/*']}, {group: apps, resources: [pods]}]\n"
        + GOOD_TAIL
    )
    msgs = [f.message for f in by_check(lint(rules), "never-matches")]
    assert any("'GET'" in m and "case-sensitive" in m for m in msgs)
    assert any("'deployments' is in group 'apps'" in m for m in msgs)
    assert any("'*/*'" in m for m in msgs)
    assert any("core resource" in m for m in msgs)


def test_streaming_verbs() -> None:
    rules = "- level: Request\n  verbs: [create]\n  resources: [{resources: [pods/exec]}]\n"
    [f] = by_check(lint(rules + GOOD_TAIL), "streaming-verbs")
    assert "WebSocket" in f.message


def test_unknown_field_and_invalid_and_deprecated() -> None:
    typo = lint("- level: Metadata\n  verb: [get]\n")
    [f] = by_check(typo, "unknown-field")
    assert f.line == 6 and "rules[0].verb" in f.message
    invalid = lint("- level: Metadata\n  namespaces: [a]\n  nonResourceURLs: [/x]\n")
    assert [f.check for f in invalid] == ["invalid"] and invalid[0].severity == "error"
    old = lint_text("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: Metadata\n")
    assert old[0].check == "deprecated-api-version" and old[0].severity == "error"
    # the rest of the policy is still linted
    assert by_check(old, "request-received-kept")


def test_unauthenticated_group_note() -> None:
    found = lint("- level: Metadata\n  userGroups: [system:unauthenticated]\n" + GOOD_TAIL)
    assert by_check(found, "unauthenticated-group")


def test_registry_ids_match_classes() -> None:
    checks = builtin_checks()
    assert all(c.id == k for k, c in checks.items())
    assert {"credential-leak", "shadowed-rule", "detection-blind"} <= set(checks)
