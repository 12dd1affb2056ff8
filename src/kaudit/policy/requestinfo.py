"""Request attributes from an HTTP request or a stored event (spec k8s-audit §5).

`request_info` follows `pkg/endpoints/request/requestinfo.go` (`NewRequestInfo`) with
kube-apiserver's prefixes (`api` groupless, `apis`); `attributes_from_event` maps a stored
audit event back to what the policy saw (§5.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from kaudit.errors import InputError
from kaudit.policy.model import RequestAttributes

API_PREFIXES = frozenset({"api", "apis"})
GROUPLESS_PREFIXES = frozenset({"api"})
SPECIAL_VERBS = frozenset({"proxy", "watch"})  # deprecated /proxy/ and /watch/ path forms
NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
# k8s.io/apimachinery conversion Convert_Slice_string_To_bool
_FALSE = frozenset({"0", "f", "false", "n", "no"})
_TRUE = frozenset({"1", "t", "true", "y", "yes"})


def _split_path(path: str) -> list[str]:
    trimmed = path.strip("/")
    return trimmed.split("/") if trimmed else []


def _split_unescaped(text: str, sep: str) -> list[str]:
    # fields.ParseSelector: `\` escapes `,`, `=`, `!` and itself.
    parts, cur, esc = [], [], False
    for ch in text:
        if esc:
            cur.append("\\" + ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if esc:
        raise ValueError("trailing backslash")
    parts.append("".join(cur))
    return parts


def _unescape(text: str) -> str:
    out, esc = [], False
    for ch in text:
        if esc:
            out.append(ch)
            esc = False
        elif ch == "\\":
            esc = True
        else:
            out.append(ch)
    return "".join(out)


def field_selector_name(selector: str) -> str | None:
    """The value a field selector requires for `metadata.name`, or None.

    Raises ValueError when the selector does not parse (`metadata.name=x,foo`), which makes
    RequestInfo drop all parsed list options.
    """
    found: str | None = None
    if selector == "":
        return None
    for term in _split_unescaped(selector, ","):
        for op in ("!=", "==", "="):
            idx = _find_unescaped(term, op)
            if idx >= 0:
                fld, value = _unescape(term[:idx]), _unescape(term[idx + len(op) :])
                if op != "!=" and fld == "metadata.name" and found is None:
                    found = value
                break
        else:
            raise ValueError(f"invalid selector term {term!r}")
    return found


def _find_unescaped(term: str, op: str) -> int:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        if term.startswith(op, i):
            return i
        i += 1
    return -1


def _valid_path_segment_name(name: str) -> bool:
    # apimachinery path.IsValidPathSegmentName
    return name not in (".", "..") and "/" not in name and "%" not in name


def _list_verb_and_name(query: str) -> tuple[str, str]:
    """`list` or `watch`, and the name from `fieldSelector=metadata.name=`, for a nameless get."""
    values = parse_qs(query, keep_blank_values=True)
    watch_vals = values.get("watch", [])
    try:
        watch = False
        if watch_vals:
            raw = watch_vals[0].lower()
            if raw in _TRUE:
                watch = True
            elif raw not in _FALSE:
                raise ValueError(f"invalid boolean value {watch_vals[0]!r}")
        name = None
        selectors = values.get("fieldSelector", [])
        if selectors:
            name = field_selector_name(selectors[0])
    except ValueError:
        # requestinfo.go: a parse error resets the options; only `watch` is looked at again
        watch = bool(watch_vals) and watch_vals[0].lower() not in ("false", "0")
        name = None
    verb = "watch" if watch else "list"
    if name is not None and _valid_path_segment_name(name):
        return verb, name
    return verb, ""


def request_info(method: str, url: str) -> RequestAttributes:
    """Attributes the apiserver derives from an HTTP method and URL (no user; §5.1).

    `url` is a path with optional query (`/api/v1/pods?watch=1`) or a full URL.
    """
    split = urlsplit(url)
    path = unquote(split.path)
    parts = _split_path(path)
    non_resource = RequestAttributes(verb=method.lower(), path=path)
    if len(parts) < 3 or parts[0] not in API_PREFIXES:
        return non_resource
    prefix, parts = parts[0], parts[1:]
    api_group = ""
    if prefix not in GROUPLESS_PREFIXES:
        # one part (the prefix) is consumed: this asks for four parts in all
        if len(parts) < 3:
            return non_resource
        api_group, parts = parts[0], parts[1:]
    api_version, parts = parts[0], parts[1:]
    if parts[0] in SPECIAL_VERBS:
        if len(parts) < 2:
            raise InputError(f"unable to determine kind and namespace from url {url!r}")
        verb, parts = parts[0], parts[1:]
    else:
        verb = METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        # namespaces/{ns}/status and /finalize are subresources of the Namespace itself
        if len(parts) > 2 and parts[2] not in NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    resource = parts[0] if parts else ""
    name = parts[1] if len(parts) >= 2 else ""
    # the deprecated /proxy/ form never has a subresource
    subresource = parts[2] if len(parts) >= 3 and verb != "proxy" else ""
    if not name and verb == "get":
        verb, name = _list_verb_and_name(split.query)
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestAttributes(
        verb=verb,
        resource_request=True,
        namespace=namespace,
        api_group=api_group,
        api_version=api_version,
        resource=resource,
        subresource=subresource,
        name=name,
        path=path,
    )


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def attributes_from_event(event: Mapping[str, Any]) -> RequestAttributes:
    """What the policy saw for a stored audit.k8s.io/v1 event (§5.5).

    The authenticated `user` is used, never `impersonatedUser` (§5.2). A create's name came from
    the body after evaluation, so it is dropped; list/watch names come from the field selector.
    Exec over WebSocket is stored with verb `get` and stays `get`.
    """
    user_obj = event.get("user")
    user_map: Mapping[str, Any] = user_obj if isinstance(user_obj, Mapping) else {}
    username = _str(user_map.get("username"))
    raw_groups = user_map.get("groups")
    groups = (
        tuple(g for g in raw_groups if isinstance(g, str))
        if username and isinstance(raw_groups, list)
        else ()
    )
    verb = _str(event.get("verb"))
    uri = _str(event.get("requestURI"))
    split = urlsplit(uri)
    path = unquote(split.path)
    ref = event.get("objectRef")
    if not isinstance(ref, Mapping):
        return RequestAttributes(
            user=username or None, groups=groups, verb=verb, resource_request=False, path=path
        )
    subresource = _str(ref.get("subresource"))
    name = _str(ref.get("name"))
    if verb == "create" and not subresource:
        name = ""
    elif verb in ("list", "watch"):
        name = _list_verb_and_name(split.query)[1]
    return RequestAttributes(
        user=username or None,
        groups=groups,
        verb=verb,
        resource_request=True,
        namespace=_str(ref.get("namespace")),
        api_group=_str(ref.get("apiGroup")),
        api_version=_str(ref.get("apiVersion")),
        resource=_str(ref.get("resource")),
        subresource=subresource,
        name=name,
        path=path,
    )
