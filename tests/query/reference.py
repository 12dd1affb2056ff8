"""A straightforward Python matcher for search trees, written from the spec (sls-query §1),
independently of the SQL path: the property tests check that both select the same events."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from kaudit.query import search
from kaudit.store.schema import COLUMN_BY_LOWER

# spec §1.2: , ' " ; = ( ) [ ] { } ? @ & < > / : newline tab CR, and the space
DELIMS = set(",'\";=()[]{}?@&<>/:\n\t\r ")


def split(text: str, keep: str = "") -> list[str]:
    out, cur = [], []
    for ch in text.lower():
        if ch in DELIMS and ch not in keep:
            if cur:
                out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def _get(obj: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(obj, dict) or p not in obj:
            return None
        obj = obj[p]
    return obj


def _scalar_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return str(v)


def field_values(ev: dict[str, Any], name: str) -> list[Any]:
    """The values a field name denotes in an event ([] when absent)."""
    low = name.lower()
    col = COLUMN_BY_LOWER.get(low)
    if col is not None and col.name == "__time__":
        ts = datetime.fromisoformat(ev["stageTimestamp"].replace("Z", "+00:00"))
        return [int(ts.timestamp())]
    if col is not None:
        v = _get(ev, *col.path) if col.path else None
        return [] if v is None else [v]
    if low.startswith("annotations."):
        v = _get(ev, "annotations", name[len("annotations.") :])
        return [] if v is None else [v]
    head, _, rest = name.partition(".")
    if head.lower() in ("requestobject", "responseobject"):
        key = "requestObject" if head.lower() == "requestobject" else "responseObject"
        return _leaves(ev.get(key), rest.split("."))
    raise KeyError(name)


def _leaves(doc: Any, path: list[str]) -> list[Any]:
    if doc is None:
        return []
    if isinstance(doc, list):
        return [x for item in doc for x in _leaves(item, path)]
    if not path:
        return [] if isinstance(doc, dict) else [doc]
    if isinstance(doc, dict) and path[0] in doc:
        return _leaves(doc[path[0]], path[1:])
    return []


def _token_match(text: str, value: str, quoted: bool) -> bool:
    wild = not quoted and ("*" in value or "?" in value)
    toks = split(text)
    parts = split(value, keep="?" if wild else "")
    for part in parts:
        if wild and ("*" in part or "?" in part):
            rx = re.compile(
                "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in part),
                re.S,
            )
            if not any(rx.fullmatch(t) for t in toks):
                return False
        elif part not in toks:
            return False
    return True


def matches(node: search.Node, ev: dict[str, Any]) -> bool:
    if isinstance(node, search.MatchAll):
        return True
    if isinstance(node, search.And):
        return matches(node.left, ev) and matches(node.right, ev)
    if isinstance(node, search.Or):
        return matches(node.left, ev) or matches(node.right, ev)
    if isinstance(node, search.Not):
        return not matches(node.operand, ev)
    if isinstance(node, search.Term):
        whole = json.dumps(ev, ensure_ascii=False)
        return _token_match(whole, node.value, node.quoted)
    if isinstance(node, search.FieldMatch):
        values = field_values(ev, node.field)
        if node.value == "*" and not node.quoted:
            return bool(values)
        if node.value == "":
            return any(_scalar_text(v) == "" for v in values)
        return any(_token_match(_scalar_text(v), node.value, node.quoted) for v in values)
    numbers = []
    for v in field_values(ev, node.field):
        try:
            numbers.append(float(v))
        except (TypeError, ValueError):
            continue
    if isinstance(node, search.Compare):
        ops = {
            ">": float.__gt__,
            ">=": float.__ge__,
            "<": float.__lt__,
            "<=": float.__le__,
            "=": float.__eq__,
        }
        return any(ops[node.op](x, float(node.number)) for x in numbers)
    lo_ok = (lambda x: x >= node.low) if node.low_inclusive else (lambda x: x > node.low)
    hi_ok = (lambda x: x <= node.high) if node.high_inclusive else (lambda x: x < node.high)
    return any(lo_ok(x) and hi_ok(x) for x in numbers)
