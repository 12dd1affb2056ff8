"""Ingestion health per (cluster, source): counts, bytes, lag, last event, stalled.

A source is `webhook` or `file:<path>`. Counters only grow while the process runs (Prometheus
counters); lag is now − the newest `stageTimestamp` seen, measured when a batch arrives. A
(cluster, source) with nothing received for longer than `stalled_after` seconds is stalled —
the detection layer alerts on it. The clock is a seam so tests need not sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kaudit.store.base import AppendResult

Clock = Callable[[], float]


@dataclass(slots=True)
class SourceHealth:
    cluster: str
    source: str
    received: int = 0
    stored: int = 0
    duplicate: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    batches: int = 0
    last_event_time: float | None = None  # newest stageTimestamp seen (unix seconds)
    last_received_at: float | None = None  # wall clock of the last batch
    lag_s: float | None = None  # at the last batch: arrival − newest stageTimestamp
    started_at: float = 0.0

    def as_dict(self, now: float, stalled_after: float) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "source": self.source,
            "received": self.received,
            "stored": self.stored,
            "duplicate": self.duplicate,
            "rejected": dict(sorted(self.rejected.items())),
            "bytes": self.bytes,
            "batches": self.batches,
            "lag_seconds": None if self.lag_s is None else round(self.lag_s, 3),
            "last_event_time": _iso(self.last_event_time),
            "last_received_at": _iso(self.last_received_at),
            "stalled": self.stalled(now, stalled_after),
        }

    def stalled(self, now: float, stalled_after: float) -> bool:
        last = self.last_received_at if self.last_received_at is not None else self.started_at
        return now - last > stalled_after


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="milliseconds")


def newest_time(texts: Iterable[str | bytes]) -> float | None:
    """The newest stageTimestamp among event texts, without parsing them.

    kube-apiserver writes it as RFC 3339 in UTC (`"stageTimestamp":"2025-01-31T23:59:59.1Z"`),
    so the strings sort by time."""
    best: str | None = None
    for t in texts:
        i = t.find('"stageTimestamp":"') if isinstance(t, str) else t.find(b'"stageTimestamp":"')
        if i < 0:
            continue
        raw = t[i + 18 : i + 18 + 40]
        v = raw if isinstance(raw, str) else raw.decode("latin-1")
        v = v[: v.find('"')] if '"' in v else v
        if best is None or v > best:
            best = v
    if best is None:
        return None
    try:
        return datetime.fromisoformat(best.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Health:
    """Thread-safe registry of `SourceHealth`."""

    def __init__(self, stalled_after: float, clock: Clock = time.time) -> None:
        self.stalled_after = stalled_after
        self.clock = clock
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], SourceHealth] = {}
        self.refused: dict[tuple[str, str], int] = {}  # (cluster or "-", reason) -> requests

    def _get(self, cluster: str, source: str) -> SourceHealth:
        key = (cluster, source)
        item = self._items.get(key)
        if item is None:
            item = SourceHealth(cluster, source, started_at=self.clock())
            self._items[key] = item
        return item

    def register(self, cluster: str, source: str) -> None:
        """Make a configured source visible (and able to stall) before its first event."""
        with self._lock:
            self._get(cluster, source)

    def arrived(self, cluster: str, source: str, nbytes: int, newest: float | None) -> None:
        now = self.clock()
        with self._lock:
            h = self._get(cluster, source)
            h.batches += 1
            h.bytes += nbytes
            h.last_received_at = now
            if newest is not None:
                h.lag_s = now - newest
                if h.last_event_time is None or newest > h.last_event_time:
                    h.last_event_time = newest

    def stored(self, cluster: str, source: str, result: AppendResult) -> None:
        with self._lock:
            h = self._get(cluster, source)
            h.received += result.received
            h.stored += result.stored
            h.duplicate += result.duplicates
            for reason, n in result.rejected_by_reason.items():
                h.rejected[reason] = h.rejected.get(reason, 0) + n

    def refuse(self, cluster: str | None, reason: str) -> None:
        with self._lock:
            key = (cluster or "-", reason)
            self.refused[key] = self.refused.get(key, 0) + 1

    def snapshot(self) -> list[dict[str, Any]]:
        now = self.clock()
        with self._lock:
            return [
                h.as_dict(now, self.stalled_after)
                for _, h in sorted(self._items.items(), key=lambda kv: kv[0])
            ]

    def event_times(self) -> dict[tuple[str, str], float | None]:
        with self._lock:
            return {k: h.last_event_time for k, h in self._items.items()}

    def refused_snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.refused)
