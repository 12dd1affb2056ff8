"""Read every input format users have into event texts ready for the store.

An input is read in one of three *containers* — lines (NDJSON, legacy text, CSV) or one JSON
document (an EventList, a JSON array, a CloudWatch or Azure export) — and each record in it has a
*shape*: a native event (`v1`, also v1beta1/v1alpha1 and Falco's apiVersion-less events), a
webhook `EventList`, an EKS CloudWatch record, an AKS diagnostic record or a GKE Cloud Logging
entry. `auto` sniffs both from the first record; `--format` forces them.

Native NDJSON lines — the bulk of real data — are passed to the store as they are (the store
parses them in one vectorised pass); only lines that may hold a Secret are parsed here, to be
redacted. Other shapes are unwrapped record by record, so one bad record is rejected and the
rest of the input is kept.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import itertools
import re
import sys
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pyarrow as pa

from kaudit.errors import DecodeError, InputError
from kaudit.event.batch import BATCH_SCHEMA, REJECT_RAW_LIMIT, RawBatch, Reject, utf8_only
from kaudit.event.formats._common import as_event
from kaudit.event.formats.aks import aks_record_to_event, aks_records
from kaudit.event.formats.detect import sniff
from kaudit.event.formats.eks import eks_record_to_event, eks_records, parse_eks_export_line
from kaudit.event.formats.gke import gke_to_v1
from kaudit.event.formats.legacy import parse_legacy_line
from kaudit.event.model import AuditEvent
from kaudit.event.redact import SECRET_MARKS, may_hold_secret, redact_event

FORMATS = ("auto", "ndjson", "json", "v1", "eventlist", "legacy", "eks", "aks", "gke", "csv")
DEFAULT_MAX_EVENT_SIZE = 8 * 1024 * 1024
DEFAULT_BATCH = 50_000  # events per batch unless told
_BLOCK = 8 * 1024 * 1024
_STREAM_ROWS = 8192  # events of other formats per record batch of `Decoder.stream`
_GZIP_BLOCK = 64 * 1024
_SNIFF_LINES = 64  # lines looked at to detect an input's format


# --- inputs ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Input:
    """One file (or standard input) to read."""

    name: str
    path: Path | None  # None for standard input

    def open(self) -> IO[bytes]:
        """The input's bytes, gunzipped when it is gzip (by content, not by name)."""
        if self.path is None:
            raw: IO[bytes] = sys.stdin.buffer
        else:
            try:
                raw = self.path.open("rb")
            except OSError as exc:
                raise InputError(f"cannot open {self.name}: {exc.strerror or exc}") from exc
        head = raw.peek(2)[:2] if isinstance(raw, io.BufferedReader) else b""
        if head == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
        return raw


def expand_inputs(paths: Sequence[str]) -> list[Input]:
    """Files, directories (every file below, sorted; hidden ones skipped) and `-` for stdin."""
    inputs: list[Input] = []
    for p in paths:
        if p == "-":
            inputs.append(Input("<stdin>", None))
            continue
        path = Path(p)
        if path.is_dir():
            found = sorted(
                f
                for f in path.rglob("*")
                if f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(path).parts)
            )
            inputs.extend(Input(str(f), f) for f in found)
        elif path.exists():
            inputs.append(Input(str(path), path))
        else:
            raise InputError(f"no such file or directory: {p}")
    return inputs


# --- lines -----------------------------------------------------------------------------------
@dataclass(slots=True)
class RawBlock:
    """Complete lines joined by newlines (`buf`, bytes as read, never copied on the native
    path), and the number of the first. `lines` (how many) is filled in by whoever counts them
    first: the reader needs it to number the next block, and the native path counts them
    anyway."""

    start: int
    buf: np.ndarray[Any, np.dtype[np.uint8]]
    lines: int | None = None

    @property
    def data(self) -> bytes:
        """The block as `bytes` (a copy), for the paths that look at it line by line."""
        return self.buf.tobytes()

    def count(self) -> int:
        if self.lines is None:
            self.lines = len(_newlines(self.buf)) + 1
        return self.lines


def _last_newline(buf: np.ndarray[Any, np.dtype[np.uint8]], end: int) -> int:
    """Where the last newline before `end` is, or -1; lines are short next to a block, so
    only the end of it is usually looked at."""
    lo = end
    while lo > 0:
        lo = max(0, lo - 65536)
        found = bytes(buf[lo:end]).rfind(b"\n")
        if found >= 0:
            return lo + found
        end = lo
    return -1


