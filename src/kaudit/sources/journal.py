"""The webhook's journal: an acknowledged event is on disk before the store has it.

kube-apiserver's webhook backend sends a batch and waits for the answer before it sends the
next (spec k8s-audit §9.5); a receiver that answers only once the events are in the database
makes the apiserver wait on the database — its commits, its checkpoints — which is the stall
users report of peers (spec peers §12). kaudit answers once the events are appended to a
journal file and fsynced, one fsync for every request that arrived meanwhile (group commit).
A reader thread hands the journal to the store's writer in large groups, with the journal
offset committed in the same transaction as the events (the followers' checkpoint table), so
a crash neither loses nor repeats an acknowledged event, and the store works on batches large
enough to be efficient whatever size the apiserver sends.

Layout: `<dir>/<number>.journal` segments, each line one event: the cluster as a JSON string,
a tab, `1` if Secret values were redacted (else `0`), a tab, the event's JSON. The cluster's
JSON string holds no raw tab and the event's JSON no raw newline (the webhook re-cuts indented
bodies), so lines split without parsing. The reader hands the store each run of one cluster's
lines as an Arrow record batch whose texts are views into the bytes read: no Python object per
event. A segment whose every line is stored is deleted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from kaudit.errors import StoreError
from kaudit.event.batch import BATCH_SCHEMA, REJECT_RAW_LIMIT, Reject, utf8_only
from kaudit.event.decode import string_views
from kaudit.sources import checkpoint

log = logging.getLogger("kaudit.sources.journal")

CHECKPOINT_KEY = "journal:webhook"
_SUFFIX = ".journal"
_STOP = object()


class JournalFull(StoreError):
    """More is waiting in the journal than the store has taken; answer 503 (it retries)."""


def records(cluster: str, texts: Sequence[str | bytes], redacted: Sequence[bool]) -> bytes:
    """The journal lines of one request's events."""
    head = orjson.dumps(cluster)
    return b"".join(
        b"%s\t%s\t%s\n" % (head, b"1" if r else b"0", t if isinstance(t, bytes) else t.encode())
        for t, r in zip(texts, redacted, strict=True)
    )


@dataclass(slots=True)
class Run:
    """Consecutive journal lines of one cluster, as the store takes them."""

    cluster: str
    events: pa.RecordBatch  # of BATCH_SCHEMA; the texts are views into the bytes read
    rejects: list[Reject]  # texts that are not UTF-8 (only a damaged journal has them)
    lines: int
    nbytes: int  # of journal, line ends included


_TAB, _NL, _ONE = 9, 10, ord("1")
_SOURCE = "webhook journal"  # of the rejects a damaged journal leaves
_NO_EVENTS = pa.RecordBatch.from_pylist([], schema=BATCH_SCHEMA)


def _damaged(line: bytes, nbytes: int) -> Run:
    message = "a damaged journal line (not cluster<TAB>flag<TAB>event), kept aside"
    text = line[:REJECT_RAW_LIMIT].decode("utf-8", "replace")
    reject = Reject(_SOURCE, None, "damaged_journal_line", message, text)
    return Run("default", _NO_EVENTS, [reject], 1, nbytes)


