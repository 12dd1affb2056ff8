"""Policy evaluation, exactly as kube-apiserver's `pkg/audit/policy/checker.go` (spec §4).

`Evaluator` compiles each rule once into a matcher closure and a ready-made `Decision`, so
evaluating a request is a walk over closures that returns a shared object. `explain` walks the
same rules slowly and says, field by field, why each rule did or did not match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kaudit.policy.model import Decision, GroupResources, PolicyRule, RequestAttributes
from kaudit.policy.version import Semantics

if TYPE_CHECKING:
    from kaudit.policy.model import Policy

Matcher = Callable[[RequestAttributes], bool]


def path_matches(path: str, spec: str) -> bool:
    """checker.go `pathMatches`: "*", exact, or a trailing-star plain string prefix (§4.4)."""
    if spec == "*" or spec == path:
        return True
    return spec.endswith("*") and path.startswith(spec.rstrip("*"))


def resource_pattern_matches(
    pattern: str, resource: str, subresource: str, sem: Semantics | None = None
) -> bool:
    """Whether one `resources` pattern covers resource[/subresource] (§4.3 step 5)."""
    sem = sem or Semantics.latest()
    if not sem.exact_subresources:
        # before 1.8 only the resource was compared, so `pods` also covered `pods/log`
        return pattern == "*" or pattern == resource
    combined = f"{resource}/{subresource}" if subresource else resource
    if pattern == combined or pattern == "*":
        return True
    if not sem.subresource_wildcards:
        return False
    if subresource and pattern.startswith("*/") and pattern[2:] == subresource:
        return True
    # kube-apiserver: `R/*` compares only the resource, so it also matches plain `R`
    return pattern.endswith("/*") and pattern[:-2] == resource


def group_resources_match(gr: GroupResources, attrs: RequestAttributes, sem: Semantics) -> bool:
    """One GroupResources entry against a resource request's group/resource/name."""
    if not (gr.group == attrs.api_group or (gr.group == "*" and sem.group_wildcard)):
        return False
    if not gr.resources:
        # an entry without resources covers every resource and subresource; resourceNames unused
        return True
    if gr.resource_names and attrs.name not in gr.resource_names:
        return False
    return any(
        resource_pattern_matches(p, attrs.resource, attrs.subresource, sem) for p in gr.resources
    )


def _compile_rule(rule: PolicyRule, sem: Semantics) -> Matcher:
    users = frozenset(rule.users)
    groups = frozenset(rule.user_groups)
    verbs = frozenset(rule.verbs)
    namespaces = frozenset(rule.namespaces)
    entries = rule.resources
    urls = rule.non_resource_urls
    resource_branch = rule.is_resource_rule
    strict_user = sem.userless_fails_subject_rules

    def match(a: RequestAttributes) -> bool:
        if users:
            if a.user is None:
                if strict_user or "" not in users:
                    return False
            elif a.user not in users:
                return False
        if groups and (a.user is None or groups.isdisjoint(a.groups)):
            return False
        if verbs and a.verb not in verbs:
            return False
        if resource_branch:
            # kube-apiserver: a rule with resources or namespaces never matches a non-resource URL
            if not a.resource_request:
                return False
            if namespaces and a.namespace not in namespaces:
                return False
            if not entries:
                return True
            return any(group_resources_match(gr, a, sem) for gr in entries)
        if urls:
            if a.resource_request:
                return False
            return any(path_matches(a.path, spec) for spec in urls)
        return True

    return match


@dataclass(frozen=True, slots=True)
class Check:
    """One field of a rule against one request: did it match, and what was compared."""

    field: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class RuleExplanation:
    """Why rule `index` matched (`matched`) or which of its fields failed."""

    index: int
    matched: bool
    checks: tuple[Check, ...]


