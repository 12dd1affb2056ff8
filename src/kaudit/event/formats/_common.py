"""Small helpers shared by the format converters: timestamps, JSON text, event shape."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from kaudit.errors import DecodeError

# Annotation that tells a user an event was converted from a lossy or foreign format.
SOURCE_FORMAT_KEY = "kaudit.io/source-format"
# Annotation listing the v1 fields kaudit inferred instead of copying (comma-separated).
RECONSTRUCTED_KEY = "kaudit.io/reconstructed"

# RFC 3339 with any fraction length; also the "YYYY-MM-DD HH:MM:SS.fffffffff" (no zone = UTC)
# spelling that some exporters (Panther, BigQuery) use for Cloud Logging timestamps.
_TIME_RE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d\d):(\d\d))?"
)


def micro_time(text: str) -> str:
    """Normalise a timestamp to a v1 MicroTime: UTC, exactly 6 fractional digits, `Z`.

    Extra digits are truncated, not rounded, as Go's MicroTime marshalling does (§8.1).
    """
    m = _TIME_RE.fullmatch(text.strip())
    if m is None:
        raise DecodeError("bad_timestamp", f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    micros = int((m.group(7) or "").ljust(6, "0")[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second, micros, tzinfo=UTC)
    except ValueError as exc:
        raise DecodeError("bad_timestamp", f"invalid timestamp {text!r}: {exc}") from None
    if m.group(9):
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        try:
            moment -= offset if m.group(9) == "+" else -offset
        except OverflowError:
            raise DecodeError("bad_timestamp", f"timestamp out of range: {text!r}") from None
    # Not strftime: glibc writes year 1 as "1", and Go's zero time is year 1.
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}Z"
    )


def load_json_text(text: Any, reason: str, what: str) -> Any:
    """Parse embedded JSON text (a wrapper's `message` or `log`), raising DecodeError(reason)."""
    if isinstance(text, Mapping):
        # Some shippers have already parsed the embedded event; accept it as is.
        return text
    if not isinstance(text, str | bytes):
        raise DecodeError(reason, f"{what} is {type(text).__name__}, expected JSON text")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(reason, f"{what} is not valid JSON: {exc}") from None


# Fields of an audit Event; two or more of them make an object look like one.
_EVENT_FIELDS = frozenset(
    {"auditID", "stage", "verb", "requestURI", "user", "objectRef", "sourceIPs", "level"}
)


def looks_like_event(obj: object) -> bool:
    """True for an object shaped like an audit Event of any version (or none, as Falco's)."""
    if not isinstance(obj, Mapping):
        return False
    if obj.get("kind") == "Event":
        version = obj.get("apiVersion")
        return version is None or (isinstance(version, str) and version.startswith("audit.k8s.io/"))
    if "kind" in obj or "apiVersion" in obj:
        return False
    return sum(1 for key in _EVENT_FIELDS if key in obj) >= 2


def as_event(obj: Any, reason: str, what: str) -> dict[str, Any]:
    """Check that an unwrapped object is an audit event and return it as a plain dict."""
    if not isinstance(obj, Mapping):
        raise DecodeError(reason, f"{what} is {type(obj).__name__}, expected an audit event object")
    if not looks_like_event(obj):
        raise DecodeError("not_k8s_audit", f"{what} is not a Kubernetes audit event")
    return dict(obj)
