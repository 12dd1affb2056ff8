"""The `--audit-log-format=legacy` text line (spec k8s-audit §9.4) to an audit.k8s.io/v1 event.

kube-apiserver (`pkg/audit/format.go`, `EventString`) writes:

    <requestReceivedTimestamp RFC3339Nano> AUDIT: id="…" stage="…" ip="…" method="…" user="…"
    groups="…" as="…" asgroups="…" user-agent="…" namespace="…" uri="…" response="…"

Every value is Go-quoted (`%q`); `groups`/`asgroups` are lists of Go-quoted names joined by `,`
and quoted again. The format is lossy (level, resource, name, annotations and bodies are never
written), so every converted event carries the annotation `kaudit.io/source-format: legacy`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kaudit.errors import DecodeError, Location
from kaudit.event.formats._common import SOURCE_FORMAT_KEY, micro_time
from kaudit.event.formats.goquote import GoQuoteError, go_quote, scan_go_string

# The keys EventString writes, in its order. Unknown extra keys are tolerated and ignored.
LEGACY_KEYS = (
    "id",
    "stage",
    "ip",
    "method",
    "user",
    "groups",
    "as",
    "asgroups",
    "user-agent",
    "namespace",
    "uri",
    "response",
)

_PREFIX_RE = re.compile(r"[ \t]*(\S+) AUDIT: ")
_LOOKS_RE = re.compile(r'[ \t]*\d{4}-\d\d-\d\dT\S* AUDIT: id="')
_KEY_RE = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)=")
_CODE_RE = re.compile(r"-?\d{1,10}")
# Fast path: a line exactly as EventString writes it, one regex for all twelve values.
_VALUE = r'"([^"\\\n]*(?:\\.[^"\\\n]*)*)"'
_LINE_RE = re.compile(
    r"[ \t]*(\S+) AUDIT: "
    + " ".join(f"{re.escape(key)}={_VALUE}" for key in LEGACY_KEYS)
    + r"[ \t]*"
)


def looks_like_legacy(line: str) -> bool:
    """True if `line` starts like a legacy audit line (`<time> AUDIT: id="`)."""
    return _LOOKS_RE.match(line) is not None


def _bad(message: str, column: int | None = None) -> DecodeError:
    return DecodeError("bad_legacy_line", message, Location(column=column))


def _fields(text: str, pos: int) -> dict[str, str]:
    """The `key="value"` pairs from `pos` on, values unquoted."""
    fields: dict[str, str] = {}
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos >= n:
            return fields
        key_match = _KEY_RE.match(text, pos)
        if key_match is None:
            raise _bad(f'expected key="value" at column {pos + 1}', pos + 1)
        key = key_match.group(1)
        try:
            value, pos = scan_go_string(text, key_match.end())
        except GoQuoteError as exc:
            raise _bad(f"{key}: {exc} at column {exc.offset + 1}", exc.offset + 1) from None
        if key in fields:
            raise _bad(f"{key} appears twice", key_match.start() + 1)
        if pos < n and text[pos] not in " \t":
            raise _bad(f"expected a space after {key}=… at column {pos + 1}", pos + 1)
        fields[key] = value


def _fast_fields(text: str, match: re.Match[str]) -> dict[str, str]:
    """The values of a line `_LINE_RE` matched; only escaped ones go through the scanner."""
    fields: dict[str, str] = {}
    for index, key in enumerate(LEGACY_KEYS, start=2):
        raw = match.group(index)
        if "\\" in raw:
            start = match.start(index) - 1  # the opening quote
            try:
                raw = scan_go_string(text, start)[0]
            except GoQuoteError as exc:
                raise _bad(f"{key}: {exc} at column {exc.offset + 1}", exc.offset + 1) from None
        fields[key] = raw
    return fields


def _name_list(value: str, key: str) -> list[str]:
    """A `,`-joined list of Go-quoted names (`auditStringSlice`)."""
    names: list[str] = []
    pos = 0
    while pos < len(value):
        try:
            name, pos = scan_go_string(value, pos)
        except GoQuoteError as exc:
            raise _bad(f"{key}: {exc} inside the list {value!r}") from None
        names.append(name)
        if pos < len(value):
            if value[pos] != ",":
                raise _bad(f"{key}: expected ',' between names in {value!r}")
            pos += 1
            if pos == len(value):
                raise _bad(f"{key}: trailing ',' in {value!r}")
    return names


def parse_legacy_line(line: str) -> dict[str, Any]:
    """One legacy line to a v1 event dict; raises DecodeError("bad_legacy_line", …).

    Sentinels map back to absent fields: ip `<unknown>` → no sourceIPs, user `<none>` with
    groups `<none>` → empty user, as `<self>` with asgroups `<lookup>` → no impersonatedUser,
    namespace `<none>` → no objectRef, response `<deferred>` → no responseStatus. Both
    timestamps are the line's time (the stage time is not written); `level` stays absent.
    """
    text = line.rstrip("\r\n")
    fast = _LINE_RE.fullmatch(text)
    if fast is not None:
        time_text, time_start = fast.group(1), fast.start(1)
        fields = _fast_fields(text, fast)
    else:
        prefix = _PREFIX_RE.match(text)
        if prefix is None:
            raise _bad("not a legacy audit line: missing '<time> AUDIT: ' prefix", 1)
        time_text, time_start = prefix.group(1), prefix.start(1)
        fields = _fields(text, prefix.end())
        missing = [key for key in LEGACY_KEYS if key not in fields]
        if missing:
            raise _bad(f"missing {', '.join(missing)}")
    try:
        when = micro_time(time_text)
    except DecodeError as exc:
        raise _bad(exc.message, time_start + 1) from None

    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": fields["id"],
        "stage": fields["stage"],
        "requestURI": fields["uri"],
        "verb": fields["method"],
    }

    # EventString writes groups only for a named user, so user="<none>" with real groups is a
    # user literally called "<none>".
    user: dict[str, Any] = {}
    username, groups = fields["user"], fields["groups"]
    if username != "<none>" or groups != "<none>":
        user["username"] = username
    if groups != "<none>":
        user["groups"] = _name_list(groups, "groups")
    event["user"] = user

    as_user, as_groups = fields["as"], fields["asgroups"]
    if as_user != "<self>" or as_groups != "<lookup>":
        impersonated: dict[str, Any] = {}
        if as_user:  # v1 omits an empty username
            impersonated["username"] = as_user
        if as_groups != "<lookup>":
            # An empty string is an empty, non-nil group list.
            impersonated["groups"] = _name_list(as_groups, "asgroups")
        event["impersonatedUser"] = impersonated

    if fields["ip"] != "<unknown>":
        event["sourceIPs"] = [fields["ip"]]
    if fields["user-agent"]:
        event["userAgent"] = fields["user-agent"]
    if fields["namespace"] != "<none>":
        event["objectRef"] = {"namespace": fields["namespace"]}
    response = fields["response"]
    if response != "<deferred>":
        if _CODE_RE.fullmatch(response) is None:
            raise _bad(f"response is neither a status code nor <deferred>: {response!r}")
        event["responseStatus"] = {"code": int(response)}
    event["requestReceivedTimestamp"] = when
    event["stageTimestamp"] = when
    event["annotations"] = {SOURCE_FORMAT_KEY: "legacy"}
    return event


def _rfc3339_nano(micro: str) -> str:
    """A v1 MicroTime in Go's RFC3339Nano spelling (fraction without trailing zeros)."""
    head, dot, frac = micro.rstrip("Z").partition(".")
    frac = frac.rstrip("0")
    return f"{head}.{frac}Z" if dot and frac else f"{head}Z"