class Evaluator:
    """A policy compiled into matchers; `evaluate` is the hot path."""

    __slots__ = ("_decisions", "_default", "_matchers", "policy")

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        sem = policy.semantics
        base = frozenset(policy.omit_stages)
        self._matchers = tuple(_compile_rule(r, sem) for r in policy.rules)
        # NewPolicyRuleEvaluator: each rule's omitStages is the union with the policy's.
        self._decisions = tuple(
            Decision(
                level=r.level,
                omit_stages=base | frozenset(r.omit_stages),
                omit_managed_fields=(
                    policy.omit_managed_fields
                    if r.omit_managed_fields is None
                    else r.omit_managed_fields
                ),
                rule_index=i,
            )
            for i, r in enumerate(policy.rules)
        )
        # DefaultAuditLevel: nothing matched means None with the policy-level values.
        self._default = Decision("None", base, policy.omit_managed_fields, None)

    def evaluate(self, attrs: RequestAttributes) -> Decision:
        for match, decision in zip(self._matchers, self._decisions, strict=True):
            if match(attrs):
                return decision
        return self._default

    def explain(self, attrs: RequestAttributes) -> list[RuleExplanation]:
        """Every rule up to and including the first match, each with its field checks."""
        out: list[RuleExplanation] = []
        for i, rule in enumerate(self.policy.rules):
            checks = tuple(explain_rule(rule, attrs, self.policy.semantics))
            matched = self._matchers[i](attrs)
            out.append(RuleExplanation(i, matched, checks))
            if matched:
                break
        return out


def explain_rule(rule: PolicyRule, a: RequestAttributes, sem: Semantics) -> list[Check]:
    """The populated fields of `rule`, each compared with `a`, in checker order."""
    checks: list[Check] = []
    who = "no user (unauthenticated)" if a.user is None else repr(a.user)
    if rule.users:
        ok = a.user in rule.users if a.user is not None else False
        detail = (
            f"user {who} {'in' if ok else 'not in'} {list(rule.users)}"
            if a.user is not None
            else "no user (failed authentication): a users list never matches"
        )
        checks.append(Check("users", ok, detail))
    if rule.user_groups:
        hit = sorted(set(rule.user_groups) & set(a.groups)) if a.user is not None else []
        detail = f"groups {list(a.groups)} share {hit}" if hit else f"{who}: no group in list"
        checks.append(Check("userGroups", bool(hit), detail))
    if rule.verbs:
        ok = a.verb in rule.verbs
        checks.append(Check("verbs", ok, f"verb {a.verb!r} {'in' if ok else 'not in'} list"))
    if rule.is_resource_rule:
        if not a.resource_request:
            checks.append(
                Check(
                    "resources",
                    False,
                    "a rule with resources/namespaces never matches "
                    f"a non-resource request ({a.path})",
                )
            )
            return checks
        if rule.namespaces:
            ok = a.namespace in rule.namespaces
            checks.append(
                Check(
                    "namespaces",
                    ok,
                    f"namespace {a.namespace!r} {'in' if ok else 'not in'} {list(rule.namespaces)}",
                )
            )
        if rule.resources:
            sub = f"/{a.subresource}" if a.subresource else ""
            target = f"group {a.api_group or '(core)'} {a.resource}{sub}"
            hits = [i for i, gr in enumerate(rule.resources) if group_resources_match(gr, a, sem)]
            detail = f"{target} matched resources[{hits[0]}]" if hits else f"{target} not listed"
            if a.name:
                detail += f" (name {a.name!r})"
            checks.append(Check("resources", bool(hits), detail))
    elif rule.non_resource_urls:
        if a.resource_request:
            checks.append(
                Check(
                    "nonResourceURLs",
                    False,
                    "a nonResourceURLs rule never matches a resource request",
                )
            )
        else:
            hit = [s for s in rule.non_resource_urls if path_matches(a.path, s)]
            detail = f"path {a.path!r} matched {hit[0]!r}" if hit else f"path {a.path!r} not listed"
            checks.append(Check("nonResourceURLs", bool(hit), detail))
    if not checks:
        checks.append(Check("(catch-all)", True, "the rule sets no condition"))
    return checks