def runs(
    data: bytes, clusters: dict[bytes, str] | None = None, limit: int | None = None
) -> list[Run]:
    """The first `limit` lines of `data` (complete lines, each ending in a newline), cut into
    runs of one cluster. A damaged line (not `cluster<TAB>flag<TAB>event`: the disk's doing,
    kaudit writes none) is a run of its own holding only a reject, so that it is kept aside
    and what follows it is stored, instead of the reader retrying it forever."""
    a = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(a == _NL)[:limit]
    if not len(ends):
        return []
    starts = np.concatenate(([0], ends[:-1] + 1))
    tabs = np.flatnonzero(a[: ends[-1]] == _TAB)
    at = np.searchsorted(tabs, starts)
    first = tabs[np.minimum(at, max(len(tabs) - 1, 0))] if len(tabs) else starts
    flag = np.minimum(first + 1, len(a) - 1)
    second = np.minimum(first + 2, len(a) - 1)
    good = (at < len(tabs)) & (first + 2 < ends) & (a[second] == _TAB)
    good &= (a[flag] == _ONE) | (a[flag] == ord("0"))
    try:
        str(memoryview(data)[: int(ends[-1])], "utf-8")
        utf8 = True
    except UnicodeDecodeError:
        utf8 = False
    known = {} if clusters is None else clusters
    out: list[Run] = []
    s_at, f_at = starts.tolist(), first.tolist()
    i, n = 0, len(s_at)
    ok = good.tolist()
    while i < n:
        head = data[s_at[i] : f_at[i]]
        cluster = known.get(head) if ok[i] else None
        if cluster is None and ok[i]:
            with contextlib.suppress(orjson.JSONDecodeError):
                name = orjson.loads(head)
                if isinstance(name, str):
                    cluster = known[head] = name
        if cluster is None:
            out.append(_damaged(data[s_at[i] : int(ends[i])], int(ends[i]) + 1 - s_at[i]))
            i += 1
            continue
        j = i + 1
        while j < n and ok[j] and f_at[j] - s_at[j] == len(head) and data.startswith(head, s_at[j]):
            j += 1
        text_at = first[i:j] + 3
        sizes = ends[i:j] - text_at
        redacted = a[flag[i:j]] == _ONE
        rejects: list[Reject] = []
        if utf8:
            views = string_views(a, text_at, sizes, 0)
            texts = pa.Array.from_buffers(
                pa.string_view(), j - i, [None, pa.py_buffer(views), pa.py_buffer(data)]
            )
            block = pa.record_batch(
                [pa.nulls(j - i, pa.int64()), texts, pa.array(redacted)], schema=BATCH_SCHEMA
            )
        else:  # a damaged journal: the texts one by one, those not UTF-8 kept aside
            raw: list[str | bytes] = [
                data[t : t + z] for t, z in zip(text_at.tolist(), sizes.tolist(), strict=True)
            ]
            block, rejects = utf8_only(_SOURCE, raw, [None] * len(raw), redacted.tolist())
        nbytes = int(ends[j - 1]) + 1 - s_at[i]
        out.append(Run(cluster, block, rejects, j - i, nbytes))
        i = j
    return out


@dataclass(slots=True)
class _Append:
    data: bytes
    events: int
    future: Future[None] = field(default_factory=Future)


@dataclass(slots=True)
class JournalStats:
    appends: int = 0
    fsyncs: int = 0
    events: int = 0
    bytes: int = 0


