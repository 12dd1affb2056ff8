"""Noise control as pure functions: dedup and re-alert delay, silences, routing, throttling
and digests. Inputs are hits, the alerts known so far and the time; outputs are new alert
records and what to send — nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from kaudit.alert.model import Alert, Silence, fingerprint
from kaudit.detect.engine import Hit
from kaudit.detect.model import SEVERITY_RANK, Rule

MAX_IDS = 100


@dataclass(frozen=True, slots=True)
class Update:
    """The outcome of one hit: the alert as it is now, and whether to notify."""

    alert: Alert
    notify: bool
    reason: str  # new | realert | deduped | silenced


def apply_hits(
    hits: Iterable[Hit],
    rules: Mapping[str, Rule],
    known: Mapping[str, Alert],
    silences: Sequence[Silence],
    now: float,
    lang: str = "zh",
) -> list[Update]:
    """Fold hits into alerts. A hit for a firing alert within the rule's re-alert delay only
    counts; after it (or for a resolved alert) it notifies again; a silenced hit is stored
    as silenced and not sent."""
    state = dict(known)
    out: list[Update] = []
    t = int(now)
    for h in hits:
        rule = rules[h.rule_id]
        fp = fingerprint(h.rule_id, h.key)
        old = state.get(fp)
        if old is None:
            alert = Alert(
                fp, h.rule_id, rule.title.get(lang), rule.severity, "firing", h.count,
                h.first or t, h.last or t, None, h.key, h.fields, h.event_ids,
                dict(rule.labels), rule.mitre,
            )  # fmt: skip
            reason = "new"
        else:
            seen = set(old.event_ids)
            new_ids = [i for i in h.event_ids if i not in seen]
            if h.event_ids and not new_ids:
                # The same events again (an overlapping window, a replay): nothing new.
                out.append(Update(old, False, "deduped"))
                continue
            alert = replace(
                old,
                count=old.count + (len(new_ids) if h.event_ids else h.count),
                last_seen=max(old.last_seen, h.last or t),
                fields=h.fields,
                event_ids=(*old.event_ids, *new_ids)[-MAX_IDS:],
            )
            due = old.last_notified is None or t - old.last_notified >= rule.dedup.realert_s
            if old.status in ("resolved",) or (old.status == "firing" and due):
                alert = replace(alert, status="firing")
                reason = "realert" if old.status == "firing" else "new"
            else:
                out.append(Update(alert, False, "deduped"))
                state[fp] = alert
                continue
        if any(s.covers(alert, now) for s in silences):
            alert = replace(alert, status="silenced")
            out.append(Update(alert, False, "silenced"))
        else:
            alert = replace(alert, status="firing", last_notified=t)
            out.append(Update(alert, True, reason))
        state[fp] = alert
    return out


@dataclass(frozen=True, slots=True)
class Route:
    """Alerts at `min_severity` or above carrying every label in `labels` go to `channels`."""

    channels: tuple[str, ...]
    min_severity: str = "info"
    labels: tuple[tuple[str, str], ...] = ()
    rules: tuple[str, ...] = ()
    stop: bool = False  # first matching route only


def route(alert: Alert, routes: Sequence[Route]) -> list[str]:
    """Channel names for an alert, in route order, each once."""
    out: list[str] = []
    for r in routes:
        if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[r.min_severity]:
            continue
        if r.rules and alert.rule_id not in r.rules:
            continue
        if any(alert.labels.get(k) != v for k, v in r.labels):
            continue
        out.extend(c for c in r.channels if c not in out)
        if r.stop:
            break
    return out


@dataclass(slots=True)
class Throttle:
    """At most `limit` messages per channel per `per_s`; what is held back is counted per
    channel and reported in the next message that goes out (never dropped silently)."""

    limit: int = 20
    per_s: int = 60
    sent: dict[str, list[float]] = field(default_factory=dict)
    held: dict[str, list[Alert]] = field(default_factory=dict)

    def admit(self, channel: str, alerts: Sequence[Alert], now: float) -> bool:
        """One message (a single alert or a digest) counts once."""
        window = [t for t in self.sent.get(channel, []) if now - t < self.per_s]
        if len(window) >= self.limit:
            self.held.setdefault(channel, []).extend(alerts)
            self.sent[channel] = window
            return False
        window.append(now)
        self.sent[channel] = window
        return True

    def take_held(self, channel: str) -> list[Alert]:
        return self.held.pop(channel, [])


@dataclass(frozen=True, slots=True)
class Message:
    """One notification: a single alert, or a digest of several."""

    alerts: tuple[Alert, ...]
    held_back: tuple[Alert, ...] = ()  # throttled alerts reported by this message

    @property
    def digest(self) -> bool:
        return len(self.alerts) > 1


def digest(alerts: Sequence[Alert], max_single: int = 5) -> list[Message]:
    """Up to `max_single` alerts go one message each; more become one digest per rule."""
    if len(alerts) <= max_single:
        return [Message((a,)) for a in alerts]
    by_rule: dict[str, list[Alert]] = {}
    for a in alerts:
        by_rule.setdefault(a.rule_id, []).append(a)
    return [Message(tuple(v)) for v in by_rule.values()]


def plan_messages(
    alerts: Sequence[Alert],
    routes: Sequence[Route],
    throttle: Throttle,
    now: float,
    max_single: int = 5,
) -> list[tuple[str, Message]]:
    """Route, throttle and digest the alerts to notify: (channel, message) pairs."""
    per_channel: dict[str, list[Alert]] = {}
    for a in alerts:
        for ch in route(a, routes):
            per_channel.setdefault(ch, []).append(a)
    out: list[tuple[str, Message]] = []
    for ch, items in per_channel.items():
        for msg in digest(items, max_single):
            if throttle.admit(ch, msg.alerts, now):
                out.append((ch, Message(msg.alerts, tuple(throttle.take_held(ch)))))
    return out
