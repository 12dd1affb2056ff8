"""Loading a policy file as kube-apiserver does (spec k8s-audit §2), keeping line numbers.

The text is composed into PyYAML nodes (JSON is read the same way), so every field path
(`rules[2].verbs`) knows its line. Decoding then follows the apiserver: apiVersion/kind required,
unknown fields dropped (here: reported as warnings, since a mis-indented key widens a rule),
validation (§3), and at least one rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from kaudit.errors import Location, PolicyError
from kaudit.policy.model import GroupResources, LoadWarning, Policy, PolicyRule
from kaudit.policy.validate import PolicyErrors, PolicyFieldError, validate
from kaudit.policy.version import Semantics

V1 = "audit.k8s.io/v1"
OLD_VERSIONS = ("audit.k8s.io/v1beta1", "audit.k8s.io/v1alpha1")


def _known_policy_fields(sem: Semantics) -> frozenset[str]:
    names = {"apiVersion", "kind", "metadata", "rules"}
    if sem.policy_omit_stages:
        names.add("omitStages")
    if sem.omit_managed_fields:
        names.add("omitManagedFields")
    return frozenset(names)


def _known_rule_fields(sem: Semantics) -> frozenset[str]:
    names = {"level", "users", "userGroups", "verbs", "resources", "namespaces", "nonResourceURLs"}
    if sem.rule_omit_stages:
        names.add("omitStages")
    if sem.omit_managed_fields:
        names.add("omitManagedFields")
    return frozenset(names)


def _known_gr_fields(sem: Semantics) -> frozenset[str]:
    return frozenset(
        {"group", "resources", "resourceNames"}
        if sem.exact_subresources
        else {"group", "resources"}
    )


@dataclass
class _Decoder:
    """Turns plain values into the model, collecting errors and dropped-field warnings."""

    sem: Semantics
    lines: Mapping[str, int]
    source: str | None
    errors: list[PolicyError] = field(default_factory=list)
    warnings: list[LoadWarning] = field(default_factory=list)

    def loc(self, path: str) -> Location | None:
        p = path
        while p:
            if p in self.lines:
                return Location(self.source, self.lines[p])
            cut = max(p.rfind("."), p.rfind("["))
            p = p[:cut] if cut > 0 else ""
        return Location(self.source) if self.source else None

    def type_error(self, path: str, want: str, value: Any) -> None:
        got = "null" if value is None else type(value).__name__
        got = {
            "str": "string",
            "int": "number",
            "float": "number",
            "dict": "object",
            "list": "array",
            "bool": "boolean",
        }.get(got, got)
        self.errors.append(
            PolicyFieldError(path, "TypeError", f"cannot decode {got} as {want}", self.loc(path))
        )

    def fields(self, obj: Mapping[str, Any], known: frozenset[str], path: str) -> None:
        for key in obj:
            if key not in known:
                where = f"{path}.{key}" if path else str(key)
                self.warnings.append(
                    LoadWarning(
                        f'unknown field "{key}" dropped, as kube-apiserver does '
                        f"(a mis-indented key widens the rule)",
                        where,
                        self.lines.get(where),
                    )
                )

    def string(self, value: Any, path: str) -> str:
        # sigs.k8s.io/yaml turns a YAML number or bool into text when the target is a string
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, str):
            return value
        self.type_error(path, "string", value)
        return ""

    def strings(self, value: Any, path: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.type_error(path, "a list of strings", value)
            return ()
        return tuple(self.string(v, f"{path}[{i}]") for i, v in enumerate(value))

    def boolean(self, value: Any, path: str) -> bool | None:
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        self.type_error(path, "boolean", value)
        return None

    def mapping(self, value: Any, path: str) -> Mapping[str, Any] | None:
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return value
        self.type_error(path, "an object", value)
        return None

    def group_resources(self, value: Any, path: str) -> GroupResources | None:
        obj = self.mapping(value, path)
        if obj is None:
            return None
        self.fields(obj, _known_gr_fields(self.sem), path)
        names = obj.get("resourceNames") if self.sem.exact_subresources else None
        return GroupResources(
            group=self.string(obj.get("group"), f"{path}.group"),
            resources=self.strings(obj.get("resources"), f"{path}.resources"),
            resource_names=self.strings(names, f"{path}.resourceNames"),
        )

    def rule(self, value: Any, path: str) -> PolicyRule | None:
        obj = self.mapping(value, path)
        if obj is None:
            return None
        known = _known_rule_fields(self.sem)
        self.fields(obj, known, path)
        resources: list[GroupResources] = []
        raw_res = obj.get("resources")
        if raw_res is not None and not isinstance(raw_res, list):
            self.type_error(f"{path}.resources", "a list of objects", raw_res)
        elif raw_res:
            for i, item in enumerate(raw_res):
                gr = self.group_resources(item, f"{path}.resources[{i}]")
                if gr is not None:
                    resources.append(gr)
        return PolicyRule(
            level=self.string(obj.get("level"), f"{path}.level"),
            users=self.strings(obj.get("users"), f"{path}.users"),
            user_groups=self.strings(obj.get("userGroups"), f"{path}.userGroups"),
            verbs=self.strings(obj.get("verbs"), f"{path}.verbs"),
            resources=tuple(resources),
            namespaces=self.strings(obj.get("namespaces"), f"{path}.namespaces"),
            non_resource_urls=self.strings(obj.get("nonResourceURLs"), f"{path}.nonResourceURLs"),
            omit_stages=self.strings(
                obj.get("omitStages") if "omitStages" in known else None, f"{path}.omitStages"
            ),
            omit_managed_fields=self.boolean(
                obj.get("omitManagedFields") if "omitManagedFields" in known else None,
                f"{path}.omitManagedFields",
            ),
            line=self.lines.get(path),
        )


def policy_from_mapping(
    data: Mapping[str, Any],
    *,
    kubernetes_version: str | None = None,
    source: str | None = None,
    require_rules: bool = True,
    lines: Mapping[str, int] | None = None,
    warnings: tuple[LoadWarning, ...] = (),
    api_version: str | None = None,
    collect_errors: bool = False,
) -> Policy:
    """Decode and validate a policy mapping (apiVersion/kind, if any, already checked)."""
    sem = Semantics.for_version(kubernetes_version)
    dec = _Decoder(sem, lines or {}, source, warnings=list(warnings))
    dec.fields(data, _known_policy_fields(sem), "")
    rules: list[PolicyRule] = []
    raw_rules = data.get("rules")
    if raw_rules is not None and not isinstance(raw_rules, list):
        dec.type_error("rules", "a list of rules", raw_rules)
    elif raw_rules:
        for i, item in enumerate(raw_rules):
            rule = dec.rule(item, f"rules[{i}]")
            if rule is not None:
                rules.append(rule)
    known = _known_policy_fields(sem)
    omit_stages = dec.strings(
        data.get("omitStages") if "omitStages" in known else None, "omitStages"
    )
    omf = dec.boolean(
        data.get("omitManagedFields") if "omitManagedFields" in known else None,
        "omitManagedFields",
    )
    errors = dec.errors + validate(tuple(rules), omit_stages, sem, dec.lines, source)
    if require_rules and not rules and not dec.errors:
        # reader.go: ValidatePolicy accepts an empty policy, the loader does not.
        errors.append(
            PolicyError(
                "loaded illegal policy with 0 rules", dec.loc("rules") or Location(source), "rules"
            )
        )
    if errors:
        if collect_errors:
            raise PolicyErrors(errors)
        raise errors[0]
    return Policy(
        rules=tuple(rules),
        omit_stages=omit_stages,
        omit_managed_fields=bool(omf),
        api_version=api_version or V1,
        semantics=sem,
        warnings=tuple(dec.warnings),
        lines=dict(dec.lines),
        source=source,
    )


def _record_lines(
    node: yaml.Node, path: str, lines: dict[str, int], warn: list[LoadWarning]
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            if key in seen:
                warn.append(
                    LoadWarning(
                        f'duplicate field "{key}": the last value wins',
                        child,
                        key_node.start_mark.line + 1,
                    )
                )
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _record_lines(value_node, child, lines, warn)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}[{i}]"
            lines[child] = item.start_mark.line + 1
            _record_lines(item, child, lines, warn)


def parse_text(
    text: str, source: str | None = None
) -> tuple[Any, dict[str, int], list[LoadWarning]]:
    """YAML or JSON text to plain values, a field-path → line map, and duplicate-key warnings."""
    lines: dict[str, int] = {}
    warn: list[LoadWarning] = []
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines, warn
        _record_lines(node, "", lines, warn)
        return loader.construct_document(node), lines, warn
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if text.lstrip().startswith(("{", "[")):
            # JSON that PyYAML refuses (tabs, for example): read it without line numbers.
            try:
                return json.loads(text), lines, warn
            except json.JSONDecodeError as jexc:
                raise PolicyError(
                    f"invalid JSON: {jexc.msg}", Location(source, jexc.lineno, jexc.colno)
                ) from None
        problem = getattr(exc, "problem", None) or str(exc)
        where = Location(source, mark.line + 1, mark.column + 1) if mark else Location(source)
        raise PolicyError(f"invalid YAML: {problem}", where) from None
    finally:
        loader.dispose()


def load_policy(
    text: str,
    *,
    source: str | None = None,
    kubernetes_version: str | None = None,
    collect_errors: bool = False,
) -> Policy:
    """Read a policy file's text (YAML or JSON) with kube-apiserver's loading rules (§2).

    Unknown fields are dropped as the apiserver drops them and listed in `Policy.warnings`.
    Raises `PolicyError` (file line included); with `collect_errors`, a `PolicyErrors` listing
    every error.
    """
    sem = Semantics.for_version(kubernetes_version)
    data, lines, warn = parse_text(text, source)
    if data is None:
        raise PolicyError(
            "empty policy file: unknown group version field (expected apiVersion: "
            f"{V1}, kind: Policy); loaded illegal policy with 0 rules",
            Location(source, 1) if source else None,
        )
    if not isinstance(data, Mapping):
        raise PolicyError("a policy file must be a YAML/JSON object", Location(source, 1))
    api_version = data.get("apiVersion")
    kind = data.get("kind")
    if sem.requires_type_meta or api_version or kind:
        if not api_version or not kind:
            missing = " and ".join(
                k for k, v in (("apiVersion", api_version), ("kind", kind)) if not v
            )
            raise PolicyError(
                f"couldn't decode policy: {missing} missing (unknown group version field); "
                f"the file must start with apiVersion: {V1} and kind: Policy",
                Location(source, 1),
            )
        if kind != "Policy":
            raise PolicyError(
                f'kind "{kind}" is not Policy', Location(source, lines.get("kind")), "kind"
            )
        if not isinstance(api_version, str) or not sem.accepts_api_version(api_version):
            hint = ""
            if api_version in OLD_VERSIONS:
                hint = (
                    f"; it was removed in Kubernetes 1.24, use {V1} "
                    "(or set the Kubernetes version below 1.24)"
                )
            elif api_version == V1:
                hint = f"; {V1} exists from Kubernetes 1.12"
            raise PolicyError(
                f'no kind "Policy" is registered for version "{api_version}"{hint}',
                Location(source, lines.get("apiVersion")),
                "apiVersion",
            )
        if api_version in OLD_VERSIONS:
            warn.append(
                LoadWarning(
                    f"{api_version} is deprecated since Kubernetes 1.21 and removed in 1.24; "
                    f"use {V1} (the fields are the same)",
                    "apiVersion",
                    lines.get("apiVersion"),
                )
            )
    return policy_from_mapping(
        data,
        kubernetes_version=kubernetes_version,
        source=source,
        require_rules=True,
        lines=lines,
        warnings=tuple(warn),
        api_version=api_version if isinstance(api_version, str) else None,
        collect_errors=collect_errors,
    )


@dataclass(frozen=True)
class CheckResult:
    """What `check_policy` found: the policy (None when invalid), every error, the warnings."""

    policy: Policy | None
    errors: tuple[PolicyError, ...]
    warnings: tuple[LoadWarning, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def check_policy(
    text: str, *, source: str | None = None, kubernetes_version: str | None = None
) -> CheckResult:
    """Load `text` collecting every error at once (for `kaudit policy check` and lint)."""
    try:
        policy = load_policy(
            text, source=source, kubernetes_version=kubernetes_version, collect_errors=True
        )
    except PolicyErrors as exc:
        return CheckResult(None, tuple(exc.errors), ())
    except PolicyError as exc:
        return CheckResult(None, (exc,), ())
    return CheckResult(policy, (), policy.warnings)
