"""Amazon EKS audit logs exported from CloudWatch Logs: unwrap each record's `message`.

EKS sends the control-plane logs of a cluster to the log group `/aws/eks/<cluster>/cluster`;
audit events are in the streams `kube-apiserver-audit-*`, one event's JSON text per log event
`message`. Accepted shapes:

- one CloudWatch record `{"message": "<event json>", "timestamp": …, "logStream": …}`
  (NDJSON of records, or a JSON array of them: the caller iterates);
- `aws logs filter-log-events` / `get-log-events` output `{"events": [record, …], …}`;
- a subscription-filter payload `{"messageType": "DATA_MESSAGE", "logGroup": …,
  "logStream": …, "logEvents": [{"id", "timestamp", "message"}, …]}` (already gunzipped;
  `CONTROL_MESSAGE` payloads hold no events);
- a line of a CloudWatch export to S3: `<ISO time> <event json>` (`parse_eks_export_line`).

The wrapper (CloudWatch timestamp, ingestion time, event id) is transport, not part of the
audit event, and is not kept; the event itself is returned unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kaudit.errors import DecodeError
from kaudit.event.formats._common import as_event, load_json_text

# Keys CloudWatch puts beside `message` in the shapes above.
_RECORD_KEYS = frozenset(
    {"timestamp", "ingestionTime", "logStream", "logStreamName", "eventId", "id", "logGroup"}
)
_AUDIT_STREAM_PREFIX = "kube-apiserver-audit"
_EXPORT_LINE_RE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (\{.*)", re.DOTALL)
_LOG_GROUP_RE = re.compile(r"/aws/eks/([^/]+)/cluster")


def _is_record(obj: object) -> bool:
    return (
        isinstance(obj, Mapping)
        and isinstance(obj.get("message"), str | Mapping)
        and any(key in obj for key in _RECORD_KEYS)
    )


def looks_like_eks(obj: object) -> bool:
    """True for any of the CloudWatch shapes above (a str is checked as an S3 export line)."""
    if isinstance(obj, str):
        return _EXPORT_LINE_RE.match(obj.lstrip()) is not None
    if not isinstance(obj, Mapping):
        return False
    if obj.get("messageType") in ("DATA_MESSAGE", "CONTROL_MESSAGE"):
        return True
    events = obj.get("events")
    if isinstance(events, list) and "message" not in obj:
        if "searchedLogStreams" in obj or "nextForwardToken" in obj or "nextToken" in obj:
            return True
        return bool(events) and _is_record(events[0])
    return _is_record(obj)


def _check_stream(container: Mapping[str, Any]) -> None:
    stream = container.get("logStream", container.get("logStreamName"))
    if isinstance(stream, str) and not stream.startswith(_AUDIT_STREAM_PREFIX):
        # The cluster log group also holds authenticator, scheduler and apiserver logs.
        raise DecodeError(
            "not_k8s_audit", f"log stream {stream!r} is not a kube-apiserver-audit stream"
        )


def _record_list(items: Any, where: str) -> list[Any]:
    # Items are not checked here: eks_record_to_event rejects a bad one on its own.
    if not isinstance(items, list):
        raise DecodeError("bad_eks_record", f"{where} is not a list")
    return list(items)


def eks_records(obj: Mapping[str, Any]) -> list[Any]:
    """Split a container shape into single CloudWatch records (no parsing of `message`).

    Use with `eks_record_to_event` to reject one bad record while keeping the others.
    A subscription payload's stream is checked here, as its records do not repeat it.
    """
    if not isinstance(obj, Mapping):
        raise DecodeError("bad_eks_record", f"expected an object, got {type(obj).__name__}")
    message_type = obj.get("messageType")
    if message_type == "CONTROL_MESSAGE":
        return []  # CloudWatch's reachability probe when a subscription is created
    if message_type == "DATA_MESSAGE":
        _check_stream(obj)
        return _record_list(obj.get("logEvents"), "logEvents")
    if "events" in obj and "message" not in obj:
        return _record_list(obj["events"], "events")
    if "message" in obj:
        return [obj]
    raise DecodeError("bad_eks_record", "no message, events or logEvents: not a CloudWatch record")


def eks_record_to_event(record: Any) -> dict[str, Any]:
    """One CloudWatch record to the audit event in its `message`."""
    if not isinstance(record, Mapping):
        raise DecodeError("bad_eks_record", f"expected an object, got {type(record).__name__}")
    _check_stream(record)
    if "message" not in record:
        raise DecodeError("bad_eks_record", "CloudWatch record has no message")
    inner = load_json_text(record["message"], "bad_eks_message", "CloudWatch message")
    return as_event(inner, "bad_eks_message", "CloudWatch message")


def unwrap_eks(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every audit event inside one CloudWatch shape; the first bad record raises DecodeError."""
    return [eks_record_to_event(r) for r in eks_records(record)]


def parse_eks_export_line(line: str) -> dict[str, Any]:
    """A line of a CloudWatch Logs export to S3 (`<ISO time> <message>`) to its audit event."""
    match = _EXPORT_LINE_RE.fullmatch(line.strip())
    if match is None:
        raise DecodeError("bad_eks_record", "not a CloudWatch export line '<time> {…}'")
    inner = load_json_text(match.group(2), "bad_eks_message", "CloudWatch message")
    return as_event(inner, "bad_eks_message", "CloudWatch message")


def eks_cluster_name(obj: Mapping[str, Any]) -> str | None:
    """The cluster name from a log group `/aws/eks/<cluster>/cluster`, if the shape has one."""
    group = obj.get("logGroup", obj.get("logGroupName")) if isinstance(obj, Mapping) else None
    if not isinstance(group, str):
        return None
    match = _LOG_GROUP_RE.fullmatch(group)
    return match.group(1) if match else None
