"""The alert record, silences, and the `Clock` seam."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Status = Literal["firing", "acknowledged", "resolved", "silenced"]
STATUSES: tuple[Status, ...] = ("firing", "acknowledged", "resolved", "silenced")


class Clock(Protocol):
    """Unix seconds now."""

    def now(self) -> float: ...


class SystemClock:
    def now(self) -> float:
        return time.time()


@dataclass(slots=True)
class FakeClock:
    """A clock tests move by hand."""

    t: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def fingerprint(rule_id: str, key: tuple[str, ...]) -> str:
    """Rule + group key -> a stable short id (same inputs, same alert across restarts)."""
    h = hashlib.sha256("\x1f".join((rule_id, *key)).encode()).hexdigest()
    return h[:16]


@dataclass(frozen=True, slots=True)
class Alert:
    fingerprint: str
    rule_id: str
    title: str
    severity: str
    status: Status
    count: int
    first_seen: int
    last_seen: int
    last_notified: int | None
    key: tuple[str, ...]
    fields: dict[str, Any]
    event_ids: tuple[str, ...]
    labels: dict[str, str] = field(default_factory=dict)
    mitre: tuple[str, ...] = ()
    delivery_errors: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "rule": self.rule_id,
            "title": self.title,
            "severity": self.severity,
            "status": self.status,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "last_notified": self.last_notified,
            "key": list(self.key),
            "fields": self.fields,
            "event_ids": list(self.event_ids),
            "labels": self.labels,
            "mitre": list(self.mitre),
            "delivery_errors": list(self.delivery_errors),
        }


@dataclass(frozen=True, slots=True)
class Silence:
    """Hold back alerts of `rule` (or any rule when None) whose fields match `matchers`
    (`field: value`, value `*`-suffix = prefix) until `expires`."""

    id: str
    rule: str | None
    matchers: tuple[tuple[str, str], ...]
    expires: int
    comment: str = ""

    def covers(self, alert: Alert, now: float) -> bool:
        if now >= self.expires:
            return False
        if self.rule is not None and self.rule != alert.rule_id:
            return False
        for name, want in self.matchers:
            got = alert.fields.get(name, alert.labels.get(name))
            if got is None:
                return False
            got_s = str(got)
            if want.endswith("*") and got_s.startswith(want[:-1]):
                continue
            if got_s != want:
                return False
        return True
