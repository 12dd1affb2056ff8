"""Fill the v1 fields that `audit.k8s.io/v1beta1` and `v1alpha1` events lack (spec §8.3).

Only *adds* what is missing: no original field is removed or renamed, so exporting the event
still gives back everything that was ingested. The exception the spec asks for: a micro
timestamp holding Go's zero time (`0001-01-01T00:00:00Z`, which carries no information) is
replaced by the old-style value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kaudit.errors import DecodeError
from kaudit.event.formats._common import micro_time

_ZERO_PREFIX = "0001-01-01T00:00:00"


def _unset(value: Any) -> bool:
    return not isinstance(value, str) or not value or value.startswith(_ZERO_PREFIX)


def _usable(value: Any) -> str | None:
    """`value` as a v1 MicroTime, or None when it is absent, zero or unparsable."""
    if _unset(value):
        return None
    try:
        return micro_time(value)
    except DecodeError:
        return None


def upgrade_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict with requestReceivedTimestamp/stageTimestamp and objectRef.apiGroup filled.

    - `requestReceivedTimestamp` ← `timestamp` (equal in v1beta1), else
      `metadata.creationTimestamp`;
    - `stageTimestamp` ← `metadata.creationTimestamp` (the stage time truncated to seconds),
      else `timestamp`;
    - for `audit.k8s.io/v1alpha1`, `objectRef.apiGroup` ← the part of `objectRef.apiVersion`
      before its last `/` (nothing for the core group, which v1 omits too).

    The input is not modified; a v1 event comes back equal to it.
    """
    out = dict(event)
    metadata = event.get("metadata")
    created = metadata.get("creationTimestamp") if isinstance(metadata, Mapping) else None
    old_received = _usable(event.get("timestamp"))
    old_stage = _usable(created)
    if _unset(event.get("requestReceivedTimestamp")):
        fill = old_received or old_stage
        if fill is not None:
            out["requestReceivedTimestamp"] = fill
    if _unset(event.get("stageTimestamp")):
        fill = old_stage or old_received
        if fill is not None:
            out["stageTimestamp"] = fill

    ref = event.get("objectRef")
    if (
        event.get("apiVersion") == "audit.k8s.io/v1alpha1"
        and isinstance(ref, Mapping)
        and "apiGroup" not in ref
    ):
        version = ref.get("apiVersion")
        if isinstance(version, str) and "/" in version:
            out["objectRef"] = {**ref, "apiGroup": version.rsplit("/", 1)[0]}
    return out
