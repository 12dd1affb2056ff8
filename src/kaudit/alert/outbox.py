"""Per-channel delivery workers, so that one slow or down channel delays neither detection nor
the other channels (issue 6: "Retries with backoff; delivery failures are visible on the alert
and in `/metrics`").

Each channel has its own thread and a bounded queue. `Outbox.put` never blocks: it queues the
message and answers False when the channel's queue is full, so that the caller records the loss
on the alerts instead of waiting. A worker sends with `send` (retries and backoff) and reports
every outcome through `done`. `close(timeout)` stops taking messages, lets the queues drain until
the deadline and hands back what is left (queued, or still being sent) for the caller to record:
nothing is dropped silently.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kaudit.alert.channels import Channel
from kaudit.alert.noise import Message

# send(channel, message, abort) -> error text or None; `abort` is set when the drain deadline
# has passed, so a sender waiting between retries gives up at once
Send = Callable[[Channel, Message, threading.Event], "str | None"]
# done(channel name, message, error text or None), called on the worker's thread
Done = Callable[[str, Message, "str | None"], None]


@dataclass(frozen=True, slots=True)
class Leftover:
    """A message `close` gave up on: still queued, or being sent when the deadline passed."""

    channel: str
    message: Message
    in_flight: bool


@dataclass(frozen=True, slots=True)
class ChannelStats:
    queued: int  # waiting or being sent now
    delivered: int
    failed: int  # given up after the retries
    queue_full: int  # refused by `put`: the queue was full


class _Worker:
    """One channel: a deque bounded by `size`, one daemon thread, counters."""

    def __init__(self, channel: Channel, size: int, send: Send, done: Done) -> None:
        self.channel = channel
        self.size = size
        self.send = send
        self.done = done
        self.pending: deque[Message] = deque()
        self.busy: Message | None = None
        self.reporting = 0  # outcomes being reported through `done` right now
        self.stopping = False
        self.abandoned = False  # close() took the in-flight message: do not report it
        self.abort = threading.Event()
        self.delivered = self.failed = self.queue_full = 0
        self.cond = threading.Condition()
        self.thread = threading.Thread(
            target=self._run, name=f"alert-channel:{channel.name}", daemon=True
        )
        self.thread.start()

    def put(self, message: Message) -> bool:
        with self.cond:
            if self.stopping:
                return False
            if len(self.pending) >= self.size:
                self.queue_full += 1
                return False
            self.pending.append(message)
            self.cond.notify_all()
            return True

    def idle(self) -> bool:
        return not self.pending and self.busy is None and self.reporting == 0

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.pending and not self.stopping:
                    self.cond.wait()
                if not self.pending:
                    return  # stopping, and everything was sent
                msg = self.busy = self.pending.popleft()
            err = self.send(self.channel, msg, self.abort)
            with self.cond:
                if self.abandoned:
                    return  # close() recorded it already: its outcome comes too late
                self.busy = None
                self.reporting += 1
                if err is None:
                    self.delivered += 1
                else:
                    self.failed += 1
            try:
                self.done(self.channel.name, msg, err)
            finally:
                with self.cond:
                    self.reporting -= 1
                    self.cond.notify_all()

    def stats(self) -> ChannelStats:
        with self.cond:
            queued = len(self.pending) + (self.busy is not None)
            return ChannelStats(queued, self.delivered, self.failed, self.queue_full)


class Outbox:
    """Bounded per-channel queues with a worker thread each (started on first use)."""

    def __init__(
        self, channels: Mapping[str, Channel], send: Send, done: Done, size: int = 1000
    ) -> None:
        if size < 1:
            raise ValueError("queue size must be at least 1")
        self.channels = channels
        self.send = send
        self.done = done
        self.size = size
        self._workers: dict[str, _Worker] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _worker(self, name: str) -> _Worker | None:
        with self._lock:
            w = self._workers.get(name)
            if w is None and not self._closed and name in self.channels:
                w = self._workers[name] = _Worker(
                    self.channels[name], self.size, self.send, self.done
                )
            return w

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, channel: str, message: Message) -> bool:
        """Queue `message` for `channel`; False when its queue is full or the outbox closed."""
        w = self._worker(channel)
        return w is not None and w.put(message)

    def _all(self) -> list[_Worker]:
        with self._lock:
            return list(self._workers.values())

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queue is empty and every outcome reported; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for w in self._all():
            with w.cond:
                while not w.idle():
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    w.cond.wait(left)
        return True

    def close(self, timeout: float) -> list[Leftover]:
        """Take no more messages, deliver what is queued for up to `timeout` seconds, and
        return what was not delivered by then."""
        with self._lock:
            self._closed = True
        workers = self._all()
        for w in workers:
            with w.cond:
                w.stopping = True
                w.cond.notify_all()
        self.flush(timeout)
        left: list[Leftover] = []
        for w in workers:
            w.abort.set()  # a sender waiting to retry stops at once
            with w.cond:
                left.extend(Leftover(w.channel.name, m, False) for m in w.pending)
                w.pending.clear()
                if w.busy is not None:
                    left.append(Leftover(w.channel.name, w.busy, True))
                    w.abandoned = True
                w.cond.notify_all()
        return left

    def stats(self) -> dict[str, ChannelStats]:
        """Per channel with a worker: queue depth and counters (for `/metrics`)."""
        with self._lock:
            items = list(self._workers.items())
        return {name: w.stats() for name, w in items}
