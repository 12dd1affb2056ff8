"""Policy validation, as `pkg/apis/audit/validation/validation.go` (spec k8s-audit §3).

Field paths and error types follow the apiserver's own (`rules[0].level` Required,
`rules[0].resources.group` Invalid), so a message can be compared with what kube-apiserver logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from kaudit.errors import Location, PolicyError
from kaudit.policy.model import LEVELS, STAGES, PolicyRule
from kaudit.policy.version import Semantics

# apimachinery IsDNS1123Subdomain: lowercase RFC 1123 labels joined by dots, at most 253 chars.
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class PolicyFieldError(PolicyError):
    """One validation error: `field` is the apiserver's path, `error_type` its field.ErrorType."""

    def __init__(
        self,
        field: str,
        error_type: str,
        detail: str,
        location: Location | None = None,
    ) -> None:
        super().__init__(f"{field}: {detail}", location, field)
        self.error_type = error_type


class PolicyErrors(PolicyError):
    """Every error of one policy at once (`collect_errors=True`); `errors` lists them."""

    def __init__(self, errors: list[PolicyError]) -> None:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first.message + more, first.location, first.field)
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


# (field path as the apiserver names it, error type, detail[, precise path for the line])
_Found = tuple[str, ...]


def is_dns1123_subdomain(value: str) -> bool:
    return len(value) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(value) is not None


def _not_supported(value: str, allowed: tuple[str, ...]) -> str:
    supported = ", ".join(f'"{a}"' for a in allowed)
    return f'Unsupported value: "{value}": supported values: {supported}'


def validate_omit_stages(stages: tuple[str, ...], path: str) -> list[_Found]:
    return [
        (f"{path}[{i}]", "NotSupported", _not_supported(s, STAGES))
        for i, s in enumerate(stages)
        if s not in STAGES
    ]


def validate_rule(rule: PolicyRule, path: str, sem: Semantics) -> list[_Found]:
    """(field, error type, detail) for each problem of one rule."""
    errs: list[_Found] = []
    if rule.level == "":
        errs.append((f"{path}.level", "Required", "Required value"))
    elif rule.level not in LEVELS:
        errs.append((f"{path}.level", "NotSupported", _not_supported(rule.level, LEVELS)))
    if rule.non_resource_urls:
        if rule.namespaces or rule.resources:
            errs.append(
                (
                    f"{path}.nonResourceURLs",
                    "Invalid",
                    "Invalid value: rules cannot apply to both regular resources and "
                    "non-resource URLs",
                )
            )
        for i, url in enumerate(rule.non_resource_urls):
            if url == "*":
                continue
            if not url.startswith("/"):
                detail = f'Invalid value: "{url}": non-resource URL rules must begin with "/"'
            elif "*" in url[:-1]:
                detail = (
                    f'Invalid value: "{url}": non-resource URL wildcards ("*") '
                    "must be the final character"
                )
            else:
                continue
            errs.append((f"{path}.nonResourceURLs[{i}]", "Invalid", detail))
    for i, gr in enumerate(rule.resources):
        # validation.go reports these under `resources`, without the entry's index.
        if gr.group and not is_dns1123_subdomain(gr.group):
            if gr.group == "*" and sem.group_wildcard:
                pass
            else:
                why = (
                    '"*" is accepted from Kubernetes 1.36'
                    if gr.group == "*"
                    else "must be a lowercase DNS-1123 subdomain (no version)"
                )
                errs.append(
                    (
                        f"{path}.resources.group",
                        "Invalid",
                        f'Invalid value: "{gr.group}" (resources[{i}]): {why}',
                        f"{path}.resources[{i}].group",
                    )
                )
        if gr.resource_names and not gr.resources:
            errs.append(
                (
                    f"{path}.resources.resourceNames",
                    "Invalid",
                    f"Invalid value: resources[{i}]: using resourceNames requires at least one "
                    "resource",
                    f"{path}.resources[{i}].resourceNames",
                )
            )
    errs.extend(validate_omit_stages(rule.omit_stages, f"{path}.omitStages"))
    return errs


def validate(
    rules: tuple[PolicyRule, ...],
    omit_stages: tuple[str, ...],
    sem: Semantics,
    lines: Mapping[str, int],
    source: str | None,
) -> list[PolicyError]:
    """Every validation error of a policy, in document order, with source lines."""
    found = validate_omit_stages(omit_stages, "omitStages")
    for i, rule in enumerate(rules):
        found.extend(validate_rule(rule, f"rules[{i}]", sem))
    out: list[PolicyError] = []
    for fld, etype, detail, *precise in found:
        where = _location(precise[0] if precise else fld, lines, source)
        out.append(PolicyFieldError(fld, etype, detail, where))
    return out


def _location(path: str, lines: Mapping[str, int], source: str | None) -> Location | None:
    p = path
    while p:
        if p in lines:
            return Location(source, lines[p])
        cut = max(p.rfind("."), p.rfind("["))
        p = p[:cut] if cut > 0 else ""
    return Location(source) if source else None
