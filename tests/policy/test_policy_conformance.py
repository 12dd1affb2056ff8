"""Every case of ../shared/conformance/policy_cases.json (kube-apiserver's own tests as data).

No case is answered differently on purpose: `DELIBERATE_DIFFERENCES` is empty and the test fails
if a name listed there stops existing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kaudit.errors import PolicyError
from kaudit.policy import Policy, PolicyFieldError, RequestAttributes, load_policy, request_info

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
CASES: list[dict[str, Any]] = json.loads(
    (SHARED / "conformance" / "policy_cases.json").read_text(encoding="utf-8")
)

# name -> reason; kaudit answers every case as kube-apiserver does.
DELIBERATE_DIFFERENCES: dict[str, str] = {}


def _by_kind(kind: str) -> list[Any]:
    return [pytest.param(c, id=c["name"]) for c in CASES if c["kind"] == kind]


def test_case_file_is_complete() -> None:
    kinds: dict[str, int] = {}
    for c in CASES:
        kinds[c["kind"]] = kinds.get(c["kind"], 0) + 1
    assert len(CASES) == 185
    assert kinds == {"evaluate": 115, "validate": 22, "load": 5, "requestinfo": 43}
    assert set(DELIBERATE_DIFFERENCES) <= {c["name"] for c in CASES}


def _attrs(req: dict[str, Any]) -> RequestAttributes:
    # `impersonatedUser`, when present, is ignored: policy matches the authenticated user (§5.2)
    return RequestAttributes(
        user=req["user"],
        groups=tuple(req["groups"] or ()),
        verb=req["verb"],
        resource_request=req["resourceRequest"],
        namespace=req["namespace"],
        api_group=req["apiGroup"],
        api_version=req["apiVersion"],
        resource=req["resource"],
        subresource=req["subresource"],
        name=req["name"],
        path=req["path"],
    )


@pytest.mark.parametrize("case", _by_kind("evaluate"))
def test_evaluate(case: dict[str, Any]) -> None:
    policy = Policy.from_dict(case["policy"], kubernetes_version=case.get("minKubernetesVersion"))
    got = policy.evaluate(_attrs(case["request"]))
    exp = case["expect"]
    assert got.level == exp["level"]
    assert got.omit_stages == frozenset(exp["omitStages"])
    assert got.omit_managed_fields is exp["omitManagedFields"]
    assert got.rule_index == exp["matchedRule"]


@pytest.mark.parametrize("case", _by_kind("validate"))
def test_validate(case: dict[str, Any]) -> None:
    exp = case["expect"]
    if exp["valid"]:
        Policy.from_dict(case["policy"])
        return
    with pytest.raises(PolicyFieldError) as info:
        Policy.from_dict(case["policy"])
    err = info.value
    field, _, etype = exp["errorField"].partition(" (")
    assert err.field == field
    if etype:
        assert err.error_type == etype.rstrip(")")
    assert str(err).startswith(field)


@pytest.mark.parametrize("case", _by_kind("load"))
def test_load(case: dict[str, Any]) -> None:
    exp = case["expect"]
    text = case["policy"]["rawText"]
    if not exp["ok"]:
        with pytest.raises(PolicyError) as info:
            load_policy(text)
        assert exp.get("errorContains", "") in str(info.value)
        return
    policy = load_policy(text)
    want = Policy.from_dict(exp["parsedPolicy"])
    assert policy.rules == want.rules
    assert policy.omit_stages == want.omit_stages
    assert policy.api_version == "audit.k8s.io/v1"


@pytest.mark.parametrize("case", _by_kind("requestinfo"))
def test_requestinfo(case: dict[str, Any]) -> None:
    req, exp = case["request"], case["expect"]
    got = request_info(req["httpMethod"], req["url"])
    assert got.resource_request is exp["resourceRequest"]
    assert got.verb == exp["verb"]
    assert got.user is None
    if not exp["resourceRequest"]:
        assert got.path == req["url"].split("?")[0]
        return
    assert (
        got.api_group,
        got.api_version,
        got.namespace,
        got.resource,
        got.subresource,
        got.name,
    ) == (
        exp["apiGroup"],
        exp["apiVersion"],
        exp["namespace"],
        exp["resource"],
        exp["subresource"],
        exp["name"],
    )
