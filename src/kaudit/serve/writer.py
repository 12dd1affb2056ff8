"""The single writer: every change to the store goes through one thread, in group commits.

Webhook requests and followers `submit` jobs and wait on a future. The writer takes every job
that is waiting (up to `max_group_events`), appends them in one transaction — one `append` per
(cluster, source), the followers' checkpoints beside them — commits, and only then resolves the
futures. A request is acknowledged after its events are durable, and N concurrent requests
cost one commit instead of N (the commit and the per-append SQL dominate the store's cost).
If the transaction fails every job in it fails, and the webhook answers 503 so the apiserver
retries; nothing of a failed group is visible.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from kaudit.errors import StoreError
from kaudit.event.batch import RawBatch, Reject
from kaudit.serve.health import Health, newest_time
from kaudit.sources import checkpoint
from kaudit.store.base import AppendResult
from kaudit.store.duckdb import DuckDBStore

log = logging.getLogger("kaudit.serve.writer")


class Overloaded(StoreError):
    """The writer's queue is full; the caller should answer 503 (the apiserver retries)."""


@dataclass(slots=True)
class WriteJob:
    """Events of one request or one follower read, with the checkpoint they advance."""

    cluster: str
    source: str  # health source: "webhook" or "file:<path>"
    origin: str  # the `source` column of stored rows (webhook, or the file's name)
    texts: Sequence[str | bytes]
    lines: list[int | None]
    redacted: list[bool]
    nbytes: int = 0
    rejects: list[Reject] = field(default_factory=list)
    checkpoint: checkpoint.Checkpoint | None = None
    future: Future[AppendResult] = field(default_factory=Future)
    # events already cut into record batches (`RawBatch.add_block`): the journal's lines
    blocks: list[pa.RecordBatch] = field(default_factory=list)

    def events(self) -> int:
        """Events and rejects in the job."""
        return len(self.texts) + sum(int(b.num_rows) for b in self.blocks) + len(self.rejects)


@dataclass(slots=True)
class _Exclusive:
    fn: Callable[[DuckDBStore], Any]
    future: Future[Any] = field(default_factory=Future)


@dataclass(slots=True)
class WriterStats:
    groups: int = 0
    jobs: int = 0
    events: int = 0
    failures: int = 0
    commit_seconds: float = 0.0


_STOP = object()


class Writer:
    """Owns all writes to `store` from one thread."""

    def __init__(
        self,
        store: DuckDBStore,
        health: Health,
        max_group_events: int = 20_000,
        queue_events: int = 200_000,
    ) -> None:
        self.store = store
        self.health = health
        self.max_group_events = max_group_events
        self.queue_events = queue_events
        self.stats = WriterStats()
        self._q: queue.Queue[Any] = queue.Queue()
        self._queued = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="kaudit-writer", daemon=True)
        self._closed = False
        self.failed: BaseException | None = None
        # Called on the writer thread after each group commit, once the requests are answered
        # (live detection: it only wakes the detector's thread, so acknowledgements never wait).
        self.on_commit: Callable[[], None] | None = None

    def start(self) -> None:
        checkpoint.ensure_table(self.store)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closed

    @property
    def queued_events(self) -> int:
        return self._queued

    def submit(self, job: WriteJob) -> Future[AppendResult]:
        n = job.events()
        with self._lock:
            if self._closed:
                raise Overloaded("kaudit is shutting down")
            if self._queued and self._queued + n > self.queue_events:
                raise Overloaded(f"{self._queued} events are waiting for the store")
            self._queued += n
        self._q.put(job)
        return job.future

    def exclusive(self, fn: Callable[[DuckDBStore], Any]) -> Future[Any]:
        """Run `fn(store)` on the writer thread, between group commits (prune, admin)."""
        job = _Exclusive(fn)
        with self._lock:
            if self._closed:
                raise Overloaded("kaudit is shutting down")
        self._q.put(job)
        return job.future

    def close(self, timeout: float = 60.0) -> None:
        """Stop taking jobs, store every job already taken, and stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._q.put(_STOP)
        self._thread.join(timeout)

    # --- the thread ------------------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._q.get()
            if item is _STOP:
                break
            if isinstance(item, _Exclusive):
                self._exclusive(item)
                continue
            group: list[WriteJob] = [item]
            n = item.events()
            held: Any = None
            while n < self.max_group_events:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                if isinstance(nxt, _Exclusive):
                    held = nxt
                    break
                group.append(nxt)
                n += nxt.events()
            self._commit(group)
            if held is not None:
                self._exclusive(held)
        # drain: everything submitted before close is stored
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, WriteJob):
                self._commit([item])
            elif isinstance(item, _Exclusive):
                item.future.set_exception(Overloaded("kaudit is shutting down"))

    def _exclusive(self, job: _Exclusive) -> None:
        try:
            job.future.set_result(job.fn(self.store))
        except BaseException as exc:
            job.future.set_exception(exc)

    def _commit(self, group: list[WriteJob]) -> None:
        t0 = time.perf_counter()
        store = self.store
        results: dict[tuple[str, str], AppendResult] = {}
        try:
            store.begin()
            try:
                # one append per (cluster, origin): the per-append SQL is the fixed cost
                merged: dict[tuple[str, str, str], RawBatch] = {}
                for job in group:
                    key = (job.cluster, job.source, job.origin)
                    batch = merged.get(key)
                    if batch is None:
                        batch = merged[key] = RawBatch(cluster=job.cluster, source=job.origin)
                    batch.texts.extend(job.texts)
                    batch.lines.extend(job.lines)
                    batch.redacted.extend(job.redacted)
                    batch.blocks.extend(job.blocks)
                for (cluster, source, _), batch in merged.items():
                    res = store.append(batch)
                    results.setdefault((cluster, source), AppendResult()).add(res)
                for job in group:
                    if job.rejects:
                        store.add_rejects(job.cluster, job.rejects)
                        r = AppendResult(received=len(job.rejects), rejected=len(job.rejects))
                        for rj in job.rejects:
                            r.rejected_by_reason[rj.reason] = (
                                r.rejected_by_reason.get(rj.reason, 0) + 1
                            )
                        results.setdefault((job.cluster, job.source), AppendResult()).add(r)
                    if job.checkpoint is not None:
                        checkpoint.save(store, job.checkpoint)
            except BaseException:
                store.rollback()
                raise
            store.commit()
        except Exception as exc:
            self.stats.failures += 1
            log.error("storing %d batches failed: %s", len(group), exc)
            err = exc if isinstance(exc, StoreError) else StoreError(f"storing failed: {exc}")
            self._finish(group)
            for job in group:
                job.future.set_exception(err)
            return
        self.stats.groups += 1
        self.stats.jobs += len(group)
        self.stats.events += sum(j.events() - len(j.rejects) for j in group)
        self.stats.commit_seconds += time.perf_counter() - t0
        for (cluster, source), res in results.items():
            self.health.stored(cluster, source, res)
        self._finish(group)
        for job in group:
            job.future.set_result(AppendResult(received=job.events()))
        if self.on_commit is not None:
            self.on_commit()

    def _finish(self, group: list[WriteJob]) -> None:
        with self._lock:
            self._queued -= sum(j.events() for j in group)


def arrival(health: Health, job: WriteJob) -> None:
    """Count a job's arrival (bytes, batch, lag) before it waits for the writer."""
    health.arrived(job.cluster, job.source, job.nbytes, newest_time(job.texts))
