"""Property tests of the evaluator: first match wins, never raises, catch-all ends the walk."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kaudit.policy import LEVELS, STAGES, Policy, PolicyRule, RequestAttributes
from kaudit.policy.evaluate import explain_rule
from kaudit.policy.model import GroupResources

names = st.sampled_from(["", "alice", "bob", "system:anonymous", "kube-system", "default"])
verbs = st.sampled_from(["get", "list", "watch", "create", "update", "patch", "delete", "post"])
resources = st.sampled_from(["pods", "pods/log", "pods/*", "*", "*/status", "secrets", "*/*"])
groups = st.sampled_from(["", "apps", "rbac.authorization.k8s.io", "*"])
paths = st.sampled_from(["/healthz", "/healthz*", "/api", "/metrics", "*", "/logs/x", "/"])


@st.composite
def rules(draw: st.DrawFn) -> PolicyRule:
    non_resource = draw(st.booleans())
    return PolicyRule(
        level=draw(st.sampled_from(LEVELS)),
        users=tuple(draw(st.lists(names, max_size=2))),
        user_groups=tuple(draw(st.lists(names, max_size=2))),
        verbs=tuple(draw(st.lists(verbs, max_size=3))),
        resources=()
        if non_resource
        else tuple(
            draw(
                st.lists(
                    st.builds(
                        GroupResources,
                        group=groups,
                        resources=st.lists(resources, max_size=2).map(tuple),
                    ),
                    max_size=2,
                )
            )
        ),
        namespaces=() if non_resource else tuple(draw(st.lists(names, max_size=2))),
        non_resource_urls=tuple(draw(st.lists(paths, max_size=2))) if non_resource else (),
        omit_stages=tuple(draw(st.lists(st.sampled_from(STAGES), max_size=2))),
        omit_managed_fields=draw(st.sampled_from([None, True, False])),
    )


policies = st.builds(
    Policy,
    rules=st.lists(rules(), max_size=6).map(tuple),
    omit_stages=st.lists(st.sampled_from(STAGES), max_size=2).map(tuple),
    omit_managed_fields=st.booleans(),
)

attrs = st.builds(
    RequestAttributes,
    user=st.one_of(st.none(), names),
    groups=st.lists(names, max_size=3).map(tuple),
    verb=st.one_of(verbs, st.text(max_size=5)),
    resource_request=st.booleans(),
    namespace=names,
    api_group=groups,
    resource=st.sampled_from(["pods", "secrets", "nodes", "", "*"]),
    subresource=st.sampled_from(["", "log", "status", "exec"]),
    name=names,
    path=st.one_of(paths, st.text(max_size=12)),
)


@settings(max_examples=300, deadline=None)
@given(policies, attrs)
def test_first_match_wins_and_never_raises(policy: Policy, a: RequestAttributes) -> None:
    d = policy.evaluate(a)
    # each rule alone, as an independent oracle of "does this rule match"
    matches = [
        i
        for i, r in enumerate(policy.rules)
        if Policy(rules=(r,)).evaluate(a).level == r.level
        and Policy(rules=(r,)).evaluate(a).rule_index == 0
    ]
    if not matches:
        assert d.rule_index is None and d.level == "None"
        assert d.omit_stages == frozenset(policy.omit_stages)
        assert d.omit_managed_fields is policy.omit_managed_fields
        return
    first = policy.rules[matches[0]]
    assert d.rule_index == matches[0]
    assert d.level == first.level
    assert d.omit_stages == frozenset(policy.omit_stages) | frozenset(first.omit_stages)
    # the rules before the first match do not match on their own either
    for r in policy.rules[: matches[0]]:
        assert Policy(rules=(r,)).evaluate(a).rule_index is None


@settings(max_examples=300, deadline=None)
@given(policies, rules(), attrs)
def test_rule_after_catch_all_changes_nothing(
    policy: Policy, extra: PolicyRule, a: RequestAttributes
) -> None:
    catch_all = Policy(rules=(*policy.rules, PolicyRule(level="Metadata")))
    extended = Policy(rules=(*catch_all.rules, extra))
    assert catch_all.evaluate(a) == extended.evaluate(a)
    assert catch_all.evaluate(a).rule_index is not None


@settings(max_examples=200, deadline=None)
@given(rules(), attrs)
def test_explain_agrees_with_evaluate(rule: PolicyRule, a: RequestAttributes) -> None:
    matched = Policy(rules=(rule,)).evaluate(a).rule_index == 0
    checks = explain_rule(rule, a, Policy(rules=(rule,)).semantics)
    assert matched == all(c.ok for c in checks)
