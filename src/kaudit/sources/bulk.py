"""Bulk import: read inputs, decode them, append them to a store, count what happened."""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyarrow as pa

from kaudit.errors import UserError
from kaudit.event.batch import BlockStream, Reject
from kaudit.event.decode import DecodeOptions, Decoder, Input
from kaudit.store.base import AppendResult
from kaudit.store.duckdb import DuckDBStore

# Commit at least this often during a large import, so that an interrupted run keeps what it
# stored (re-running it stores the rest: appends are idempotent); streaming rules examine each
# commit while the next is stored. Not more often: a commit smaller than DuckDB's row groups
# (122,880 rows) goes through the WAL, uncompressed until a checkpoint, and the rules then scan
# it slowly: committing every 100,000 events made detection cost 30 % of the import instead of
# 14 % (1M events, 2 cores). Each commit is one insert statement, and each statement leaves
# partial row groups to be merged: 1M events took 7.1 s of appends in statements of 50k, 6.0 s
# in 125k, 3.8 s in 250k. With no rules to follow the commits, commit every 1M: a statement
# of 1M took 5.1-5.6 s for 1M events, four of 250k 5.3-5.7 s (the same session, 4 runs each).
COMMIT_EVERY = 250_000
COMMIT_EVERY_UNFOLLOWED = 1_000_000
# Decoded blocks (8 MiB of native NDJSON each) ready ahead of the store. Inserting, DuckDB
# takes them as they come; reading the keys first (a file read again), the store gathers
# 125,000 events before it starts, and decoding goes on meanwhile only as far as this allows:
# re-reading 1M events took 7.5 s with 4 blocks ahead, 5.5-6.6 s with 16, as before streaming.
READ_AHEAD = 16


@dataclass(slots=True)
class IngestReport:
    """The summary `kaudit ingest` prints."""

    inputs: int = 0
    totals: AppendResult = field(default_factory=AppendResult)
    elapsed_s: float = 0.0
    bytes_read: int = 0

    @property
    def read(self) -> int:
        return self.totals.received

    def as_dict(self) -> dict[str, object]:
        t = self.totals
        return {
            "inputs": self.inputs,
            "read": t.received,
            "stored": t.stored,
            "duplicates": t.duplicates,
            "rejected": t.rejected,
            "rejected_by_reason": dict(sorted(t.rejected_by_reason.items())),
            "seconds": round(self.elapsed_s, 3),
            "events_per_second": round(t.received / self.elapsed_s) if self.elapsed_s else None,
        }


Progress = Callable[[Input, int], None]
_T = TypeVar("_T")
_DONE = object()


def read_ahead(items: Iterator[_T], depth: int = 1) -> Generator[_T, None, None]:
    """`items`, produced by a thread of their own: decoding the next batch in Python overlaps
    with DuckDB storing this one (DuckDB releases the GIL while it works). At most `depth`
    items beyond the one the caller is working on exist at a time (a batch can be hundreds of
    MB). An exception in the producer is raised here, in order."""
    q: queue.Queue[Any] = queue.Queue()
    slots = threading.Semaphore(depth + 1)
    stop = threading.Event()

    def produce() -> None:
        try:
            it = iter(items)
            while True:
                while not slots.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                item = next(it, _DONE)
                q.put((item, None))
                if item is _DONE:
                    return
                del item
        except BaseException as exc:  # handed to the consumer, which raises it
            q.put((_DONE, exc))

    worker = threading.Thread(target=produce, name="kaudit-decode", daemon=True)
    worker.start()
    try:
        while True:
            got, exc = q.get()
            if got is _DONE:
                if exc is not None:
                    raise exc
                return
            yield got
            del got
            slots.release()  # the caller is done with it
    finally:
        stop.set()
        worker.join()


