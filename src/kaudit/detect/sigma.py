"""Sigma -> kaudit rules: pySigma parses the rule (YAML, modifiers, conditions); our own field
mapping (detections.md §2.5) turns its detection tree into an SLS SQL condition of a `match`
rule. A field we cannot map refuses the rule, naming the field (no silent never-matching query).

Known flaws of SigmaHQ's 16 Kubernetes rules (sigma/SOURCES.md) and what we do:
- `apiGroup` without `objectRef.` (rbac_permisions_listing, sidecar_injection): mapped to
  `objectRef.apiGroup`, as is pySigma's short vocabulary (`resource`, `namespace`, `username`).
- `hostPath: '*'` and `capabilities: '*'` (synthetic "field exists"): derived from the pod spec
  in `requestObject` (any hostPath volume path / any added capability).
- `responseStatus.code: 'ALLOW'` (potential_enumeration_activity) compares an integer with a
  string: read as the decision annotation `authorization.k8s.io/decision = allow` (the intent);
  any other non-number against an integer field is refused.
- exec_into_container misses WebSocket exec (`verb: get`): `get` is added for that rule.
- serviceaccount_creation also fires on every TokenRequest: `serviceaccounts/token` excluded.
- `replace` in verb lists is not an audit verb: kept (harmless, never matches).
- 4 rules carry no ATT&CK technique tag: a technique is supplied (`MITRE_FALLBACK`).
Sigma's matching is case-insensitive: values are compared lower-cased.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import SigmaNull, SigmaNumber, SigmaString, SpecialChars

# Sigma field -> SLS SQL expression over kaudit's columns (both vocabularies of §1.2).
_COLUMN = {
    "verb": '"verb"',
    "stage": '"stage"',
    "level": '"level"',
    "requestURI": '"requestURI"',
    "userAgent": '"userAgent"',
    "user.username": '"user.username"',
    "username": '"user.username"',
    "impersonatedUser.username": '"impersonatedUser.username"',
    "objectRef.resource": '"objectRef.resource"',
    "resource": '"objectRef.resource"',
    "objectRef.subresource": '"objectRef.subresource"',
    "subresource": '"objectRef.subresource"',
    "objectRef.namespace": '"objectRef.namespace"',
    "namespace": '"objectRef.namespace"',
    "objectRef.name": '"objectRef.name"',
    "objectRef.apiGroup": '"objectRef.apiGroup"',
    "apiGroup": '"objectRef.apiGroup"',
    "objectRef.apiVersion": '"objectRef.apiVersion"',
    "responseStatus.code": '"responseStatus.code"',
    "annotations.authorization.k8s.io/decision": '"annotations.authorization.k8s.io/decision"',
    "sourceIPs": "json_format(json_array_get(sourceIPs, 0))",
    "user.groups": '"user.groups"',
    # synthetic fields, derived from the pod spec (needs Request-level audit)
    "hostPath": 'array_join(regexp_extract_all("requestObject", '
    '\'"hostPath":\\s*\\{[^}]*"path":\\s*"([^"]*)"\', 1), \',\')',
    "capabilities": 'array_join(regexp_extract_all("requestObject", '
    "'\"add\":\\s*\\[([^\\]]*)\\]', 1), ',')",
    "privileged": 'CASE WHEN regexp_like("requestObject", \'"privileged":\\s*true\') '
    "THEN 'true' ELSE 'false' END",
}
_INTEGER = {"responseStatus.code"}
_BODY_FIELDS = {"hostPath", "capabilities", "privileged"}
EXEC_ID = "a1b0ca4e-7835-413e-8471-3ff2b8a66be6"
SA_ID = "e31bae15-83ed-473e-bf31-faf4f8a17d36"
MITRE_FALLBACK = {
    "0c9b3bda-41a6-4442-9345-356ae86343dc": ["T1053.007"],  # cronjob/job
    "10b97915-ec8d-455f-a815-9a78926585f6": ["T1098"],  # rolebinding
    "58d31a75-a4f8-4c40-985b-373d58162ca2": ["T1485", "T1552.007"],  # secrets modified
    "0d933542-1f1f-420d-97d4-21b2c3c492d9": ["T1078"],  # unauthorized/unauthenticated
}
_LEVEL = {"informational": "info", "low": "low", "medium": "medium", "high": "high",
          "critical": "critical"}  # fmt: skip


class Refused(Exception):
    """The Sigma rule cannot become a kaudit rule (the reason names the field)."""


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _string_pred(col: str, v: SigmaString) -> str:
    if v.contains_special():
        parts: list[str] = []
        for p in v.s:
            if p == SpecialChars.WILDCARD_MULTI:
                parts.append("%")
            elif p == SpecialChars.WILDCARD_SINGLE:
                parts.append("_")
            else:
                parts.append(str(p).lower().replace("\\", "\\\\").replace("%", "\\%")
                             .replace("_", "\\_"))  # fmt: skip
        pattern = "".join(parts)
        if pattern == "%":  # Sigma `'*'`: the field has a value
            return f"coalesce({col}, '') <> ''"
        return f"lower({col}) LIKE {_q(pattern)} ESCAPE '\\'"
    return f"lower({col}) = {_q(str(v).lower())}"


def _item(field: str | None, value: Any, rule_id: str) -> str:
    if field is None:
        raise Refused("keyword (field-less) detections are not supported")
    if field not in _COLUMN:
        raise Refused(f"field {field!r} has no kaudit mapping")
    col = _COLUMN[field]
    if isinstance(value, SigmaNull):
        return f"{col} IS NULL"
    if field in _INTEGER:
        if isinstance(value, SigmaNumber):
            return f"{col} = {value.number}"
        text = str(value)
        if text.upper() in ("ALLOW", "FORBID"):
            return f'"annotations.authorization.k8s.io/decision" = {_q(text.lower())}'
        if re.fullmatch(r"\d+", text):
            return f"{col} = {int(text)}"
        raise Refused(f"field {field!r} is an integer; value {text!r} is not")
    if isinstance(value, SigmaNumber):
        return f"{col} = {_q(str(value.number))}"
    if isinstance(value, SigmaString):
        pred = _string_pred(col, value)
        if rule_id == EXEC_ID and field == "verb" and str(value) == "create":
            pred = f"({pred} OR lower({col}) = 'get')"  # WebSocket exec is logged as get
        return pred
    raise Refused(f"field {field!r}: unsupported value type {type(value).__name__}")


def _render(node: Any, rule_id: str) -> str:
    if isinstance(node, ConditionAND | ConditionOR):
        op = " AND " if isinstance(node, ConditionAND) else " OR "
        return "(" + op.join(_render(a, rule_id) for a in node.args) + ")"
    if isinstance(node, ConditionNOT):
        return f"NOT ({_render(node.args[0], rule_id)})"
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _item(node.field, node.value, rule_id)
    if isinstance(node, ConditionValueExpression):
        raise Refused("keyword (field-less) detections are not supported")
    if isinstance(node, ConditionItem):
        raise Refused(f"unsupported condition {type(node).__name__}")
    raise Refused(f"unsupported condition {type(node).__name__}")


def _fields_used(node: Any) -> set[str]:
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return {node.field or ""}
    out: set[str] = set()
    for a in getattr(node, "args", []):
        out |= _fields_used(a)
    return out


def convert(text: str, source: str = "<sigma>") -> dict[str, Any]:
    """One Sigma rule -> a kaudit rule as plain data; raises `Refused` with the reason."""
    try:
        rule = SigmaRule.from_yaml(text)
    except SigmaError as e:
        raise Refused(f"not a valid Sigma rule: {e}") from None
    ls = rule.logsource
    if (ls.product, ls.service) != ("kubernetes", "audit"):
        raise Refused(f"logsource {ls.product}/{ls.service} is not kubernetes/audit")
    rid = str(rule.id)
    conds = rule.detection.parsed_condition
    if len(conds) != 1:
        raise Refused("only one condition per rule is supported")
    tree = conds[0].parsed
    missing = sorted(f for f in _fields_used(tree) if f not in _COLUMN)
    if missing:
        raise Refused(f"field(s) {', '.join(repr(m) for m in missing)} have no kaudit mapping")
    where = _render(tree, rid)
    if rid == SA_ID:  # TokenRequest is serviceaccounts/token, not a new account
        where = f'{where} AND "objectRef.subresource" IS NULL'
    mitre = sorted({
        t.name.upper() for t in rule.tags
        if t.namespace == "attack" and re.fullmatch(r"t\d{4}(\.\d{3})?", t.name)
    }) or MITRE_FALLBACK.get(rid, [])  # fmt: skip
    if not mitre:
        raise Refused("no ATT&CK technique tag (attack.tNNNN)")
    level = _LEVEL.get(str(rule.level.name).lower() if rule.level else "medium", "medium")
    name = re.sub(r"[^a-z0-9]+", "-", Path(source).stem.lower()).strip("-") or rid
    body = bool(_fields_used(tree) & _BODY_FIELDS)
    desc = (rule.description or rule.title).strip()
    out: dict[str, Any] = {
        "id": f"sigma-{name}",
        "title": {"zh": rule.title, "en": rule.title},
        "description": {"zh": desc, "en": desc},
        "severity": level,
        "mitre": mitre,
        "labels": {"source": "sigma", "sigma_id": rid, "author": str(rule.author or "")},
        "min_level": "Request" if body else "Metadata",
        "match": {"search": "not stage:RequestReceived", "where": where},
        "dedup": {"keys": ["auditID"]},
        "fields": [
            {"事件ID": "auditID"},
            {"操作账号": '"user.username"'},
            {"操作": "concat(verb, ' ', coalesce(\"requestURI\", ''))"},
            {"源地址": "json_format(json_array_get(sourceIPs, 0))"},
        ],
    }
    return out


def convert_paths(paths: Iterable[Path]) -> Iterator[tuple[str, str]]:
    """(path, kaudit rule YAML) or (path, reason refused) for every Sigma file."""
    files: list[Path] = []
    for p in paths:
        files.extend(sorted([*p.glob("*.yml"), *p.glob("*.yaml")]) if p.is_dir() else [p])
    for f in files:
        try:
            data = convert(f.read_text(encoding="utf-8"), str(f))
        except Refused as e:
            yield str(f), str(e)
            continue
        yield str(f), yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000)
