"""`kaudit policy lint`: one small class per check, each with an id and a severity.

Checks that are about what a policy *does* evaluate probe requests with the real evaluator,
so they see first-match-wins, omitted groups and subresource wildcards exactly as the apiserver.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from kaudit.policy.evaluate import resource_pattern_matches
from kaudit.policy.load import OLD_VERSIONS, check_policy
from kaudit.policy.model import GroupResources, Policy, PolicyRule, RequestAttributes, level_rank
from kaudit.policy.needs import DETECTION_NEEDS, HUMAN, WORKLOAD, probe

Severity = Literal["error", "warning", "info"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint result; `line` is 1-based in the policy file when known."""

    check: str
    severity: Severity
    message: str
    line: int | None = None
    rule_index: int | None = None


class LintCheck(Protocol):
    id: str
    severity: Severity

    def run(self, policy: Policy) -> Iterable[Finding]: ...


def _rule_line(policy: Policy, index: int | None) -> int | None:
    if index is None:
        return None
    return policy.rules[index].line or policy.line_of(f"rules[{index}]")


def _rule_name(index: int | None) -> str:
    return "no rule (default None)" if index is None else f"rule {index}"


# Verbs kube-apiserver's RequestInfo produces for resource requests.
KNOWN_VERBS = frozenset(
    {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "proxy"}
)
NON_RESOURCE_VERBS = frozenset({"get", "post", "put", "patch", "delete", "head", "options"})

# Well-known resources outside the core group: a rule listing them under the core group
# (group omitted) never matches them.
KNOWN_GROUP: dict[str, str] = {
    "deployments": "apps",
    "daemonsets": "apps",
    "statefulsets": "apps",
    "replicasets": "apps",
    "controllerrevisions": "apps",
    "jobs": "batch",
    "cronjobs": "batch",
    "ingresses": "networking.k8s.io",
    "networkpolicies": "networking.k8s.io",
    "ingressclasses": "networking.k8s.io",
    "roles": "rbac.authorization.k8s.io",
    "rolebindings": "rbac.authorization.k8s.io",
    "clusterroles": "rbac.authorization.k8s.io",
    "clusterrolebindings": "rbac.authorization.k8s.io",
    "leases": "coordination.k8s.io",
    "tokenreviews": "authentication.k8s.io",
    "subjectaccessreviews": "authorization.k8s.io",
    "selfsubjectaccessreviews": "authorization.k8s.io",
    "certificatesigningrequests": "certificates.k8s.io",
    "mutatingwebhookconfigurations": "admissionregistration.k8s.io",
    "validatingwebhookconfigurations": "admissionregistration.k8s.io",
    "validatingadmissionpolicies": "admissionregistration.k8s.io",
    "customresourcedefinitions": "apiextensions.k8s.io",
    "endpointslices": "discovery.k8s.io",
    "storageclasses": "storage.k8s.io",
    "priorityclasses": "scheduling.k8s.io",
    "podsecuritypolicies": "policy",
    "poddisruptionbudgets": "policy",
    "horizontalpodautoscalers": "autoscaling",
}
CORE_RESOURCES = frozenset(
    {
        "pods",
        "services",
        "secrets",
        "configmaps",
        "namespaces",
        "nodes",
        "serviceaccounts",
        "persistentvolumes",
        "persistentvolumeclaims",
        "endpoints",
        "replicationcontrollers",
        "resourcequotas",
        "limitranges",
    }
)


class CredentialBodies:
    """Secrets, ConfigMaps and token requests/reviews logged with bodies leak credentials."""

    id = "credential-leak"
    severity: Severity = "error"
    TARGETS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
        ("", "secrets", ("get", "list", "watch", "create", "update", "patch", "delete")),
        ("", "configmaps", ("get", "list", "watch", "create", "update", "patch")),
        ("", "serviceaccounts/token", ("create",)),
        ("authentication.k8s.io", "tokenreviews", ("create",)),
    )

    def run(self, policy: Policy) -> Iterator[Finding]:
        seen: dict[tuple[int | None, str], tuple[str, set[str]]] = {}
        verbs: tuple[str, ...]
        for group, combined, verbs in self.TARGETS:
            resource, _, sub = combined.partition("/")
            for verb in verbs:
                for who in (HUMAN, WORKLOAD):
                    d = policy.evaluate(probe(verb, resource, sub, group=group, who=who))
                    if level_rank(d.level) > level_rank("Metadata"):
                        key = (d.rule_index, combined)
                        seen.setdefault(key, (d.level, set()))[1].add(verb)
        for (index, combined), (level, hit) in seen.items():
            yield Finding(
                self.id,
                self.severity,
                f"{combined} ({', '.join(sorted(hit))}) logged at {level} by "
                f"{_rule_name(index)}: request/response bodies carry credentials into the "
                "audit log; log them at Metadata",
                _rule_line(policy, index),
                index,
            )