class Buffers:
    """Read buffers, used again once nothing refers to them any more.

    A block's lines go to the store as string views into the buffer it was read into, so a
    buffer is free again when the store has let go of every view: then only this pool holds
    it (CPython's reference count says so, compared with that of a buffer nobody else holds,
    counted the same way). A fresh buffer is fresh memory, which the kernel zeroes on first
    touch: on a VM that took 1.5 s of CPU in an ingest of 1M events (1.2 GB), more than
    reading the file did. At most `keep` buffers are kept.
    """

    def __init__(self, keep: int = 64) -> None:
        self._keep = keep
        self._pool: list[np.ndarray[Any, np.dtype[np.uint8]]] = []
        self._idle = _refs([np.empty(0, np.uint8)], 0)

    def take(self, size: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
        for i in range(len(self._pool)):
            if len(self._pool[i]) == size and _refs(self._pool, i) == self._idle:
                return self._pool[i]
        buf = np.empty(size, np.uint8)
        if len(self._pool) < self._keep:
            self._pool.append(buf)
        return buf


def _refs(items: list[Any], i: int) -> int:
    """References to `items[i]`; `Buffers` compares two such counts, never a constant (how
    many a call itself adds differs between Python versions)."""
    return sys.getrefcount(items[i])


def _read_raw_blocks(
    stream: IO[bytes], name: str, rejects: list[Reject], buffers: Buffers | None = None
) -> Iterator[RawBlock]:
    """Blocks of complete lines of about `_BLOCK` bytes (less at the end, more when one line
    is longer), each read straight into a buffer (from `buffers`), which the block then keeps.

    A gzip stream cut short ends the input with a `truncated_gzip` reject; the lines read
    before the cut are kept. A last line without a newline is read as a line.
    """
    lineno = 0  # lines yielded so far
    # A gzip stream cut short raises on the read that reaches the cut, losing what that read
    # had inflated: read it in small steps so that only the incomplete end is lost.
    step = _GZIP_BLOCK if isinstance(stream, gzip.GzipFile) else _BLOCK
    new = (buffers or Buffers()).take
    buf = new(_BLOCK)  # (a block keeps its buffer: no room to spare in it)
    filled = 0
    readinto: Callable[[memoryview], int | None] = stream.readinto  # type: ignore[attr-defined]
    while True:
        if filled == len(buf):  # a line longer than the buffer: make room
            bigger = np.empty(2 * len(buf), np.uint8)
            bigger[:filled] = buf
            buf = bigger
        try:
            got = readinto(buf.data[filled : filled + step])
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            end = _last_newline(buf, filled)
            if end >= 0:
                blk = RawBlock(lineno + 1, buf[:end])
                yield blk
                lineno += blk.count()
            message = f"compressed input ends early: {exc}"
            rejects.append(Reject(name, lineno + 1, "truncated_gzip", message, ""))
            return  # the partial line before the cut is not an event
        filled += got or 0
        if got and filled < len(buf):
            continue
        if not got and not filled:
            return
        # at the end of the input, the last line may lack its newline
        end = _last_newline(buf, filled) if got else filled - int(buf[filled - 1] == 10)
        if end == -1:  # no line ends yet: a very long line
            continue
        rest = buf[end + 1 : filled] if got else buf[:0]
        blk = RawBlock(lineno + 1, buf[:end])
        buf = new(_BLOCK) if 2 * len(rest) <= _BLOCK else np.empty(2 * len(rest), np.uint8)
        buf[: len(rest)] = rest
        filled = len(rest)
        yield blk
        lineno += blk.count()
        if not got:
            return


def _lines_of(blocks: Iterable[RawBlock]) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for every non-blank line of the blocks."""
    for blk in blocks:
        parts = blk.data.split(b"\n")
        blk.lines = len(parts)
        for i, part in enumerate(parts):
            if part.strip():
                yield blk.start + i, part.rstrip(b"\r")


def _head_lines(start: int, data: bytes, count: int) -> list[tuple[int, bytes]]:
    """The first `count` non-blank lines of a block, without splitting all of it."""
    out: list[tuple[int, bytes]] = []
    pos, n = 0, start
    while len(out) < count and pos <= len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end == -1 else end
        part = data[pos:end]
        if part.strip():
            out.append((n, part.rstrip(b"\r")))
        pos, n = end + 1, n + 1
    return out


_BODIES = (b'"requestObject"', b'"responseObject"')
_BODY_A, _BODY_B = _BODIES
_BLANK_BYTES = np.frombuffer(b" \t\r\x0b\x0c", np.uint8)
_scratch = threading.local()


def _newlines(a: np.ndarray[Any, np.dtype[np.uint8]]) -> np.ndarray[Any, np.dtype[np.intp]]:
    """Where the newlines of a block are. The comparison goes to a buffer kept by the thread:
    a fresh one per block is fresh memory the kernel zeroes first, which took more CPU than
    the comparison (0.75 s of 1M events' ingest, 2 cores)."""
    mask: np.ndarray[Any, np.dtype[np.bool_]] | None = getattr(_scratch, "mask", None)
    if mask is None or len(mask) < len(a):
        mask = _scratch.mask = np.empty(max(len(a), _BLOCK), dtype=bool)
    np.equal(a, 10, out=mask[: len(a)])
    return np.flatnonzero(mask[: len(a)])


@dataclass(slots=True)
class _Lines:
    """The non-blank lines of a block, found with a few vectorised passes (no Python object per
    line): where each starts in the block, its length and its line number, and whether it
    holds one of the `SECRET_MARKS`."""

    starts: np.ndarray[Any, np.dtype[np.int64]]
    lengths: np.ndarray[Any, np.dtype[np.int64]]
    numbers: np.ndarray[Any, np.dtype[np.int64]]
    marked: np.ndarray[Any, np.dtype[np.bool_]]


# `may_hold_secret` for a whole block at once. Each mark is 7 bytes or more, so wherever it
# lies it holds a 4-byte word aligned in the block at one of its first four offsets: the block
# is searched for those words as 32-bit integers, a few vectorised passes (with ASCII case
# folded, `"Sec` and `"sec` are one word), and each word found is checked against the marks
# where it would begin. 0.31 s per 1M events (1.2 GB); RE2 over the lines took 0.76 s, the
# largest part of decoding.
_FOLD = 0x20202020  # sets bit 5 of each byte: A-Z to a-z, and leaves '"' alone


def _folded_word(data: bytes) -> int:
    return int.from_bytes(data, "little") | _FOLD


_MARK_LEN = max(len(m) for m in SECRET_MARKS)
assert min(len(m) for m in SECRET_MARKS) >= 7, "a shorter mark may hold no aligned word"
# The folded words at each offset (0-3) of the marks: one found is where a mark may begin that
# many bytes earlier.
_MARK_WORDS = [
    np.array(sorted({_folded_word(m[o : o + 4]) for m in SECRET_MARKS}), np.uint32)
    for o in range(4)
]
_ALL_WORDS = sorted({int(w) for words in _MARK_WORDS for w in words})
_MARK_ARRAYS = [np.frombuffer(m, np.uint8) for m in SECRET_MARKS]


def _scratch_words(n: int) -> tuple[np.ndarray[Any, Any], ...]:
    """Three buffers of `n` (folded words, found, one word's matches), kept by the thread."""
    kept: tuple[np.ndarray[Any, Any], ...] | None = getattr(_scratch, "words", None)
    if kept is None or len(kept[0]) < n:
        size = max(n, _BLOCK // 4)
        kept = _scratch.words = (
            np.empty(size, np.uint32),
            np.empty(size, bool),
            np.empty(size, bool),
        )
    return tuple(k[:n] for k in kept)


def _mark_positions(a: np.ndarray[Any, np.dtype[np.uint8]]) -> np.ndarray[Any, Any]:
    """Where some `SECRET_MARKS` begins in the block (a position may be given twice)."""
    size = len(a)
    # (any grid of 4-byte words would do; one of aligned words reads 40 % faster)
    skip = -a.ctypes.data % 4
    n = max(0, (size - skip) // 4)
    found: list[np.ndarray[Any, Any]] = []
    if n:
        folded, hit, match = _scratch_words(n)
        np.bitwise_or(a[skip : skip + 4 * n].view(np.uint32), _FOLD, out=folded)
        np.equal(folded, _ALL_WORDS[0], out=hit)
        for word in _ALL_WORDS[1:]:
            np.logical_or(hit, np.equal(folded, word, out=match), out=hit)
        at = np.flatnonzero(hit)
        for offset, words in enumerate(_MARK_WORDS):
            begin = skip + 4 * at[np.isin(folded[at], words)] - offset
            begin = begin[(begin >= 0) & (begin + _MARK_LEN <= size)]  # the rest: the ends
            if len(begin):
                seen = a[begin[:, None] + np.arange(_MARK_LEN)]
                ok = np.zeros(len(begin), bool)
                for want in _MARK_ARRAYS:
                    ok |= (seen[:, : len(want)] == want).all(axis=1)
                found.append(begin[ok])
    # A mark the words cannot show (before the first aligned word, or running into the last
    # bytes) lies within the first or last few bytes: those are searched as bytes.
    for lo, end in ((0, min(size, _MARK_LEN + 3)), (max(0, size - _MARK_LEN - 3), size)):
        edge = a[lo:end].tobytes()
        for mark in SECRET_MARKS:
            i = edge.find(mark)
            while i >= 0:
                found.append(np.array([lo + i]))
                i = edge.find(mark, i + 1)
    return np.concatenate(found) if found else np.empty(0, np.intp)


def _cut_lines(blk: RawBlock, limit: int) -> _Lines | None:
    """The block's lines, or None when one needs a look of its own: longer than `limit`, not
    UTF-8, or starting with white space (it may be blank)."""
    a = blk.buf
    if not len(a) or len(a) >= 2**31:
        return None
    nl = _newlines(a)
    blk.lines = len(nl) + 1
    starts = np.concatenate(([0], nl + 1))
    ends = np.append(nl, len(a))
    cr = (ends > starts) & (a[ends - 1] == 13)  # CRLF line ends
    lengths = ends - cr - starts
    if lengths.max() > limit:
        return None
    full = lengths > 0
    if np.isin(a[starts[full]], _BLANK_BYTES).any():
        return None
    # Every line with its line end, back to back: the block itself as an Arrow array, to check
    # UTF-8 (a newline never splits a character) and search it without copying it.
    spans = pa.StringArray.from_buffers(
        len(starts), pa.py_buffer(np.append(starts, len(a)).astype(np.int32)), pa.py_buffer(a)
    )
    try:
        spans.validate(full=True)
    except pa.ArrowInvalid:
        return None
    marked = np.zeros(len(starts), bool)
    marked[np.searchsorted(starts, _mark_positions(a), side="right") - 1] = True
    return _Lines(starts[full], lengths[full], blk.start + np.flatnonzero(full), marked[full])


def string_views(
    buf: np.ndarray[Any, np.dtype[np.uint8]],
    starts: np.ndarray[Any, np.dtype[np.int64]],
    lengths: np.ndarray[Any, np.dtype[np.int64]],
    index: int,
) -> np.ndarray[Any, np.dtype[np.int32]]:
    """Arrow string-view headers (16 bytes each) for the slices of data buffer `index` (`buf`):
    a string is read where it lies in the block, never copied. Per the Arrow format, a header
    holds the length, then up to 12 bytes inline, or a 4-byte prefix, the buffer and offset."""
    views = np.zeros((len(starts), 4), dtype=np.int32)
    views[:, 0] = lengths
    header = views.view(np.uint8)
    long = lengths > 12
    if long.any():
        # the 4 bytes at each start, read as one word each from a view whose words overlap
        words = np.ndarray((max(0, len(buf) - 3),), np.int32, buf, strides=(1,))
        views[long, 1] = words[starts[long]]
        views[long, 2] = index
        views[long, 3] = starts[long]
    short = ~long
    if short.any():
        pos = np.arange(12)
        inside = pos < lengths[short, None]
        header[short, 4:16] = np.where(
            inside, buf[np.where(inside, starts[short, None] + pos, 0)], 0
        )
    return views


def _line_texts(
    buf: np.ndarray[Any, np.dtype[np.uint8]], cut: _Lines, changed: list[tuple[int, bytes]]
) -> pa.Array:
    """The lines as one Arrow string-view array over the block; the `changed` lines (by index)
    read their new text from a second buffer."""
    views = string_views(buf, cut.starts, cut.lengths, 0)
    buffers = [None, pa.py_buffer(views), pa.py_buffer(buf)]
    if changed:
        extra = b"".join(new for _, new in changed)
        sizes = np.array([len(new) for _, new in changed], dtype=np.int64)
        at = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        rows = np.array([i for i, _ in changed], dtype=np.int64)
        views[rows] = string_views(np.frombuffer(extra, np.uint8), at, sizes, 1)
        buffers.append(pa.py_buffer(extra))
    return pa.Array.from_buffers(pa.string_view(), len(views), buffers)


def _redacted_text(line: bytes) -> bytes | None:
    """The line with its Secret values replaced (`redact_event`), or None when it is unchanged
    or not a JSON object (the store then rejects it with its reason)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, Mapping):
        return None
    new, flagged = redact_event(obj)
    return orjson.dumps(new) if flagged else None


# --- shapes ----------------------------------------------------------------------------------
def _native_records(obj: Any) -> list[Any]:
    return list(obj) if isinstance(obj, list) else [obj]


def _native_event(obj: Any) -> Any:
    # The store decides what a storable event is (auditID, stage, a timestamp); an object
    # that is not event-shaped at all is refused here with a clearer reason.
    if isinstance(obj, Mapping):
        return obj
    raise DecodeError("not_an_object", f"expected a JSON object, got {type(obj).__name__}")


def _eventlist_records(obj: Any) -> list[Any]:
    if isinstance(obj, list):
        return [item for o in obj for item in _eventlist_records(o)]
    if not isinstance(obj, Mapping) or not isinstance(obj.get("items"), list):
        raise DecodeError("bad_eventlist", "expected an EventList with an items array")
    return list(obj["items"])


def _gke_records(obj: Any) -> list[Any]:
    if isinstance(obj, list):
        return list(obj)
    if isinstance(obj, Mapping) and isinstance(obj.get("entries"), list):
        return list(obj["entries"])  # `entries.list` API response
    return [obj]


def _eks_split(obj: Any) -> list[Any]:
    if isinstance(obj, list):
        return [r for o in obj for r in eks_records(o)]
    return eks_records(obj)


def _aks_split(obj: Any) -> list[Any]:
    if isinstance(obj, list):
        return [r for o in obj for r in aks_records(o)]
    return aks_records(obj)


def _gke_event(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise DecodeError("bad_gke_entry", f"expected an object, got {type(entry).__name__}")
    return gke_to_v1(entry)


@dataclass(frozen=True, slots=True)
class Shape:
    """How to split a parsed JSON value into records, and turn one record into an event."""

    split: Callable[[Any], list[Any]]
    to_event: Callable[[Any], Any]


SHAPES: dict[str, Shape] = {
    "v1": Shape(_native_records, _native_event),
    "eventlist": Shape(_eventlist_records, lambda o: _native_event(o)),
    "eks": Shape(_eks_split, eks_record_to_event),
    "aks": Shape(_aks_split, aks_record_to_event),
    "gke": Shape(_gke_records, _gke_event),
}


# --- CSV -------------------------------------------------------------------------------------
# Column orders of header-less CSV exports. `perfspec` is the Logstash flattening of the public
# PerfSPEC dataset (`:json` marks a cell holding JSON).
CSV_PRESETS: dict[str, tuple[str, ...]] = {
    "perfspec": (
        "host:json",
        "requestReceivedTimestamp",
        "user.username",
        "verb",
        "objectRef.resource",
        "objectRef.subresource",
        "objectRef.name",
        "responseObject.metadata.name",
        "requestURI",
        "auditID",
        "stage",
        "responseStatus.code",
        "responseObject.metadata.uid",
        "responseObject.metadata.ownerReferences[0].uid",
        "responseObject.details.uid",
    )
}
_INT_FIELDS = frozenset({"responseStatus.code"})
_INDEX_RE = re.compile(r"^(.*)\[(\d+)\]$")


def _set_path(event: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b[0].c` in nested dicts/lists."""
    node: Any = event
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        m = _INDEX_RE.match(part)
        key, index = (m.group(1), int(m.group(2))) if m else (part, None)
        if index is None:
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
            continue
        lst = node.setdefault(key, [])
        while len(lst) <= index:
            lst.append({})
        if last:
            lst[index] = value
        else:
            node = lst[index]


def csv_row_to_event(columns: Sequence[str], row: Sequence[str]) -> dict[str, Any]:
    """One flattened CSV row to a nested event; empty cells are absent fields."""
    if len(row) != len(columns):
        raise DecodeError("bad_csv_row", f"expected {len(columns)} cells, got {len(row)}")
    event: dict[str, Any] = {}
    for col, cell in zip(columns, row, strict=True):
        if cell == "":
            continue
        name, _, kind = col.partition(":")
        value: Any = cell
        if kind == "json":
            try:
                value = orjson.loads(cell)
            except orjson.JSONDecodeError as exc:
                raise DecodeError("bad_csv_row", f"column {name}: not valid JSON: {exc}") from None
        elif name in _INT_FIELDS:
            try:
                value = int(cell)
            except ValueError:
                raise DecodeError(
                    "bad_csv_row", f"column {name}: expected an integer, got {cell!r}"
                ) from None
        _set_path(event, name, value)
    return event


# --- the reader ------------------------------------------------------------------------------
@dataclass(slots=True)
class DecodeOptions:
    cluster: str = "default"
    format: str = "auto"
    redact: bool = True
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    # Events per batch of `Decoder.batches` (None: `DEFAULT_BATCH`); `kaudit ingest` streams
    # blocks instead (`Decoder.stream`).
    batch_size: int | None = None
    # ... and no more text than this in one batch, whatever the events' size (memory)
    batch_bytes: int = 384 * 1024 * 1024
    csv_columns: tuple[str, ...] | None = None


class Decoder:
    """Turns one input into `RawBatch`es and the rejects found on the way."""

    def __init__(self, options: DecodeOptions) -> None:
        if options.format not in FORMATS:
            raise InputError(f"unknown format {options.format!r}; one of {', '.join(FORMATS)}")
        self.options = options
        self._buffers = Buffers()

    def batches(self, inp: Input) -> Iterator[tuple[RawBatch, list[Reject]]]:
        """Batches of about `batch_size` events or `batch_bytes` of text (a block of lines is
        not split); every batch comes with the rejects found while reading it."""
        rejects: list[Reject] = []
        batch = self._new_batch(inp)
        size = 0
        limit = self.options.batch_size or DEFAULT_BATCH
        for item in self._records(inp, rejects):
            if item is None:
                continue
            if isinstance(item, pa.RecordBatch):
                batch.add_block(item)
                size += item.get_total_buffer_size()
            else:
                line, text, redacted = item
                batch.add(text, line, redacted)
                size += len(text)
            if len(batch) >= limit or size >= self.options.batch_bytes:
                yield batch, rejects
                batch, rejects, size = self._new_batch(inp), [], 0
        yield batch, rejects

    def stream(self, inp: Input) -> Iterator[tuple[pa.RecordBatch | None, list[Reject]]]:
        """The input as record batches of `BATCH_SCHEMA`, for a store that reads them as they
        come (`BlockStream`): native NDJSON a block read at a time, other formats
        `_STREAM_ROWS` events at a time. Each comes with the rejects found since the one
        before; the last is (None, rejects) when some were found after it."""
        rejects: list[Reject] = []
        pending: tuple[list[str | bytes], list[int | None], list[bool]] = ([], [], [])

        def flush() -> pa.RecordBatch:
            kept, bad = utf8_only(inp.name, *pending)
            rejects.extend(bad)
            for part in pending:
                part.clear()
            return kept

        def found() -> list[Reject]:
            out = rejects.copy()
            rejects.clear()  # (the same list `_records` adds to)
            return out

        for item in self._records(inp, rejects):
            if item is None:
                continue
            if isinstance(item, pa.RecordBatch):
                if pending[0]:
                    yield flush(), found()
                yield item, found()
                continue
            line, text, redacted = item
            pending[0].append(text)
            pending[1].append(line)
            pending[2].append(redacted)
            if len(pending[0]) >= _STREAM_ROWS:
                yield flush(), found()
        if pending[0]:
            yield flush(), found()
        if rejects:
            yield None, found()

    def _new_batch(self, inp: Input) -> RawBatch:
        return RawBatch(cluster=self.options.cluster, source=inp.name)

    # Each record is (line, event text, redacted), a record batch of many, or None when
    # rejected.
    def _records(
        self, inp: Input, rejects: list[Reject]
    ) -> Iterator[tuple[int | None, str, bool] | pa.RecordBatch | None]:
        stream = inp.open()
        try:
            fmt = self.options.format
            blocks = _read_raw_blocks(stream, inp.name, rejects, self._buffers)
            read: list[RawBlock] = []
            head: list[tuple[int, bytes]] = []
            for blk in blocks:
                read.append(blk)
                head.extend(_head_lines(blk.start, blk.data, _SNIFF_LINES - len(head)))
                if len(head) >= _SNIFF_LINES:
                    break
            if not head:
                if not rejects:
                    rejects.append(
                        Reject(inp.name, None, "empty_input", "the input holds no data", "")
                    )
                return
            container, shape = self._detect_head(inp, fmt, head)
            all_blocks = itertools.chain(read, blocks)
            if container == "lines" and shape == "v1":
                yield from self._native_blocks(inp, all_blocks, rejects)
                return
            lines = _lines_of(all_blocks)
            if container == "document":
                yield from self._document(inp, lines, shape, rejects)
            elif container == "legacy":
                yield from self._per_line(inp, lines, rejects, parse_legacy_line)
            elif container == "csv":
                yield from self._csv(inp, lines, rejects)
            elif container == "eks-export":
                yield from self._per_line(inp, lines, rejects, parse_eks_export_line)
            else:
                yield from self._shaped_lines(inp, lines, SHAPES[shape], rejects)
        finally:
            if inp.path is not None:
                stream.close()

    def _detect_head(self, inp: Input, fmt: str, head: list[tuple[int, bytes]]) -> tuple[str, str]:
        """Detect from the first line that tells; a malformed first line must not make the
        whole input unreadable."""
        error: InputError | None = None
        for _, line in head:
            try:
                return self._detect(inp, fmt, line)
            except InputError as exc:
                error = error or exc
        if head[0][1].lstrip()[:1] == b"{":
            return "lines", "v1"  # every line is refused by the store with its own reason
        assert error is not None
        raise error

    def _detect(self, inp: Input, fmt: str, first: bytes) -> tuple[str, str]:
        """(container, shape) of an input from its format option and first line."""
        text = first.lstrip().lstrip(b"\xef\xbb\xbf")
        if fmt == "legacy":
            return "legacy", "v1"
        if fmt == "csv" or (fmt == "auto" and inp.name.endswith((".csv", ".csv.gz"))):
            return "csv", "v1"
        if fmt == "json":
            return "document", "auto"
        if fmt == "ndjson":
            return "lines", "v1"
        complete: Any = None
        try:
            complete = orjson.loads(text)
        except orjson.JSONDecodeError:
            complete = None
        if fmt in SHAPES:
            if complete is None and text[:1] in (b"{", b"["):
                return "document", fmt
            if fmt == "eks" and complete is None:
                return "eks-export", "eks"
            return "lines", fmt
        # auto
        if text[:1] == b"[" or (text[:1] == b"{" and complete is None):
            return "document", "auto"
        try:
            shape = sniff(complete if complete is not None else text)
        except DecodeError as exc:
            raise InputError(
                f"{inp.name}:1: cannot tell the format ({exc.message}); "
                f"name it with --format ({', '.join(FORMATS[1:])})"
            ) from None
        if shape == "legacy":
            return "legacy", "v1"
        if shape == "eks" and complete is None:
            return "eks-export", "eks"
        return "lines", shape

    def _finish(
        self, event: Any, name: str, line: int | None, rejects: list[Reject]
    ) -> tuple[int | None, str, bool] | None:
        """Redact and serialise one decoded event object."""
        redacted = False
        if self.options.redact and isinstance(event, Mapping):
            event, redacted = redact_event(event)
        text = orjson.dumps(event).decode()
        if len(text) > self.options.max_event_size:
            rejects.append(self._too_large(name, line, text))
            return None
        return line, text, redacted

    def _too_large(self, name: str, line: int | None, text: str | bytes) -> Reject:
        size = len(text)
        limit = self.options.max_event_size
        raw = text if isinstance(text, str) else text.decode("utf-8", "replace")
        return Reject(
            name,
            line,
            "too_large",
            f"event is {size / 1048576:.1f} MiB, above the limit of {limit / 1048576:.1f} MiB "
            "(raise it with --max-event-size to store it)",
            raw[:REJECT_RAW_LIMIT],
        )

    def _native_blocks(
        self, inp: Input, blocks: Iterator[RawBlock], rejects: list[Reject]
    ) -> Iterator[pa.RecordBatch]:
        """Native NDJSON, a block of lines at a time. The lines go to the store as they are (it
        parses them), cut from the block into one Arrow array without a Python object per line;
        only possibly-Secret lines are parsed here, to be redacted. A block with an oversize,
        blank-looking or non-UTF-8 line is read line by line."""
        for blk in blocks:
            cut = _cut_lines(blk, self.options.max_event_size)
            if cut is None:
                yield self._native_lines(inp, blk, rejects)
                continue
            flags = np.zeros(len(cut.starts), dtype=bool)
            changed: list[tuple[int, bytes]] = []
            if self.options.redact:
                for i in np.flatnonzero(cut.marked):
                    begin = int(cut.starts[i])
                    line = blk.buf[begin : begin + int(cut.lengths[i])].tobytes()
                    # Metadata-level events carry no body, so nothing to redact
                    body = _BODY_A in line or _BODY_B in line  # (no generator: 3x as fast)
                    new = _redacted_text(line) if body else None
                    if new is not None:
                        changed.append((int(i), new))
                        flags[i] = True
            yield pa.record_batch(
                [pa.array(cut.numbers), _line_texts(blk.buf, cut, changed), pa.array(flags)],
                schema=BATCH_SCHEMA,
            )

    def _native_lines(self, inp: Input, blk: RawBlock, rejects: list[Reject]) -> pa.RecordBatch:
        """One block of native NDJSON, line by line: blank lines skipped, oversize and
        non-UTF-8 ones rejected, the rest redacted and kept."""
        limit = self.options.max_event_size
        numbers: list[int | None] = []
        texts: list[str | bytes] = []
        flags: list[bool] = []
        parts = blk.data.split(b"\n")
        blk.lines = len(parts)
        for n, part in enumerate(parts, blk.start):
            part = part.rstrip(b"\r")
            if len(part) > limit:
                rejects.append(self._too_large(inp.name, n, part))
                continue
            if not part.strip():
                continue
            flag = False
            if self.options.redact and may_hold_secret(part) and any(b in part for b in _BODIES):
                new = _redacted_text(part)
                if new is not None:
                    part, flag = new, True
            numbers.append(n)
            texts.append(part)
            flags.append(flag)
        kept, bad = utf8_only(inp.name, texts, numbers, flags)
        rejects.extend(bad)
        return kept

    def _parse_line(self, name: str, lineno: int, line: bytes, rejects: list[Reject]) -> Any | None:
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            rejects.append(
                Reject(
                    name,
                    lineno,
                    "invalid_json",
                    f"not valid JSON: {exc}",
                    line[:REJECT_RAW_LIMIT].decode("utf-8", "replace"),
                )
            )
            return None

    def _unwrap(
        self,
        obj: Any,
        shape: Shape,
        name: str,
        line: int | None,
        rejects: list[Reject],
        raw: str,
    ) -> Iterator[tuple[int | None, str, bool] | None]:
        try:
            records = shape.split(obj)
        except DecodeError as exc:
            rejects.append(Reject(name, line, exc.reason, exc.message, raw[:REJECT_RAW_LIMIT]))
            return
        for i, record in enumerate(records):
            try:
                event = shape.to_event(record)
            except DecodeError as exc:
                where = exc.message if len(records) == 1 else f"record {i}: {exc.message}"
                rec_raw = orjson.dumps(record).decode() if record is not None else ""
                rejects.append(Reject(name, line, exc.reason, where, rec_raw[:REJECT_RAW_LIMIT]))
                continue
            yield self._finish(event, name, line, rejects)

    def _shaped_lines(
        self,
        inp: Input,
        lines: Iterator[tuple[int, bytes]],
        shape: Shape,
        rejects: list[Reject],
    ) -> Iterator[tuple[int | None, str, bool] | None]:
        for lineno, line in lines:
            obj = self._parse_line(inp.name, lineno, line, rejects)
            if obj is None:
                continue
            yield from self._unwrap(
                obj, shape, inp.name, lineno, rejects, line.decode("utf-8", "replace")
            )

    def _per_line(
        self,
        inp: Input,
        lines: Iterator[tuple[int, bytes]],
        rejects: list[Reject],
        parse: Callable[[str], dict[str, Any]],
    ) -> Iterator[tuple[int | None, str, bool] | None]:
        for lineno, line in lines:
            text = line.decode("utf-8", "replace")
            try:
                event = parse(text)
            except DecodeError as exc:
                rejects.append(
                    Reject(inp.name, lineno, exc.reason, exc.message, text[:REJECT_RAW_LIMIT])
                )
                continue
            yield self._finish(event, inp.name, lineno, rejects)

    def _document(
        self,
        inp: Input,
        lines: Iterator[tuple[int, bytes]],
        shape_name: str,
        rejects: list[Reject],
    ) -> Iterator[tuple[int | None, str, bool] | None]:
        numbers: list[int] = []  # each joined line's number in the input

        def numbered() -> Iterator[bytes]:
            for n, line in lines:
                numbers.append(n)
                yield line

        data = b"\n".join(numbered())
        if len(data) > max(self.options.max_event_size, 1) * 64:
            raise InputError(
                f"{inp.name}: a single JSON document of {len(data) / 1048576:.0f} MiB; "
                "convert it to NDJSON (one event per line) to ingest it in a stream"
            )
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            each = list(zip(numbers, data.split(b"\n"), strict=True))
            first = next((o for _, t in each if (o := _object(t)) is not None), None)
            if len(each) > 1 and first is not None:
                # Not one document: lines of JSON, one of them bad (a first line cut short
                # made the input look like a document spread over lines). Read as one, it
                # took every event after that line into one reject.
                shape = shape_name if shape_name in SHAPES else _shape_of(first)
                yield from self._shaped_lines(inp, iter(each), SHAPES[shape], rejects)
                return
            line, col = _line_col(data, exc.pos)
            line = numbers[line - 1] if line <= len(numbers) else line
            rejects.append(
                Reject(
                    inp.name,
                    line,
                    "invalid_json",
                    f"not valid JSON at {line}:{col}: {exc.msg}",
                    data[:REJECT_RAW_LIMIT].decode("utf-8", "replace"),
                )
            )
            return
        if shape_name == "auto":
            try:
                shape_name = sniff(obj)
            except DecodeError as exc:
                rejects.append(
                    Reject(
                        inp.name,
                        None,
                        exc.reason,
                        exc.message,
                        data[:REJECT_RAW_LIMIT].decode("utf-8", "replace"),
                    )
                )
                return
            if shape_name not in SHAPES:
                shape_name = "v1"
        yield from self._unwrap(obj, SHAPES[shape_name], inp.name, None, rejects, "")

    def _csv(
        self,
        inp: Input,
        lines: Iterator[tuple[int, bytes]],
        rejects: list[Reject],
    ) -> Iterator[tuple[int | None, str, bool] | None]:
        columns = self.options.csv_columns
        if columns is None:
            first = next(lines, None)
            if first is None:
                return
            header = next(csv.reader([first[1].decode("utf-8", "replace")]))
            if "auditID" not in header:
                raise InputError(
                    f"{inp.name}:{first[0]}: a CSV without a header row; give its columns with "
                    f"--csv-columns (a comma list, or one of: {', '.join(CSV_PRESETS)})"
                )
            columns = tuple(header)
        for lineno, line in lines:
            text = line.decode("utf-8", "replace")
            try:
                row = next(csv.reader([text]))
                event = csv_row_to_event(columns, row)
                event = as_event(event, "bad_csv_row", "row") if len(event) > 1 else event
            except (DecodeError, csv.Error) as exc:
                reason = exc.reason if isinstance(exc, DecodeError) else "bad_csv_row"
                message = exc.message if isinstance(exc, DecodeError) else str(exc)
                rejects.append(Reject(inp.name, lineno, reason, message, text))
                continue
            yield self._finish(event, inp.name, lineno, rejects)


def _shape_of(obj: Any) -> str:
    """The shape of a record, as the sniffer tells it (native events when it cannot)."""
    try:
        shape = sniff(obj)
    except DecodeError:
        return "v1"
    return shape if shape in SHAPES else "v1"


def _object(line: bytes) -> dict[str, Any] | None:
    """The line as one whole JSON object, or None."""
    text = line.strip()
    if text[:1] != b"{":
        return None
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _line_col(data: bytes, pos: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, pos) + 1
    col = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
    return line, col


def iter_raw_events(
    paths: Sequence[str], options: DecodeOptions | None = None, rejects: list[Reject] | None = None
) -> Iterator[tuple[dict[str, Any], int]]:
    """(event object, size of its JSON text) for every event in the inputs, in any format.

    For callers that work on events in memory (policy simulation, tests): the same detection,
    conversion and redaction as `kaudit ingest`. Records that are not events go to `rejects`.
    """
    opts = options or DecodeOptions()
    # every event becomes a Python object here: smaller batches hold less at once
    decoder = Decoder(
        dataclasses.replace(opts, batch_size=min(opts.batch_size or DEFAULT_BATCH, DEFAULT_BATCH))
    )
    sink: list[Reject] = [] if rejects is None else rejects
    for inp in expand_inputs(paths):
        for batch, found in decoder.batches(inp):
            sink.extend(found)
            for text, line, _ in batch.iter_texts():
                try:
                    obj = orjson.loads(text)
                except orjson.JSONDecodeError as exc:
                    raw = text if isinstance(text, str) else text.decode("utf-8", "replace")
                    sink.append(Reject(inp.name, line, "invalid_json", str(exc), raw))
                    continue
                if not isinstance(obj, dict):
                    raw = text if isinstance(text, str) else text.decode("utf-8", "replace")
                    sink.append(Reject(inp.name, line, "not_an_object", "not an event", raw))
                    continue
                yield obj, len(text)


def iter_events(
    paths: Sequence[str], options: DecodeOptions | None = None, rejects: list[Reject] | None = None
) -> Iterator[AuditEvent]:
    """Typed records of every event in the inputs (see `iter_raw_events`); events without an
    auditID, stage or time go to `rejects`."""
    opts = options or DecodeOptions()
    sink: list[Reject] = [] if rejects is None else rejects
    for obj, _ in iter_raw_events(paths, opts, sink):
        try:
            yield AuditEvent.from_dict(obj, opts.cluster)
        except DecodeError as exc:
            sink.append(
                Reject("<events>", None, exc.reason, exc.message, orjson.dumps(obj).decode())
            )


def resolve_csv_columns(spec: str | None) -> tuple[str, ...] | None:
    """`--csv-columns`: a preset name or a comma-separated list."""
    if spec is None:
        return None
    if spec in CSV_PRESETS:
        return CSV_PRESETS[spec]
    cols = tuple(c.strip() for c in spec.split(",") if c.strip())
    if not cols:
        raise InputError("--csv-columns is empty")
    return cols
