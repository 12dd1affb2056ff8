"""Hits -> stored alerts -> notifications: the one place that does the I/O around the pure
functions of `noise`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kaudit.alert.channels import Channel, deliver
from kaudit.alert.model import Alert, Clock, fingerprint
from kaudit.alert.noise import Route, Throttle, Update, apply_hits, plan_messages
from kaudit.alert.store import AlertStore
from kaudit.detect.engine import Hit
from kaudit.detect.model import Rule


@dataclass(slots=True)
class Notifier:
    alerts: AlertStore
    rules: Mapping[str, Rule]
    channels: Mapping[str, Channel]
    routes: Sequence[Route]
    clock: Clock
    throttle: Throttle = field(default_factory=Throttle)
    lang: str = "zh"
    retries: int = 3
    backoff_s: float = 0.5
    failures: dict[str, int] = field(default_factory=dict)  # per channel, for /metrics

    def handle(self, hits: Iterable[Hit]) -> list[Update]:
        hits = list(hits)
        now = self.clock.now()
        known = self.alerts.get(fingerprint(h.rule_id, h.key) for h in hits)
        updates = apply_hits(hits, self.rules, known, self.alerts.silences(now), now, self.lang)
        latest: dict[str, Alert] = {u.alert.fingerprint: u.alert for u in updates}
        self.alerts.save(latest.values())
        to_send = [u.alert for u in updates if u.notify]
        for ch_name, msg in plan_messages(to_send, self.routes, self.throttle, now):
            ch = self.channels.get(ch_name)
            err = (
                f"{ch_name}: no such channel"
                if ch is None
                else deliver(ch, msg, self.retries, self.backoff_s)
            )
            if err is not None:
                self.failures[ch_name] = self.failures.get(ch_name, 0) + 1
                for a in msg.alerts:
                    self.alerts.record_delivery_error(a.fingerprint, err)
        return updates
