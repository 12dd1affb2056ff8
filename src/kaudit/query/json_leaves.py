"""Scalar leaves of a JSON document at a dotted path, descending into arrays.

Backs nested-field search such as `requestObject.spec.containers.securityContext.privileged:true`
where `containers` is an array: the field matches when any leaf at the path matches.
"""

from __future__ import annotations

from typing import Any

import orjson


def leaves_of(value: Any, path: list[str]) -> list[str]:
    """Text of every scalar leaf under `path` (booleans as `true`/`false`, as in JSON)."""
    out: list[str] = []
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, list):
            stack.extend((item, depth) for item in reversed(node))
        elif depth < len(path):
            if isinstance(node, dict) and path[depth] in node:
                stack.append((node[path[depth]], depth + 1))
        elif isinstance(node, bool):
            out.append("true" if node else "false")
        elif isinstance(node, int | float | str):
            out.append(str(node))
    return out


def json_leaves(doc: str, path: str) -> list[str]:
    try:
        value = orjson.loads(doc)
    except orjson.JSONDecodeError:
        return []
    return leaves_of(value, path.split("."))
