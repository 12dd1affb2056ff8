"""Hits -> stored alerts -> notifications: the one place that does the I/O around the pure
functions of `noise`.

Alerts are stored synchronously, by the caller's thread; messages go to the channels through
an `Outbox` (a worker thread and a bounded queue per channel), so a channel that hangs or is
down delays neither detection nor the other channels. Every message that is not delivered —
retries exhausted, queue full, still queued at shutdown — is recorded on its alerts
(`delivery_errors`) and counted in `failures` (`/metrics`).
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kaudit.alert.channels import CHANNEL_TYPES, Channel, ConsoleChannel, Texts, deliver
from kaudit.alert.model import Alert, Clock, fingerprint
from kaudit.alert.noise import Message, Route, Throttle, Update, apply_hits, plan_messages
from kaudit.alert.outbox import ChannelStats, Outbox
from kaudit.alert.store import AlertStore
from kaudit.detect.engine import Hit
from kaudit.detect.model import SEVERITY_RANK, Rule
from kaudit.errors import ConfigError


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
    queue_size: int = 1000  # messages waiting per channel before new ones are refused
    # the one lock of the alerts table: DuckDB refuses concurrent updates of one row, and the
    # workers record delivery errors while detection saves alerts (serve passes its own)
    lock: threading.Lock = field(default_factory=threading.Lock)
    outbox: Outbox = field(init=False)
    _closed: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.outbox = Outbox(self.channels, self._send, self._done, self.queue_size)

    def handle(self, hits: Iterable[Hit]) -> list[Update]:
        """Store the alerts the hits make or update, and queue their notifications; returns
        without waiting for any channel."""
        hits = list(hits)
        with self.lock:
            now = self.clock.now()
            known = self.alerts.get(fingerprint(h.rule_id, h.key) for h in hits)
            updates = apply_hits(hits, self.rules, known, self.alerts.silences(now), now, self.lang)
            latest: dict[str, Alert] = {u.alert.fingerprint: u.alert for u in updates}
            self.alerts.save(latest.values())
            to_send = [u.alert for u in updates if u.notify]
            for ch_name, msg in plan_messages(to_send, self.routes, self.throttle, now):
                if ch_name not in self.channels:
                    self._record(ch_name, msg, f"{ch_name}: no such channel")
                elif not self.outbox.put(ch_name, msg):
                    self._record(ch_name, msg, self._refusal(ch_name))
        return updates

    def _refusal(self, ch_name: str) -> str:
        if self.outbox.closed:
            return f"{ch_name}: not sent: kaudit is shutting down"
        return (
            f"{ch_name}: not sent: delivery queue full ({self.queue_size} messages waiting; "
            "the channel is slower than the alerts)"
        )

    def _send(self, ch: Channel, msg: Message, abort: threading.Event) -> str | None:
        return deliver(ch, msg, self.retries, self.backoff_s, abort.wait)

    def _done(self, ch_name: str, msg: Message, err: str | None) -> None:
        if err is None:
            return
        with self.lock:
            if not self._closed:  # after close() the store may be closed too
                self._record(ch_name, msg, err)

    def _record(self, ch_name: str, msg: Message, err: str) -> None:
        """A lost message: on each of its alerts and in the channel's count (lock held)."""
        self.failures[ch_name] = self.failures.get(ch_name, 0) + 1
        for a in msg.alerts:
            self.alerts.record_delivery_error(a.fingerprint, err)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued message is delivered or recorded; False on timeout."""
        return self.outbox.flush(timeout)

    def close(self, drain_timeout: float = 10.0) -> int:
        """Deliver what is queued for up to `drain_timeout` seconds, then record what is left
        as a delivery failure on its alerts; the number of messages left. Call it before the
        store closes; `handle` refuses (and records) anything after."""
        left = self.outbox.close(drain_timeout)
        with self.lock:
            for lo in left:
                err = (
                    f"{lo.channel}: still being sent when kaudit stopped "
                    f"(drain_timeout {drain_timeout:g}s); outcome unknown"
                    if lo.in_flight
                    else f"{lo.channel}: not sent: kaudit stopped before delivery "
                    f"(drain_timeout {drain_timeout:g}s)"
                )
                self._record(lo.channel, lo.message, err)
            self._closed = True
        return len(left)

    def delivery_stats(self) -> dict[str, ChannelStats]:
        """Per channel: queue depth, delivered, failed, refused because the queue was full."""
        idle = ChannelStats(0, 0, 0, 0)
        got = self.outbox.stats()
        return {name: got.get(name, idle) for name in self.channels}


# --- construction from kaudit.yaml `alerts:` (serve, demo) -----------------------------------

_NOT_SETTINGS = {"name", "texts", "clock", "write"}


@dataclass(slots=True)
class ReadableConsoleChannel:
    """One readable line per alert (severity, rule, title, display fields) on a writer:
    the `console` channel of `kaudit serve` and the demo (stderr)."""

    name: str
    write: Callable[[str], Any]
    lang: str = "zh"

    def send(self, message: Message) -> None:
        for a in message.alerts:
            when = datetime.fromtimestamp(a.last_seen, UTC).strftime("%H:%M:%S")
            shown = "  ".join(f"{k}={v}" for k, v in a.fields.items() if v not in (None, ""))
            count = f" x{a.count}" if a.count > 1 else ""
            self.write(
                f"ALERT {when} [{a.severity}] {a.rule_id} {a.fingerprint}{count}: "
                f"{a.title}  {shown}\n"
            )
        if message.held_back:
            self.write(f"ALERT held back by the throttle: {len(message.held_back)} more\n")


def _stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def channel_from_config(
    name: str, spec: Mapping[str, Any], write: Callable[[str], Any] = _stderr
) -> Channel:
    """One channel from its `alerts.channels.NAME` mapping: `type` plus that type's settings
    (the channel class's fields), `lang`, `title` and `text` templates."""
    where = f"alerts.channels.{name}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a mapping with a type")
    kind = spec.get("type")
    types = sorted([*CHANNEL_TYPES, "console", "console-json"])
    if kind == "console":
        _only(spec, {"type", "lang"}, where)
        return ReadableConsoleChannel(name, write, str(spec.get("lang", "zh")))
    if kind == "console-json":
        _only(spec, {"type"}, where)
        return ConsoleChannel(name, write)
    cls = CHANNEL_TYPES.get(str(kind))
    if cls is None:
        raise ConfigError(f"{where}.type: {kind!r} is not one of {', '.join(types)}")
    settings = {f.name: f for f in dataclasses.fields(cls) if f.name not in _NOT_SETTINGS}
    _only(spec, {"type", "lang", "title", "text", *settings}, where)
    args: dict[str, Any] = {}
    for key, f in settings.items():
        if key not in spec:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}.{key}: required for a {kind} channel")
            continue
        v = spec[key]
        if key == "to":
            v = (v,) if isinstance(v, str) else tuple(str(x) for x in v or ())
        elif key in ("port",):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"{where}.{key}: expected a number, got {v!r}")
        elif key == "headers":
            if not isinstance(v, Mapping):
                raise ConfigError(f"{where}.headers: expected a mapping")
            v = {str(a): str(b) for a, b in v.items()}
        elif key in ("starttls",):
            if not isinstance(v, bool):
                raise ConfigError(f"{where}.{key}: expected true or false")
        elif key == "body" or key == "timeout":
            pass
        elif v is not None:
            v = str(v)
        args[key] = v
    if "texts" in {f.name for f in dataclasses.fields(cls)}:
        default_lang = "en" if kind in ("slack", "alertmanager", "syslog") else "zh"
        lang = str(spec.get("lang", default_lang))
        if lang not in ("zh", "en"):
            raise ConfigError(f"{where}.lang: zh or en")
        args["texts"] = Texts(lang, spec.get("title"), spec.get("text"))
    ch: Channel = cls(name=name, **args)
    return ch