class Journal:
    """Appends (group-committed with fsync) and the position of what the store has taken."""

    def __init__(
        self,
        directory: Path,
        segment_bytes: int = 64 * 1024 * 1024,
        max_pending_bytes: int = 512 * 1024 * 1024,
    ) -> None:
        self.dir = directory
        prepare_dir(directory)
        self.segment_bytes = segment_bytes
        self.max_pending_bytes = max_pending_bytes
        self.stats = JournalStats()
        self._q: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._appended = threading.Condition(self._lock)
        self._pending = 0  # bytes appended and not yet stored
        self._closed = False
        segs = self.segments()
        self._number = int(segs[-1].stem) + 1 if segs else 1  # always a fresh segment
        self._file = self._open(self._number)
        self._size = 0
        self._written = (self._file_name(), 0)  # end of what is on disk
        self._thread = threading.Thread(target=self._run, name="kaudit-journal", daemon=True)
        self._thread.start()

    # --- writing -------------------------------------------------------------------------
    def segments(self) -> list[Path]:
        return sorted(self.dir.glob(f"*{_SUFFIX}"), key=lambda p: int(p.stem))

    def _file_name(self) -> str:
        return f"{self._number:010d}{_SUFFIX}"

    def _open(self, number: int) -> Any:
        f = open(self.dir / f"{number:010d}{_SUFFIX}", "ab")  # noqa: SIM115 - kept open
        _fsync_dir(self.dir)  # the new name itself must survive a crash
        return f

    def append(self, data: bytes, events: int) -> Future[None]:
        """Queue `data` (whole lines); the future resolves once it is on disk."""
        job = _Append(data, events)
        with self._lock:
            if self._closed:
                raise JournalFull("kaudit is shutting down")
            if self._pending and self._pending + len(data) > self.max_pending_bytes:
                raise JournalFull(
                    f"{self._pending / 1048576:.0f} MiB of events are waiting for the store"
                )
            self._pending += len(data)
        self._q.put(job)
        return job.future

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                break
            group = [item]
            stop = False
            while True:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                group.append(nxt)
            try:
                for job in group:
                    self._file.write(job.data)
                    self._size += len(job.data)
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as exc:
                err = StoreError(f"writing the journal failed: {exc}")
                for job in group:
                    job.future.set_exception(err)
                with self._lock:
                    self._pending -= sum(len(j.data) for j in group)
                continue
            self.stats.fsyncs += 1
            self.stats.appends += len(group)
            self.stats.events += sum(j.events for j in group)
            self.stats.bytes += sum(len(j.data) for j in group)
            for job in group:
                job.future.set_result(None)
            if self._size >= self.segment_bytes:
                self._file.close()
                self._number += 1
                self._file = self._open(self._number)
                self._size = 0
            with self._appended:
                self._written = (self._file_name(), self._size)
                self._appended.notify_all()
            if stop:
                break
        self._file.close()

    def stored(self, nbytes: int) -> None:
        """`nbytes` of journal lines are committed to the store."""
        with self._lock:
            self._pending = max(0, self._pending - nbytes)

    @property
    def pending_bytes(self) -> int:
        return self._pending

    def written(self) -> tuple[str, int]:
        """(segment, offset) just after the last line on disk: what has been acknowledged."""
        with self._lock:
            return self._written

    def wait(self, timeout: float) -> None:
        """Until something is appended (or `timeout`)."""
        with self._appended:
            self._appended.wait(timeout)

    def close(self) -> None:
        """Stop taking appends; what was queued is written first."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._q.put(_STOP)
        self._thread.join()
        with self._appended:
            self._appended.notify_all()


def prepare_dir(directory: Path) -> None:
    """Create the journal's directory, or say in one line why it cannot be used."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot use {directory} for the webhook journal: {exc.strerror}"
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StoreError(f"cannot use {directory} for the webhook journal: not writable")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- reading: the journal into the store ---------------------------------------------------
Submit = Callable[[Run, checkpoint.Checkpoint], "Future[Any]"]


@dataclass(slots=True)
class _Position:
    name: str = ""  # segment file name; "" before the first
    offset: int = 0
    line: int = 0


