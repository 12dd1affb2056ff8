"""Parity with Falco's k8saudit tests (conformance/falco_cases.json): every positive case raises
an alert from the kaudit rule of the same meaning (the rule's `falco:` names), and no negative
case raises an alert of severity medium or above. Falco list/macro overrides a test applied are
applied here as the same rule's `exceptions` (or by enabling the rule they switch on)."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import pytest

from kaudit.detect.compile import Window
from kaudit.detect.engine import StreamingPlan, run_rule, run_streaming, span
from kaudit.detect.load import builtin_rules
from kaudit.detect.model import SEVERITY_RANK, Exceptions, Rule
from kaudit.store.duckdb import DuckDBStore

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
CASES = json.loads((SHARED / "conformance" / "falco_cases.json").read_text())
# Not a kaudit meaning: a custom rule testing Falco's JSON-pointer escapes, with the default
# rules unloaded; and a malformed input that only checks Falco's error message.
NOT_APPLICABLE = {"json_pointer_correct_parse", "fal_01_003"}


def _with_exceptions(r: Rule, **more: tuple[str, ...]) -> Rule:
    ex = r.exceptions
    merged = {f.name: getattr(ex, f.name) + more.get(f.name, ()) for f in dataclasses.fields(ex)}
    return dataclasses.replace(r, exceptions=Exceptions(**merged), enabled=True)


BUILTIN = builtin_rules()


def rules_for(case: dict[str, Any]) -> list[Rule]:
    return _rules_for(" ".join(case["overrides"]))


@functools.cache
def _rules_for(text: str) -> list[Rule]:
    rules = {r.id: r for r in BUILTIN}
    # Falco ships "Disallowed K8s User" on; kaudit ships it off until the allow-list is filled
    rules["disallowed-k8s-user"] = _with_exceptions(rules["disallowed-k8s-user"])
    for image in ("apache", "nginx"):
        # "allowed_k8s_containers := every image repository is X" switches on the rule
        if "allowed_k8s_containers" in text and image in text:
            r = dataclasses.replace(rules["disallowed-pod-image"], exceptions=Exceptions())
            rules[r.id] = _with_exceptions(r, images=(image,))
    if "k8s_audit_privileged_images" in text:  # trusted-image lists: append nginx
        for rid in ("privileged-pod", "sensitive-hostpath-mount", "host-namespace-pod"):
            rules[rid] = _with_exceptions(rules[rid], images=("nginx",))
    if "allowed_k8s_users: append 'some-user'" in text:
        rules["disallowed-k8s-user"] = _with_exceptions(
            rules["disallowed-k8s-user"], users=("some-user",)
        )
    return list(rules.values())


def fired(case: dict[str, Any]) -> list[Rule]:
    rules = rules_for(case)
    by_id = {r.id: r for r in rules}
    events = case["event"] if isinstance(case["event"], list) else [case["event"]]
    store = DuckDBStore.open(":memory:")
    try:
        store.ingest_events(events, redact=False)
        lo, hi = span(store)
        hits = run_streaming(store, _plan(" ".join(case["overrides"])))
        hits += [h for r in rules if not r.streaming for h in run_rule(store, r, Window(lo, hi))]
        return [by_id[h.rule_id] for h in hits]
    finally:
        store.close()


@functools.cache
def _plan(text: str) -> StreamingPlan:
    return StreamingPlan.build(_rules_for(text))


POSITIVE = [c for c in CASES if c["expect_rules"] and c["name"] not in NOT_APPLICABLE]
NEGATIVE = [c for c in CASES if not c["expect_rules"] and c["name"] not in NOT_APPLICABLE]


@pytest.mark.parametrize("case", POSITIVE, ids=[c["name"] for c in POSITIVE])
def test_positive_case_fires_rule_of_same_meaning(case: dict[str, Any]) -> None:
    names = {n for r in fired(case) for n in r.falco}
    for want in case["expect_rules"]:
        assert want in names, f"{case['name']}: no kaudit rule for {want!r}; fired {names}"


@pytest.mark.parametrize("case", NEGATIVE, ids=[c["name"] for c in NEGATIVE])
def test_negative_case_raises_nothing_medium_or_above(case: dict[str, Any]) -> None:
    loud = [r.id for r in fired(case) if SEVERITY_RANK[r.severity] >= SEVERITY_RANK["medium"]]
    assert loud == [], f"{case['name']}: {loud}"


def test_every_falco_security_rule_has_a_kaudit_rule() -> None:
    security = {
        "Disallowed K8s User", "Create Disallowed Pod", "Create Privileged Pod",
        "Create Sensitive Mount Pod", "Create HostNetwork Pod", "Create HostPid Pod",
        "Create HostIPC Pod", "Create NodePort Service",
        "Create/Modify Configmap With Private Credentials", "Anonymous Request Allowed",
        "Attach/Exec Pod", "port-forward", "EphemeralContainers Created",
        "Create Disallowed Namespace", "Pod Created in Kube Namespace",
        "Service Account Created in Kube Namespace", "System ClusterRole Modified/Deleted",
        "Attach to cluster-admin Role", "ClusterRole With Wildcard Created",
        "ClusterRole With Write Privileges Created", "ClusterRole With Pod Exec Created",
    }  # fmt: skip
    covered = {n for r in builtin_rules() for n in r.falco}
    assert security - covered == set()