class _Parts:
    """One input's decoded blocks, handed to the store in parts (one `append`, one commit
    each), with the rejects found on the way. The store pulls the blocks from DuckDB's
    threads: an error while decoding is kept here, ending the part, and raised by the caller
    once the store is done with it."""

    def __init__(
        self,
        pieces: Iterator[tuple[pa.RecordBatch | None, list[Reject]]],
        tick: Callable[[int], None] | None,
    ) -> None:
        self._pieces = pieces
        self._tick = tick
        self.rejects: list[Reject] = []
        self.error: BaseException | None = None
        self.done = False

    def part(self, size: int) -> Iterator[pa.RecordBatch]:
        """The next blocks, about `size` events."""
        count = 0
        try:
            for block, rejects in self._pieces:
                self.rejects.extend(rejects)
                rows = block.num_rows if block is not None else 0
                if self._tick is not None:
                    self._tick(rows + len(rejects))
                if block is not None:
                    yield block
                count += rows
                if count >= size:
                    return
        except GeneratorExit:  # the store stopped reading (it failed): nothing to keep
            raise
        except BaseException as exc:  # raised by the caller, once the store has finished
            self.error = exc
        self.done = True

    def take_rejects(self) -> list[Reject]:
        out, self.rejects = self.rejects, []
        return out


def ingest(
    store: DuckDBStore,
    inputs: Sequence[Input],
    options: DecodeOptions,
    progress: Progress | None = None,
    after_commit: Callable[[], object] | None = None,
    commit_every: int | None = None,
) -> IngestReport:
    """Decode every input into the store. Malformed records are counted and kept as rejects;
    they never stop the run. `after_commit` is called after each commit (streaming detection
    follows the committed rows; without it, commits are rarer: `COMMIT_EVERY_UNFOLLOWED`).

    Each part of an input is one `append` whose blocks the store pulls while it inserts: the
    decoder works (on its own thread) at most `READ_AHEAD` blocks ahead of DuckDB."""

    pending: int | None = None  # events appended in the open transaction (None: none is open)

    def commit() -> None:
        nonlocal pending
        store.commit()
        pending = None
        if after_commit is not None:
            after_commit()

    if commit_every is None:
        commit_every = COMMIT_EVERY if after_commit is not None else COMMIT_EVERY_UNFOLLOWED
    report = IngestReport(inputs=len(inputs))
    decoder = Decoder(options)
    start = time.perf_counter()
    for inp in inputs:
        tick = functools.partial(progress, inp) if progress is not None else None
        pieces = read_ahead(decoder.stream(inp), depth=READ_AHEAD)
        parts = _Parts(pieces, tick)
        # An input's first part is no larger than a followed one: a file read again is found
        # out there (all duplicates), and the store reads the keys first from then on.
        size = min(commit_every, COMMIT_EVERY)
        try:
            while not parts.done:
                # One transaction spans inputs until it holds `commit_every` events: a commit
                # of less than a row group goes through the WAL. A directory of rotated 100 MB
                # files (~85,000 events each) committed file by file took 10.5-13.8 s per 1M
                # events, against 4.5-6.4 s for the same events in one file.
                if pending is None:
                    store.begin()
                    pending = 0
                result = store.append(BlockStream(options.cluster, inp.name, parts.part(size)))
                size = commit_every
                pending += result.received
                rejects = parts.take_rejects()
                if rejects:
                    store.add_rejects(options.cluster, rejects)
                    result.received += len(rejects)
                    result.rejected += len(rejects)
                    for r in rejects:
                        result.rejected_by_reason[r.reason] = (
                            result.rejected_by_reason.get(r.reason, 0) + 1
                        )
                report.totals.add(result)
                if parts.error is not None:
                    raise parts.error
                if pending >= commit_every:
                    commit()
        except UserError as exc:
            # One unreadable input (unknown format, a CSV without header) is reported and kept
            # as a reject; the other inputs are still read.
            commit()
            store.add_rejects(options.cluster, [Reject(inp.name, None, "unreadable", str(exc), "")])
            report.totals.add(
                AppendResult(received=1, rejected=1, rejected_by_reason={"unreadable": 1})
            )
        except BaseException:
            store.rollback()
            raise
        finally:
            pieces.close()
    if pending is not None:
        commit()
    report.elapsed_s = time.perf_counter() - start
    return report