class RequestReceivedKept:
    """`RequestReceived` not omitted: every request is logged twice."""

    id = "request-received-kept"
    severity: Severity = "warning"

    def run(self, policy: Policy) -> Iterator[Finding]:
        if "RequestReceived" in policy.omit_stages:
            return
        kept = [
            i
            for i, r in enumerate(policy.rules)
            if r.level != "None" and "RequestReceived" not in r.omit_stages
        ]
        if kept:
            yield Finding(
                self.id,
                self.severity,
                f"RequestReceived is not omitted (rules {', '.join(map(str, kept))}): each "
                "request is logged at RequestReceived and again at ResponseComplete, doubling "
                "volume with no new information; add `omitStages: [RequestReceived]` at the "
                "policy level",
                policy.line_of("omitStages") or _rule_line(policy, kept[0]),
                None if "omitStages" in policy.lines else kept[0],
            )


class ResponseStartedOmitted:
    """Omitting `ResponseStarted` silently drops every failed-authentication (401) event."""

    id = "response-started-omitted"
    severity: Severity = "warning"

    def run(self, policy: Policy) -> Iterator[Finding]:
        if "ResponseStarted" in policy.omit_stages:
            yield Finding(
                self.id,
                self.severity,
                "ResponseStarted is omitted policy-wide: failed authentications (401) produce "
                "only a ResponseStarted event, so none will be logged (spec §5.4)",
                policy.line_of("omitStages"),
            )


class NoCatchAll:
    """Requests no rule matches get level None: they are not audited at all."""

    id = "no-catch-all"
    severity: Severity = "warning"

    def run(self, policy: Policy) -> Iterator[Finding]:
        if not any(r.is_catch_all for r in policy.rules):
            last = len(policy.rules) - 1
            yield Finding(
                self.id,
                self.severity,
                "no catch-all rule: requests that match no rule are not audited (level None, "
                "not Metadata); end the policy with `- level: Metadata`",
                _rule_line(policy, last),
                last,
            )


def _covers_values(earlier: tuple[str, ...], later: tuple[str, ...]) -> bool:
    # An empty list means "any"; a later list is covered when it is a non-empty subset.
    return not earlier or (bool(later) and set(later) <= set(earlier))


def _pattern_covers(wide: str, narrow: str) -> bool:
    """Whether every request that `narrow` matches is also matched by `wide` (§4.3)."""
    if wide == "*" or wide == narrow:
        return True
    res, _, sub = narrow.partition("/")
    if wide.endswith("/*"):
        return res == wide[:-2] and res != "*"
    if wide.startswith("*/"):
        return bool(sub) and sub == wide[2:] and sub != "*"
    return False


def _gr_covers(wide: GroupResources, narrow: GroupResources) -> bool:
    if wide.group != narrow.group and wide.group != "*":
        return False
    if not wide.resources:
        return True
    if not narrow.resources:
        return False
    if wide.resource_names and not (
        narrow.resource_names and set(narrow.resource_names) <= set(wide.resource_names)
    ):
        return False
    return all(any(_pattern_covers(w, n) for w in wide.resources) for n in narrow.resources)


def rule_covers(earlier: PolicyRule, later: PolicyRule) -> bool:
    """Whether `earlier` matches every request `later` could match (so `later` is dead)."""
    if not (
        _covers_values(earlier.users, later.users)
        and _covers_values(earlier.user_groups, later.user_groups)
        and _covers_values(earlier.verbs, later.verbs)
    ):
        return False
    if earlier.is_resource_rule:
        if not later.is_resource_rule:
            return False
        if not _covers_values(earlier.namespaces, later.namespaces):
            return False
        if not earlier.resources:
            return True
        return bool(later.resources) and all(
            any(_gr_covers(w, n) for w in earlier.resources) for n in later.resources
        )
    if earlier.non_resource_urls:
        if not later.non_resource_urls or later.is_resource_rule:
            return False
        return all(
            any(
                w == "*" or w == n or (w.endswith("*") and n.startswith(w.rstrip("*")))
                for w in earlier.non_resource_urls
            )
            for n in later.non_resource_urls
        )
    return True


class ShadowedRule:
    """A rule that can never match because an earlier rule matches all its requests."""

    id = "shadowed-rule"
    severity: Severity = "warning"

    def run(self, policy: Policy) -> Iterator[Finding]:
        rules = policy.rules
        for j, later in enumerate(rules):
            for i in range(j):
                if rule_covers(rules[i], later):
                    yield Finding(
                        self.id,
                        self.severity,
                        f"rule {j} ({later.level}) can never match: rule {i} "
                        f"(line {_rule_line(policy, i)}, {rules[i].level}) comes first and "
                        "matches every request it would (the first match wins)",
                        _rule_line(policy, j),
                        j,
                    )
                    break


