"""Bulk import: read inputs, decode them, append them to a store, count what happened."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pyarrow as pa

from kaudit.errors import UserError
from kaudit.event.batch import BlockStream, Reject
from kaudit.event.decode import DecodeOptions, Decoder, Input
from kaudit.store.base import AppendResult
from kaudit.store.duckdb import DuckDBStore

# Commit at least this often during a large import, so that an interrupted run keeps what it
# stored (re-running it stores the rest: appends are idempotent); streaming rules examine each
# commit while the next is stored. Not more often: each commit is one insert statement, which
# ends with DuckDB's work on one thread and leaves partial row groups to be merged, and a
# commit smaller than DuckDB's row groups (122,880 rows) goes through the WAL, where the rules
# scan it slowly. 1M events took 7.1 s of appends in statements of 50k, 6.0 s in 125k, 3.8 s
# in 250k. With the streaming rules following, `kaudit ingest` of 1M events took 7.3-7.6 s
# committing every 250,000, 6.3 s every 500,000, 6.0-6.5 s every 1M: the rules run a pass
# per commit, each planned anew, and storing keeps both cores busy anyway.
COMMIT_EVERY = 1_000_000
# An input's first statement holds at most this many of its events (see `_Parts.part`).
FIRST_PART = 250_000
# Decoded blocks (8 MiB of native NDJSON each) ready ahead of the store. Reading the keys
# first (a file read again), the store gathers 125,000 events before it starts, and decoding
# goes on meanwhile only as far as this allows: re-reading 1M events took 7.5 s with 4 blocks
# ahead, 5.5-6.6 s with 16, as before streaming.
READ_AHEAD = 16
# Inserting, DuckDB takes the blocks as they come, and a few ahead are enough. Each block
# ahead is a read buffer more, fresh memory the kernel zeroes on first touch: with 16 ahead,
# that was 0.3 s of CPU per 1M events (2 cores).
STREAM_AHEAD = 2


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


class ReadAhead(Generic[_T]):
    """`items`, produced by a thread of their own: decoding the next batch in Python overlaps
    with DuckDB storing this one (DuckDB releases the GIL while it works). At most `depth`
    items beyond the one the caller is working on exist at a time (a batch can be hundreds of
    MB); the caller may change `depth` as it goes. An exception in the producer is raised
    here, in order. `close` (or the end of a `with`) stops the producer."""

    def __init__(self, items: Iterator[_T], depth: int = 1) -> None:
        self._depth = depth
        self._queue: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue()
        self._turn = threading.Condition()
        self._out = 0  # items produced and not yet given back by the caller
        self._stop = False
        self._worker = threading.Thread(
            target=self._produce, args=(items,), name="kaudit-decode", daemon=True
        )
        self._worker.start()
        self._items = self._consume()

    @property
    def depth(self) -> int:
        return self._depth

    @depth.setter
    def depth(self, depth: int) -> None:
        with self._turn:
            self._depth = depth
            self._turn.notify()

    def _produce(self, items: Iterator[_T]) -> None:
        try:
            it = iter(items)
            while True:
                with self._turn:
                    while self._out > self._depth and not self._stop:
                        self._turn.wait()
                    if self._stop:
                        return
                    self._out += 1
                item = next(it, _DONE)
                self._queue.put((item, None))
                if item is _DONE:
                    return
                del item
        except BaseException as exc:  # handed to the consumer, which raises it
            self._queue.put((_DONE, exc))

    def _consume(self) -> Generator[_T, None, None]:
        try:
            while True:
                got, exc = self._queue.get()
                if got is _DONE:
                    if exc is not None:
                        raise exc
                    return
                yield got
                del got
                with self._turn:  # the caller is done with it
                    self._out -= 1
                    self._turn.notify()
        finally:
            self._halt()

    def _halt(self) -> None:
        with self._turn:
            self._stop = True
            self._turn.notify()

    def __iter__(self) -> Iterator[_T]:
        return self._items

    def __next__(self) -> _T:
        return next(self._items)

    def close(self) -> None:
        self._halt()
        self._items.close()
        self._worker.join()

    def __enter__(self) -> ReadAhead[_T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class _Piece:
    """A decoded block of input `index` with the rejects found before it; or, with `end`, the
    end of that input and the error that ended it, if any."""

    index: int
    block: pa.RecordBatch | None
    rejects: list[Reject]
    end: bool = False
    error: BaseException | None = None


def _decoded(decoder: Decoder, inputs: Sequence[Input]) -> Iterator[_Piece]:
    """Every input's blocks, one input after the other (for one thread to produce). An input's
    error is handed over in order, and the next input is read."""
    for index, inp in enumerate(inputs):
        try:
            for block, rejects in decoder.stream(inp):
                yield _Piece(index, block, rejects)
        except Exception as exc:  # judged by the caller, once the store is done with the part
            yield _Piece(index, None, [], end=True, error=exc)
        else:
            yield _Piece(index, None, [], end=True)


class _Parts:
    """The inputs' decoded blocks, handed to the store in parts (one `append` each) with the
    rejects found on the way.

    A part may hold several small inputs: each insert statement ends with about 0.45 s of
    DuckDB's work on one thread, so a directory of rotated 100 MB logs (100,000 events each)
    stored a file per statement took 6.8-7.1 s per 1M events; in shared statements 5.8-5.9 s,
    the same as the same events in one file (5.9-6.1 s in the same runs).

    The store pulls the blocks from DuckDB's threads: an input that cannot be read to the end
    (a user error) becomes an `unreadable` reject and the part goes on with the next input;
    any other error ends the part and is raised by the caller once the store is done.

    `first_is_new`: the store holds no event of the cluster, so the first input cannot be one
    read again, and its first part need not be short."""

    def __init__(
        self,
        pieces: Iterator[_Piece],
        inputs: Sequence[Input],
        progress: Progress | None,
        first_is_new: bool = False,
    ) -> None:
        self._pieces = pieces
        self._inputs = inputs
        self._progress = progress
        self._first_is_new = first_is_new
        self._index = -1  # the input being read
        self.rejects: list[Reject] = []
        self.error: BaseException | None = None
        self.done = False

    def part(self, size: int) -> Iterator[tuple[str, pa.RecordBatch]]:
        """The next (source, block) pairs: about `size` events. An input's first blocks in a
        part are at most `FIRST_PART` events (but with `first_is_new`), so that a file read
        again is found out there (mostly duplicates) and the store reads the keys first from
        then on."""
        count, limit = 0, size
        try:
            for piece in self._pieces:
                if piece.index != self._index:  # the next input
                    self._index = piece.index
                    if piece.index or not self._first_is_new:
                        limit = min(size, count + FIRST_PART)
                inp = self._inputs[piece.index]
                if piece.end:
                    if isinstance(piece.error, UserError):
                        # one unreadable input (unknown format, a CSV without a header, a
                        # gzip cut short): what was read of it is kept, the rest is reported
                        why = str(piece.error)
                        self.rejects.append(Reject(inp.name, None, "unreadable", why, ""))
                    elif piece.error is not None:
                        self.error = piece.error
                        break
                    continue
                self.rejects.extend(piece.rejects)
                rows = piece.block.num_rows if piece.block is not None else 0
                if self._progress is not None:
                    self._progress(inp, rows + len(piece.rejects))
                if piece.block is not None:
                    yield inp.name, piece.block
                count += rows
                if count >= limit:
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
    follows the committed rows); a commit holds about `commit_every` events (`COMMIT_EVERY`).

    Each part (of an input, or of several small ones) is one `append` whose blocks the store
    pulls while it inserts: the decoder works (on a thread of its own, through the inputs in
    turn) at most `STREAM_AHEAD` blocks ahead of DuckDB, or `READ_AHEAD` when the store
    gathers them (`DuckDBStore.gathers`)."""

    pending: int | None = None  # events appended in the open transaction (None: none is open)

    def commit() -> None:
        nonlocal pending
        store.commit()
        pending = None
        if after_commit is not None:
            after_commit()

    commit_every = commit_every or COMMIT_EVERY
    report = IngestReport(inputs=len(inputs))
    start = time.perf_counter()
    pieces = ReadAhead(_decoded(Decoder(options), inputs), depth=STREAM_AHEAD)
    # Each statement ends with a few tenths of a second of DuckDB's work on one thread: 1M
    # events into an empty store took 4.14 s in one statement, 4.30 s cut at 250,000 (the
    # medians of 5 runs each).
    first_is_new = not store.holds(options.cluster)
    parts = _Parts(pieces, inputs, progress, first_is_new)
    label = inputs[0].name if len(inputs) == 1 else f"{len(inputs)} inputs"
    try:
        while not parts.done:
            # A transaction holds at least `commit_every` events (but the last): a commit of
            # less than a row group goes through the WAL. A directory of rotated 100 MB files
            # (~85,000 events each) committed file by file took 10.5-13.8 s per 1M events,
            # against 4.5-6.4 s for the same events in one file.
            if pending is None:
                store.begin()
                pending = 0
            pieces.depth = READ_AHEAD if store.gathers else STREAM_AHEAD
            result = store.append(
                BlockStream(options.cluster, label, sourced=parts.part(commit_every))
            )
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
    except BaseException:
        store.rollback()
        raise
    finally:
        pieces.close()
    if pending is not None:
        commit()
    report.elapsed_s = time.perf_counter() - start
    return report