def _only(spec: Mapping[str, Any], known: set[str], where: str) -> None:
    for k in spec:
        if k not in known:
            raise ConfigError(f"unknown setting {where}.{k} (known: {', '.join(sorted(known))})")


def routes_from_config(items: Sequence[Any], channels: Mapping[str, Channel]) -> list[Route]:
    """`alerts.routes`; none given: every alert goes to every channel."""
    if not items:
        return [Route(tuple(channels))] if channels else []
    out = []
    for i, item in enumerate(items):
        where = f"alerts.routes[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: expected a mapping with channels")
        _only(item, {"channels", "min_severity", "labels", "rules", "stop"}, where)
        chans = item.get("channels")
        chans = [chans] if isinstance(chans, str) else chans
        if not chans or not isinstance(chans, list):
            raise ConfigError(f"{where}.channels: a list of channel names")
        for c in chans:
            if c not in channels:
                raise ConfigError(f"{where}.channels: no channel {c!r} in alerts.channels")
        sev = str(item.get("min_severity", "info"))
        if sev not in SEVERITY_RANK:
            raise ConfigError(f"{where}.min_severity: one of {', '.join(SEVERITY_RANK)}")
        labels = item.get("labels") or {}
        if not isinstance(labels, Mapping):
            raise ConfigError(f"{where}.labels: expected a mapping")
        rules = item.get("rules") or []
        if not isinstance(rules, list):
            raise ConfigError(f"{where}.rules: expected a list of rule ids")
        out.append(
            Route(
                tuple(str(c) for c in chans),
                sev,
                tuple((str(k), str(v)) for k, v in labels.items()),
                tuple(str(r) for r in rules),
                bool(item.get("stop", False)),
            )
        )
    return out