class DetectionBlind:
    """Requests kaudit's detections read, logged below the level they need."""

    id = "detection-blind"
    severity: Severity = "warning"

    def run(self, policy: Policy) -> Iterator[Finding]:
        for need in DETECTION_NEEDS:
            worst: tuple[str, int | None, str] | None = None
            for attrs in need.probes():
                d = policy.evaluate(attrs)
                if d.level == "None" or need.stage in d.omit_stages:
                    why = (
                        f"stage {need.stage} omitted"
                        if d.level != "None"
                        else "not logged (level None)"
                    )
                elif not need.satisfied_by(d.level):
                    why = f"logged at {d.level}"
                else:
                    continue
                target = f"{attrs.resource}{'/' + attrs.subresource if attrs.subresource else ''}"
                worst = (f"{attrs.verb} {target}", d.rule_index, why)
                break
            if worst is not None:
                what, index, why = worst
                yield Finding(
                    self.id,
                    self.severity,
                    f"detection {need.detection} goes blind: {what} is {why} by "
                    f"{_rule_name(index)}, it needs {need.min_level} or above ({need.what})",
                    _rule_line(policy, index),
                    index,
                )


class HighVolume:
    """Chatty objects (events, leases) logged with bodies; health URLs logged at all."""

    id = "high-volume"
    severity: Severity = "warning"
    NOISY: tuple[tuple[str, str, tuple[str, ...]], ...] = (
        ("", "events", ("create", "patch", "list", "watch")),
        ("events.k8s.io", "events", ("create", "patch", "list", "watch")),
        ("coordination.k8s.io", "leases", ("get", "update")),
    )
    HEALTH = ("/healthz", "/livez", "/readyz", "/metrics")

    def run(self, policy: Policy) -> Iterator[Finding]:
        for group, resource, verbs in self.NOISY:
            for verb in verbs:
                d = policy.evaluate(probe(verb, resource, group=group, namespace="kube-system"))
                if level_rank(d.level) >= level_rank("Request"):
                    yield Finding(
                        self.id,
                        self.severity,
                        f"{resource} ({group or 'core'}) {verb} logged at {d.level} by "
                        f"{_rule_name(d.rule_index)}: these change every few seconds; log them "
                        "at Metadata or None",
                        _rule_line(policy, d.rule_index),
                        d.rule_index,
                    )
                    break
        for path in self.HEALTH:
            d = policy.evaluate(
                RequestAttributes(user="system:anonymous", groups=("system:unauthenticated",),
                                  verb="get", path=path)
            )  # fmt: skip
            if d.level != "None":
                yield Finding(
                    self.id,
                    "info",
                    f"health URL {path} logged at {d.level} by {_rule_name(d.rule_index)}: "
                    "probes hit it every few seconds; consider level None",
                    _rule_line(policy, d.rule_index),
                    d.rule_index,
                )


class WideWildcard:
    """Wildcards and lists that match more, or other things, than they seem to."""

    id = "wide-wildcard"
    severity: Severity = "info"

    def run(self, policy: Policy) -> Iterator[Finding]:
        for i, rule in enumerate(policy.rules):
            line = _rule_line(policy, i)
            if "" in rule.namespaces:
                yield Finding(
                    self.id,
                    self.severity,
                    f'rule {i}: namespaces [""] means "no namespace in the URL": it matches '
                    "cluster-scoped objects and cross-namespace lists (GET /api/v1/pods), but "
                    "not GET /api/v1/namespaces/foo",
                    line,
                    i,
                )
            for gr in rule.resources:
                for p in gr.resources:
                    if p.endswith("/*") and p != "*/*":
                        yield Finding(
                            self.id,
                            self.severity,
                            f"rule {i}: {p!r} also matches plain {p[:-2]!r}, not only its "
                            "subresources",
                            line,
                            i,
                        )
                if gr.group == "*":
                    yield Finding(
                        self.id,
                        self.severity,
                        f'rule {i}: group "*" matches every API group and is accepted only '
                        "from Kubernetes 1.36; older apiservers reject the policy",
                        line,
                        i,
                    )