class JournalReader:
    """Reads the journal from the stored checkpoint and submits it, one cluster's run of lines
    per job, each job with the checkpoint just after its last line; up to `max_events` wait
    for the store at a time. A segment is deleted once a later one's lines are committed. A
    group the store refuses is read again from the last committed position after a pause."""

    def __init__(
        self,
        journal: Journal,
        submit: Submit,
        start: checkpoint.Checkpoint | None,
        max_events: int = 20_000,
        retry_s: float = 1.0,
    ) -> None:
        self.journal = journal
        self.submit = submit
        self.max_events = max_events
        self.retry_s = retry_s
        pos = _Position(start.name, start.offset, start.line) if start else _Position()
        self._read = pos  # what was submitted
        self._committed = _Position(pos.name, pos.offset, pos.line)
        self._stop = threading.Event()  # read to the end, then stop
        self._halt = threading.Event()  # stop now
        self._futures: list[tuple[Future[Any], _Position, int, int]] = []
        self._waiting = 0  # events submitted and not settled
        self.failures = 0
        self._clusters: dict[bytes, str] = {}  # the heads seen, parsed once
        self._thread = threading.Thread(target=self._run, name="kaudit-journal", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _segment(self) -> Path | None:
        """The segment to read: the position's, or the next one once it is read to the end."""
        segs = self.journal.segments()
        pos = self._read
        for i, seg in enumerate(segs):
            if pos.name and seg.name < pos.name:
                continue
            if seg.name != pos.name:
                self._read = _Position(seg.name)
                return seg
            if i + 1 < len(segs) and pos.offset >= seg.stat().st_size:
                self._read = _Position(segs[i + 1].name)  # the writer has moved on
                return segs[i + 1]
            return seg
        return None

    def _read_some(self) -> bool:
        """Submit the complete lines there are (up to the in-flight limit); False if none."""
        seg = self._segment()
        if seg is None:
            return False
        want = max(1, self.max_events - self._waiting)
        with open(seg, "rb") as f:
            f.seek(self._read.offset)
            data = f.read(want * 1536)
            while data and b"\n" not in data:  # one event larger than the read: read on
                more = f.read(1 << 20)
                if not more:
                    break
                data += more
        end = data.rfind(b"\n")
        if end < 0:
            later = [x for x in self.journal.segments() if x.name > seg.name]
            if data and later:
                # a line cut short by a crash while it was written: never fsynced, so never
                # acknowledged; the journal went on in a new segment
                log.warning("journal %s ends with %d bytes of a torn line", seg.name, len(data))
                self._read = _Position(later[0].name)
                return True
            return False
        for run in runs(data[: end + 1], self._clusters, want):
            pos = _Position(seg.name, self._read.offset + run.nbytes, self._read.line + run.lines)
            cp = checkpoint.Checkpoint(
                CHECKPOINT_KEY, 0, 0, 0, "", pos.name, pos.offset, pos.line, 0.0
            )
            fut = self.submit(run, cp)
            self._futures.append((fut, pos, run.nbytes, run.lines))
            self._waiting += run.lines
            self._read = pos
        return True

    def _settle(self, block: bool) -> None:
        # (the order of the updates matters to `caught_up`, read by other threads: a future
        # leaves the list only once its position is committed or the reading is rewound)
        while self._futures and (block or self._futures[0][0].done()):
            fut, pos, nbytes, n = self._futures[0]
            try:
                fut.result()
            except Exception as exc:
                self._failed(exc)
                return
            self._committed = pos
            self._futures.pop(0)
            self._waiting -= n
            self.journal.stored(nbytes)
            for old in self.journal.segments():
                if old.name < pos.name:
                    old.unlink(missing_ok=True)

    def _failed(self, exc: BaseException) -> None:
        """Wait out what is in flight, then read again from the last committed position."""
        self.failures += 1
        log.error("storing journal events failed, retrying: %s", exc)
        for fut, *_ in self._futures:
            with contextlib.suppress(Exception):  # the same failure; reported once
                fut.result()
        c = self._committed
        self._read = _Position(c.name, c.offset, c.line)
        self._futures.clear()
        self._waiting = 0
        self._stop.wait(self.retry_s)

    def _run(self) -> None:
        while not self._halt.is_set():
            self._settle(block=self._waiting >= self.max_events)
            try:
                if self._waiting < self.max_events and self._read_some():
                    continue
            except Exception as exc:  # the writer refused the job (full, closing)
                self._failed(exc)
                continue
            if self._stop.is_set() and not self._futures:
                break
            if self._futures:
                self._settle(block=True)
                continue
            self.journal.wait(0.05)

    def committed(self) -> tuple[str, int]:
        """(segment, offset) just after the last line the store has committed."""
        c = self._committed
        return c.name, c.offset

    def caught_up(self, timeout: float) -> bool:
        """Wait until the store has what was acknowledged when called (read-your-writes for
        the API), at most `timeout` seconds."""
        target = self.journal.written()

        def done() -> bool:
            if self.committed() >= target:
                return True
            # nothing in flight and read that far: everything read is committed
            r = self._read
            return not self._futures and (r.name, r.offset) >= target

        return wait_until(done, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Read to the end of the journal (or `timeout`: the rest waits in the journal for
        the next start), then stop."""
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("journal not read to the end at shutdown; the next start stores it")
            self._halt.set()
            self._thread.join(10)


def wait_until(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
