"""Keep Secret values out of the store.

An audit policy that logs Secrets above Metadata puts their `data`/`stringData` into
`requestObject`/`responseObject` (spec k8s-audit §7). kaudit replaces every such value by
`MARKER` at ingest, keeping the keys so an analyst still sees *which* keys changed. Covered:
Secret objects anywhere in a body (single objects, `SecretList`/`List` items, Table rows), and for
requests on the `secrets` resource also bodies without `kind` (apply/merge patches) and JSON
Patch documents (a JSON array, §13.14) whose paths point into `/data` or `/stringData`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MARKER = "<redacted by kaudit>"
# Byte strings that every event with a Secret body contains (see `may_hold_secret`).
SECRET_MARKS = (b'"Secret', b'"secrets"')
_MARK_A, _MARK_B = SECRET_MARKS
_SECRET_FIELDS = ("data", "stringData")
_MAX_DEPTH = 64


def _redact_values(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: MARKER for k in value}
    if value is None:
        return None
    return MARKER


def _redact_secret(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """A Secret-shaped object with its values replaced, or None if there was nothing to hide."""
    if not any(f in obj and obj[f] is not None for f in _SECRET_FIELDS):
        return None
    out = dict(obj)
    for f in _SECRET_FIELDS:
        if f in out:
            out[f] = _redact_values(out[f])
    return out


def _walk(value: Any, depth: int) -> Any | None:
    """Redacted copy of `value` if some Secret inside it was redacted, else None."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, Mapping):
        kind = value.get("kind")
        if kind == "Secret":
            return _redact_secret(value)
        if kind == "SecretList":
            # typed list items carry no `kind` of their own
            return _redact_items(value)
        changed: dict[str, Any] | None = None
        for k, v in value.items():
            if isinstance(v, Mapping | list):
                new = _walk(v, depth + 1)
                if new is not None:
                    if changed is None:
                        changed = dict(value)
                    changed[k] = new
        return changed
    if isinstance(value, list):
        out: list[Any] | None = None
        for i, item in enumerate(value):
            new = _walk(item, depth + 1)
            if new is not None:
                if out is None:
                    out = list(value)
                out[i] = new
        return out
    return None


def _redact_items(lst: Mapping[str, Any]) -> dict[str, Any] | None:
    items = lst.get("items")
    if not isinstance(items, list):
        return None
    new_items: list[Any] = []
    hit = False
    for item in items:
        new = _redact_secret(item) if isinstance(item, Mapping) else None
        hit = hit or new is not None
        new_items.append(item if new is None else new)
    if not hit:
        return None
    out = dict(lst)
    out["items"] = new_items
    return out


def _redact_patch(ops: list[Any]) -> list[Any] | None:
    """A JSON Patch on a Secret: hide `value` of operations that touch data/stringData."""
    out: list[Any] | None = None
    for i, op in enumerate(ops):
        if not isinstance(op, Mapping) or "value" not in op:
            continue
        path = op.get("path")
        if not isinstance(path, str):
            continue
        parts = path.split("/")
        top = parts[1] if len(parts) > 1 else ""
        if top in _SECRET_FIELDS or path in ("", "/"):
            new_op = dict(op)
            value = op["value"]
            if len(parts) > 2 or not isinstance(value, Mapping):
                new_op["value"] = MARKER
            elif path in ("", "/"):
                new_op["value"] = _redact_secret(value) or value
            else:
                new_op["value"] = _redact_values(value)
            if out is None:
                out = list(ops)
            out[i] = new_op
    return out


def _redact_body(body: Any, on_secrets: bool) -> Any | None:
    if on_secrets:
        if isinstance(body, list):
            patched = _redact_patch(body)
            if patched is not None:
                return patched
        elif isinstance(body, Mapping):
            kind = body.get("kind")
            if kind is None:
                # apply/merge patches and kind-less bodies of requests on the secrets resource
                own = _redact_secret(body)
                if own is not None:
                    return own
            elif isinstance(kind, str) and kind.endswith("List"):
                listed = _redact_items(body)
                if listed is not None:
                    return listed
    return _walk(body, 0)


def redact_event(event: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
    """The event with Secret values replaced, and whether anything was replaced."""
    ref = event.get("objectRef")
    on_secrets = isinstance(ref, Mapping) and ref.get("resource") == "secrets"
    changed: dict[str, Any] | None = None
    for field in ("requestObject", "responseObject"):
        body = event.get(field)
        if body is None:
            continue
        new = _redact_body(body, on_secrets)
        if new is not None:
            if changed is None:
                changed = dict(event)
            changed[field] = new
    if changed is None:
        return event, False
    return changed, True


def may_hold_secret(line: bytes | str) -> bool:
    """Cheap pre-filter on a raw event line: can `redact_event` change it?

    kube-apiserver writes JSON with Go's encoder, which never escapes ASCII letters, so a Secret
    body always contains `"Secret` (kind Secret/SecretList) or `"secrets"` (the resource).
    """
    data = line.encode() if isinstance(line, str) else line
    return _MARK_A in data or _MARK_B in data  # (a generator over the marks cost 3x as much)