class NeverMatches:
    """Patterns, verbs and groups that can never match a real request."""

    id = "never-matches"
    severity: Severity = "warning"

    def run(self, policy: Policy) -> Iterator[Finding]:
        for i, rule in enumerate(policy.rules):
            line = _rule_line(policy, i)

            def f(msg: str, i: int = i, line: int | None = line) -> Finding:
                return Finding(self.id, self.severity, f"rule {i}: {msg}", line, i)

            known = NON_RESOURCE_VERBS if rule.non_resource_urls else KNOWN_VERBS
            for verb in rule.verbs:
                if verb not in known:
                    hint = " (verbs are case-sensitive)" if verb.lower() in known else ""
                    yield f(f"verb {verb!r} is never produced by kube-apiserver{hint}")
            for gr in rule.resources:
                for p in gr.resources:
                    if p == "*/*" or p.count("/") > 1:
                        yield f(f"resource pattern {p!r} never matches anything")
                    base = p.split("/")[0]
                    want = KNOWN_GROUP.get(base)
                    if gr.group == "" and want is not None:
                        yield f(f"{p!r} is in group {want!r}, not the core group; without "
                                f"`group: {want}` this entry never matches it")  # fmt: skip
                    elif gr.group not in ("", "*") and base in CORE_RESOURCES:
                        yield f(f"{p!r} is a core resource; under group {gr.group!r} it "
                                "never matches")  # fmt: skip
                if gr.resource_names and rule.verbs and set(rule.verbs) <= {"create"}:
                    yield f("resourceNames never match create: the name is not known when "
                            "the policy is evaluated (spec §5.1)")  # fmt: skip


class StreamingVerbs:
    """exec/attach/portforward rules that list only one of the two verbs they arrive as."""

    id = "streaming-verbs"
    severity: Severity = "warning"
    STREAMS = ("pods/exec", "pods/attach", "pods/portforward")

    def run(self, policy: Policy) -> Iterator[Finding]:
        for i, rule in enumerate(policy.rules):
            if not rule.verbs:
                continue
            verbs = set(rule.verbs)
            hits = [
                s
                for s in self.STREAMS
                for gr in rule.resources
                if gr.group == ""
                and any(resource_pattern_matches(p, "pods", s[5:]) for p in gr.resources)
            ]
            if hits and len(verbs & {"get", "create"}) == 1:
                yield Finding(
                    self.id,
                    self.severity,
                    f"rule {i} targets {hits[0]} with verbs {sorted(verbs)}: over WebSocket it "
                    "arrives as get, over SPDY as create; list both",
                    _rule_line(policy, i),
                    i,
                )


class UnauthenticatedGroup:
    """`userGroups: [system:unauthenticated]` matches anonymous users, not failed logins."""

    id = "unauthenticated-group"
    severity: Severity = "info"

    def run(self, policy: Policy) -> Iterator[Finding]:
        for i, rule in enumerate(policy.rules):
            if "system:unauthenticated" in rule.user_groups:
                yield Finding(
                    self.id,
                    self.severity,
                    f"rule {i}: system:unauthenticated matches the anonymous user only; requests "
                    "that fail authentication (401) carry no user and match no rule with "
                    "users/userGroups",
                    _rule_line(policy, i),
                    i,
                )


def builtin_checks() -> dict[str, LintCheck]:
    """The registry of policy checks, by id."""
    checks: list[LintCheck] = [
        CredentialBodies(),
        RequestReceivedKept(),
        ResponseStartedOmitted(),
        NoCatchAll(),
        ShadowedRule(),
        DetectionBlind(),
        HighVolume(),
        WideWildcard(),
        NeverMatches(),
        StreamingVerbs(),
        UnauthenticatedGroup(),
    ]
    return {c.id: c for c in checks}


def lint_policy(policy: Policy, checks: dict[str, LintCheck] | None = None) -> list[Finding]:
    """Run every check on a loaded policy; load warnings become findings too."""
    out: list[Finding] = []
    for w in policy.warnings:
        check = "deprecated-api-version" if w.field == "apiVersion" else "unknown-field"
        out.append(Finding(check, "warning", f"{w.field}: {w.message}", w.line))
    for lint_check in (checks or builtin_checks()).values():
        out.extend(lint_check.run(policy))
    return sorted(out, key=lambda f: (f.line or 0, -SEVERITY_RANK[f.severity], f.check))


def lint_text(
    text: str,
    *,
    source: str | None = None,
    kubernetes_version: str | None = None,
    checks: dict[str, LintCheck] | None = None,
) -> list[Finding]:
    """Lint a policy file. Invalid policies give one `invalid` error finding per error."""
    result = check_policy(text, source=source, kubernetes_version=kubernetes_version)
    if result.policy is None and any(
        e.field == "apiVersion" and any(v in e.message for v in OLD_VERSIONS) for e in result.errors
    ):
        # Lint a removed apiVersion with 1.23 rules, and say that current apiservers refuse it.
        retry = check_policy(text, source=source, kubernetes_version="1.23")
        if retry.policy is not None:
            first = result.errors[0]
            rest = lint_policy(retry.policy, checks)
            return [
                Finding(
                    "deprecated-api-version",
                    "error",
                    first.message,
                    first.location.line if first.location else None,
                ),
                *(f for f in rest if f.check != "deprecated-api-version"),
            ]
    if result.policy is None:
        return [
            Finding("invalid", "error", e.message, e.location.line if e.location else None)
            for e in result.errors
        ]
    return lint_policy(result.policy, checks)
