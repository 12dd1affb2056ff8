"""`AuditEvent`: one frozen record per audit event, keeping the whole event.

The record exposes the hot fields kaudit works with (spec k8s-audit §8.1) as attributes and keeps
the event object itself in `raw`, unchanged, so nothing is lost: exporting gives back the same
JSON object. Old versions (v1beta1/v1alpha1, §8.3) are read through their fallbacks
(`timestamp`, `metadata.creationTimestamp`, `objectRef.apiVersion` = "group/version") without
rewriting `raw`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kaudit.errors import DecodeError, Location

# kube-apiserver writes Go's zero time for unset MicroTime fields in old versions (§8.3).
_ZERO_TIMES = frozenset({"0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"})


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 (any fraction length, `Z` or offset) to an aware UTC datetime; None if unset."""
    if not isinstance(value, str) or not value or value in _ZERO_TIMES:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python < 3.11 cannot parse > 6 fractional digits; RFC3339Nano has up to 9.
    head, dot, rest = text.partition(".")
    if dot:
        digits = ""
        for ch in rest:
            if not ch.isdigit():
                break
            digits += ch
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def _sub(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit event as kaudit sees it. `raw` is the event object exactly as ingested."""

    cluster: str
    raw: Mapping[str, Any]
    audit_id: str
    stage: str
    stage_time: datetime
    received_time: datetime | None

    @classmethod
    def from_dict(
        cls, obj: Any, cluster: str = "default", location: Location | None = None
    ) -> AuditEvent:
        """Check the few fields every event must have and build the record."""
        if not isinstance(obj, Mapping):
            raise DecodeError(
                "not_an_object", f"expected a JSON object, got {type(obj).__name__}", location
            )
        audit_id = obj.get("auditID")
        if not isinstance(audit_id, str) or not audit_id:
            raise DecodeError("missing_field", "auditID is missing or not a string", location)
        stage = obj.get("stage")
        if not isinstance(stage, str) or not stage:
            raise DecodeError("missing_field", "stage is missing or not a string", location)
        meta = _sub(obj, "metadata")
        received = parse_time(obj.get("requestReceivedTimestamp")) or parse_time(
            obj.get("timestamp")
        )
        stage_time = (
            parse_time(obj.get("stageTimestamp"))
            or parse_time(meta.get("creationTimestamp"))
            or received
        )
        if stage_time is None:
            raise DecodeError(
                "missing_field",
                "no usable timestamp (stageTimestamp, requestReceivedTimestamp or timestamp)",
                location,
            )
        return cls(cluster, obj, audit_id, stage, stage_time, received)

    # --- hot fields, read from `raw` -------------------------------------------------------
    @property
    def level(self) -> str | None:
        return _str(self.raw, "level")

    @property
    def verb(self) -> str | None:
        return _str(self.raw, "verb")

    @property
    def request_uri(self) -> str | None:
        return _str(self.raw, "requestURI")

    @property
    def user_agent(self) -> str | None:
        return _str(self.raw, "userAgent")

    @property
    def username(self) -> str | None:
        return _str(_sub(self.raw, "user"), "username")

    @property
    def groups(self) -> tuple[str, ...]:
        groups = _sub(self.raw, "user").get("groups")
        return tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else ()

    @property
    def source_ips(self) -> tuple[str, ...]:
        ips = self.raw.get("sourceIPs")
        return tuple(ip for ip in ips if isinstance(ip, str)) if isinstance(ips, list) else ()

    @property
    def object_ref(self) -> Mapping[str, Any]:
        return _sub(self.raw, "objectRef")

    @property
    def resource(self) -> str | None:
        return _str(self.object_ref, "resource")

    @property
    def subresource(self) -> str | None:
        return _str(self.object_ref, "subresource")

    @property
    def namespace(self) -> str | None:
        return _str(self.object_ref, "namespace")

    @property
    def name(self) -> str | None:
        return _str(self.object_ref, "name")

    @property
    def api_group(self) -> str | None:
        ref = self.object_ref
        group = _str(ref, "apiGroup")
        if group is None:
            # v1alpha1 had no apiGroup; its apiVersion is "group/version" (§8.3).
            version = _str(ref, "apiVersion") or ""
            if "/" in version:
                return version.rsplit("/", 1)[0]
        return group

    @property
    def code(self) -> int | None:
        code = _sub(self.raw, "responseStatus").get("code")
        return code if isinstance(code, int) and not isinstance(code, bool) else None

    @property
    def annotations(self) -> Mapping[str, str]:
        return {k: v for k, v in _sub(self.raw, "annotations").items() if isinstance(v, str)}

    @property
    def key(self) -> tuple[str, str, str, datetime]:
        """Identity for deduplication: a retried or re-read event has the same key (§9.5)."""
        return (self.cluster, self.audit_id, self.stage, self.stage_time)