def format_legacy_line(event: Mapping[str, Any]) -> str:
    """What kube-apiserver's `EventString` writes for `event` (a v1 event dict).

    The inverse of `parse_legacy_line` for the fields the format keeps; used to write test
    inputs and to show users what their legacy logs looked like.
    """
    user = event.get("user") or {}
    username = user.get("username") or ""
    groups = "<none>"
    if username:
        groups = ",".join(go_quote(g) for g in user.get("groups") or []) or "<none>"
    else:
        username = "<none>"
    as_user, as_groups = "<self>", "<lookup>"
    impersonated = event.get("impersonatedUser")
    if impersonated is not None:
        as_user = impersonated.get("username") or ""
        if impersonated.get("groups") is not None:
            as_groups = ",".join(go_quote(g) for g in impersonated["groups"])
    ref = event.get("objectRef") or {}
    status = event.get("responseStatus")
    ips = event.get("sourceIPs") or []
    values = [
        ("id", event.get("auditID", "")),
        ("stage", event.get("stage", "")),
        ("ip", ips[0] if ips else "<unknown>"),
        ("method", event.get("verb", "")),
        ("user", username),
        ("groups", groups),
        ("as", as_user),
        ("asgroups", as_groups),
        ("user-agent", event.get("userAgent", "")),
        ("namespace", ref.get("namespace") or "<none>"),
        ("uri", event.get("requestURI", "")),
    ]
    body = " ".join(f"{key}={go_quote(str(value))}" for key, value in values)
    # EventString writes the code with "\"%s\"", not %q; digits need no escaping either way.
    code = "<deferred>" if status is None else str(int(status.get("code", 0)))
    when = _rfc3339_nano(micro_time(str(event.get("requestReceivedTimestamp", ""))))
    return f'{when} AUDIT: {body} response="{code}"'
