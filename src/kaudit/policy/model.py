"""The audit policy as typed, frozen records (spec k8s-audit §1), and what evaluation returns.

`Policy` is built by `load_policy` (from a file's text) or `Policy.from_dict` (from a mapping);
both validate (§3). `Policy.evaluate` answers exactly as kube-apiserver's checker does (§4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from kaudit.policy.version import Semantics

if TYPE_CHECKING:
    from kaudit.policy.evaluate import Evaluator

# §1.4: ordered None < Metadata < Request < RequestResponse.
LEVELS: tuple[str, ...] = ("None", "Metadata", "Request", "RequestResponse")
LEVEL_RANK: dict[str, int] = {name: i for i, name in enumerate(LEVELS)}
STAGES: tuple[str, ...] = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")


def level_rank(level: str) -> int:
    """Order of a level; any unknown string ranks like `None` (helpers.go `ordLevel`)."""
    return LEVEL_RANK.get(level, 0)


@dataclass(frozen=True, slots=True)
class GroupResources:
    """One `resources` entry of a rule (§1.3). `group` "" is the core group."""

    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"group": self.group}
        if self.resources:
            out["resources"] = list(self.resources)
        if self.resource_names:
            out["resourceNames"] = list(self.resource_names)
        return out


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One rule (§1.2): every populated field must match. `line` is where it starts in a file."""

    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool | None = None
    line: int | None = field(default=None, compare=False)

    @property
    def is_resource_rule(self) -> bool:
        # checker.go: the resource branch is taken when namespaces or resources is non-empty.
        return bool(self.namespaces or self.resources)

    @property
    def is_catch_all(self) -> bool:
        """Matches every request, resource or not, authenticated or not (§4.5)."""
        return not (
            self.users
            or self.user_groups
            or self.verbs
            or self.resources
            or self.namespaces
            or self.non_resource_urls
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"level": self.level}
        pairs: tuple[tuple[str, tuple[Any, ...]], ...] = (
            ("users", self.users),
            ("userGroups", self.user_groups),
            ("verbs", self.verbs),
            ("resources", tuple(g.to_dict() for g in self.resources)),
            ("namespaces", self.namespaces),
            ("nonResourceURLs", self.non_resource_urls),
            ("omitStages", self.omit_stages),
        )
        for key, value in pairs:
            if value:
                out[key] = list(value)
        if self.omit_managed_fields is not None:
            out["omitManagedFields"] = self.omit_managed_fields
        return out


@dataclass(frozen=True, slots=True)
class LoadWarning:
    """Something the apiserver accepts silently but a user should see (a dropped field)."""

    message: str
    field: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy decides for one request (§4.1)."""

    level: str
    omit_stages: frozenset[str]
    omit_managed_fields: bool
    rule_index: int | None

    def logs_stage(self, stage: str) -> bool:
        """Whether an event of `stage` is produced at all."""
        return self.level != "None" and stage not in self.omit_stages


@dataclass(frozen=True, slots=True)
class RequestAttributes:
    """What the policy sees of one request (§4, §5). `user` is None when unauthenticated."""

    user: str | None = None
    groups: tuple[str, ...] = ()
    verb: str = ""
    resource_request: bool = False
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> RequestAttributes:
        """Attributes of a stored audit.k8s.io/v1 event (§5.5)."""
        from kaudit.policy.requestinfo import attributes_from_event

        return attributes_from_event(event)


@dataclass(frozen=True)
class Policy:
    """A validated audit policy. Build with `load_policy` or `Policy.from_dict`.

    `warnings` lists what loading dropped silently (unknown fields, old apiVersion);
    `lines` maps field paths (`rules[2].verbs`) to 1-based lines of the source file.
    """

    rules: tuple[PolicyRule, ...]
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool = False
    api_version: str = "audit.k8s.io/v1"
    semantics: Semantics = field(default_factory=Semantics.latest)
    warnings: tuple[LoadWarning, ...] = field(default=(), compare=False)
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    source: str | None = field(default=None, compare=False)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        kubernetes_version: str | None = None,
        source: str | None = None,
        collect_errors: bool = False,
    ) -> Policy:
        """Build and validate (§3) a policy from a mapping; `apiVersion`/`kind` may be absent.

        Raises `PolicyError` naming the field path of the first error, or with `collect_errors`
        a `PolicyErrors` whose `errors` lists them all. Zero rules is accepted here (as
        ValidatePolicy does); `load_policy` rejects it as the file loader does.
        """
        from kaudit.policy.load import policy_from_mapping

        return policy_from_mapping(
            data,
            kubernetes_version=kubernetes_version,
            source=source,
            require_rules=False,
            collect_errors=collect_errors,
        )

    @cached_property
    def evaluator(self) -> Evaluator:
        """The rules compiled into matchers, built once per policy."""
        from kaudit.policy.evaluate import Evaluator

        return Evaluator(self)

    def evaluate(self, attrs: RequestAttributes) -> Decision:
        """The level, omitted stages and managed-fields flag kube-apiserver gives `attrs` (§4)."""
        return self.evaluator.evaluate(attrs)

    def line_of(self, path: str) -> int | None:
        """The source line of a field path, or of its nearest enclosing field."""
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"apiVersion": self.api_version, "kind": "Policy"}
        if self.omit_stages:
            out["omitStages"] = list(self.omit_stages)
        if self.omit_managed_fields:
            out["omitManagedFields"] = True
        out["rules"] = [r.to_dict() for r in self.rules]
        return out
