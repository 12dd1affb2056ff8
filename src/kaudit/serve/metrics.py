"""`/metrics` in the Prometheus text format (0.0.4), written by hand: a few counters and one
histogram do not justify a client library and its global registry."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Mapping
from typing import Any

ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Histogram:
    """Cumulative-bucket latency histogram (seconds), safe to observe from any thread."""

    def __init__(self, buckets: tuple[float, ...] = ACK_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.n = 0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        i = bisect.bisect_left(self.buckets, seconds)
        with self._lock:
            self.counts[i] += 1
            self.total += seconds
            self.n += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        with self._lock:
            counts, total, n = list(self.counts), self.total, self.n
        out, acc = [], 0
        sep = "," if labels else ""
        for b, c in zip(self.buckets, counts, strict=False):
            acc += c
            out.append(f'{name}_bucket{{{labels}{sep}le="{b}"}} {acc}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {n}')
        out.append(f"{name}_sum{{{labels}}} {total:.6f}" if labels else f"{name}_sum {total:.6f}")
        out.append(f"{name}_count{{{labels}}} {n}" if labels else f"{name}_count {n}")
        return out


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**kv: str) -> str:
    return ",".join(f'{k}="{_esc(v)}"' for k, v in kv.items())


def render(
    sources: Iterable[Mapping[str, Any]],
    refused: Mapping[tuple[str, str], int],
    writer: Mapping[str, float],
    ack: Histogram,
    event_times: Mapping[tuple[str, str], float | None],
    journal: Mapping[str, float] | None = None,
) -> str:
    """The whole exposition: per (cluster, source) ingestion health, refusals, the writer,
    the webhook's journal."""
    lines: list[str] = []

    def family(name: str, kind: str, help_: str) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")

    srcs = list(sources)
    per_source = (
        ("kaudit_events_received_total", "counter", "events received", "received"),
        ("kaudit_events_stored_total", "counter", "events stored (new)", "stored"),
        ("kaudit_events_duplicate_total", "counter", "events already stored", "duplicate"),
        ("kaudit_received_bytes_total", "counter", "bytes of bodies or lines received", "bytes"),
        ("kaudit_batches_total", "counter", "webhook requests or follower reads", "batches"),
    )
    for name, kind, help_, key in per_source:
        family(name, kind, help_)
        for s in srcs:
            lines.append(f"{name}{{{_labels(cluster=s['cluster'], source=s['source'])}}} {s[key]}")
    family("kaudit_events_rejected_total", "counter", "events refused by the store, by reason")
    for s in srcs:
        for reason, n in s["rejected"].items():
            lab = _labels(cluster=s["cluster"], source=s["source"], reason=reason)
            lines.append(f"kaudit_events_rejected_total{{{lab}}} {n}")
    family("kaudit_lag_seconds", "gauge", "arrival time minus newest stageTimestamp")
    for s in srcs:
        if s["lag_seconds"] is not None:
            lab = _labels(cluster=s["cluster"], source=s["source"])
            lines.append(f"kaudit_lag_seconds{{{lab}}} {s['lag_seconds']}")
    family("kaudit_last_event_timestamp_seconds", "gauge", "newest stageTimestamp seen")
    for s in srcs:
        t = event_times.get((s["cluster"], s["source"]))
        if t is not None:
            lab = _labels(cluster=s["cluster"], source=s["source"])
            lines.append(f"kaudit_last_event_timestamp_seconds{{{lab}}} {t:.3f}")
    family("kaudit_source_stalled", "gauge", "1 when nothing arrived for stalled_after seconds")
    for s in srcs:
        lab = _labels(cluster=s["cluster"], source=s["source"])
        lines.append(f"kaudit_source_stalled{{{lab}}} {int(s['stalled'])}")
    family("kaudit_webhook_refused_total", "counter", "webhook requests refused, by reason")
    for (cluster, reason), n in sorted(refused.items()):
        lines.append(
            f"kaudit_webhook_refused_total{{{_labels(cluster=cluster, reason=reason)}}} {n}"
        )
    for key, value in writer.items():
        name = f"kaudit_writer_{key}"
        kind = "gauge" if key == "queued_events" else "counter"
        family(name, kind, f"single writer: {key.replace('_', ' ')}")
        lines.append(f"{name} {value}")
    for key, value in (journal or {}).items():
        name = f"kaudit_journal_{key}"
        kind = "gauge" if key == "pending_bytes" else "counter"
        family(name, kind, f"webhook journal: {key.replace('_', ' ')}")
        lines.append(f"{name} {value}")
    family("kaudit_webhook_ack_seconds", "histogram", "time from request to acknowledgement")
    lines.extend(ack.lines("kaudit_webhook_ack_seconds"))
    return "\n".join(lines) + "\n"


def render_alerts(stored: Mapping[tuple[str, str, str], int], detect: Mapping[str, Any]) -> str:
    """Alerts (stored, by rule/severity/status; notified), channel delivery failures and the
    detector's own counters."""
    lines: list[str] = []

    def family(name: str, kind: str, help_: str) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")

    family("kaudit_alerts", "gauge", "stored alerts by rule, severity and status")
    for (rule, sev, status), n in sorted(stored.items()):
        lines.append(f"kaudit_alerts{{{_labels(rule=rule, severity=sev, status=status)}}} {n}")
    if detect:
        family("kaudit_alerts_notified_total", "counter", "alert notifications sent to routing")
        for (rule, sev), n in sorted(detect["notified"].items()):
            lines.append(f"kaudit_alerts_notified_total{{{_labels(rule=rule, severity=sev)}}} {n}")
        family(
            "kaudit_alert_delivery_failures_total",
            "counter",
            "messages not delivered (retries exhausted, queue full, left at shutdown)",
        )
        for ch in sorted({*detect["channels"], *detect["failures"]}):
            n = detect["failures"].get(ch, 0)
            lines.append(f"kaudit_alert_delivery_failures_total{{{_labels(channel=ch)}}} {n}")
        delivery = detect.get("delivery", {})
        per_channel = (
            ("kaudit_alert_delivery_queue_messages", "gauge", "messages waiting or being sent",
             "queued"),
            ("kaudit_alert_delivered_total", "counter", "messages a channel accepted",
             "delivered"),
            ("kaudit_alert_delivery_queue_full_total", "counter",
             "messages refused because the channel's queue was full", "queue_full"),
        )  # fmt: skip
        for name, kind, help_, attr in per_channel:
            family(name, kind, help_)
            for ch, st in sorted(delivery.items()):
                lines.append(f"{name}{{{_labels(channel=ch)}}} {getattr(st, attr)}")
        for key, value in detect["counters"].items():
            name = f"kaudit_detect_{key}"
            family(name, "counter", f"live detection: {key.replace('_', ' ')}")
            lines.append(f"{name} {value}")
    return "\n".join(lines) + "\n"
