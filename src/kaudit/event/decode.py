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

import bisect
import csv
import gzip
import io
import itertools
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import orjson

from kaudit.errors import DecodeError, InputError
from kaudit.event.batch import RawBatch, Reject
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
_BLOCK = 8 * 1024 * 1024
_GZIP_BLOCK = 64 * 1024
_SNIFF_LINES = 64  # lines looked at to detect an input's format
_REJECT_RAW_LIMIT = 1024 * 1024  # keep at most this much of a rejected record's text


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
def _read_blocks(
    stream: IO[bytes], name: str, rejects: list[Reject]
) -> Iterator[tuple[int, list[bytes]]]:
    """(number of the first line, complete lines without their newline) per block read.

    A gzip stream cut short ends the input with a `truncated_gzip` reject; the lines read
    before the cut are kept. A last line without a newline is read as a line.
    """
    lineno = 0  # lines yielded so far
    tail = b""
    # A gzip stream cut short raises on the read that reaches the cut, losing what that read
    # had inflated: read it in small steps so that only the incomplete end is lost.
    size = _GZIP_BLOCK if isinstance(stream, gzip.GzipFile) else _BLOCK
    while True:
        try:
            block = stream.read(size)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            rejects.append(
                Reject(
                    name, lineno + 1, "truncated_gzip", f"compressed input ends early: {exc}", ""
                )
            )
            return  # the partial line before the cut is not an event
        if not block:
            break
        parts = (tail + block).split(b"\n")
        tail = parts.pop()
        if parts:
            yield lineno + 1, parts
            lineno += len(parts)
    if tail:
        yield lineno + 1, [tail]


def _lines_of(blocks: Iterable[tuple[int, list[bytes]]]) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for every non-blank line of the blocks."""
    for start, parts in blocks:
        for i, part in enumerate(parts):
            if part.strip():
                yield start + i, part.rstrip(b"\r")


_BODIES = (b'"requestObject"', b'"responseObject"')


def _secret_candidates(texts: list[str | bytes]) -> list[int]:
    """Indexes of the texts that `may_hold_secret`, found with one search per block."""
    if not all(isinstance(t, bytes) for t in texts):
        return [i for i, t in enumerate(texts) if may_hold_secret(t)]
    parts = cast(list[bytes], texts)
    data = b"\n".join(parts)
    hits: set[int] = set()
    for mark in SECRET_MARKS:
        pos = data.find(mark)
        while pos != -1:
            hits.add(pos)
            pos = data.find(mark, pos + 1)
    if not hits:
        return []
    starts = list(itertools.accumulate((len(p) + 1 for p in parts), initial=0))
    lines = sorted({bisect.bisect_right(starts, h) - 1 for h in hits})
    # Metadata-level events carry no body, so nothing to redact
    return [i for i in lines if any(b in parts[i] for b in _BODIES)]


@dataclass(slots=True)
class _Chunk:
    """Many native event lines at once: the bulk path handles them without a per-line call."""

    lines: list[int | None]
    texts: list[str | bytes]
    redacted: list[bool]


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
    batch_size: int = 50_000
    csv_columns: tuple[str, ...] | None = None


class Decoder:
    """Turns one input into `RawBatch`es and the rejects found on the way."""

    def __init__(self, options: DecodeOptions) -> None:
        if options.format not in FORMATS:
            raise InputError(f"unknown format {options.format!r}; one of {', '.join(FORMATS)}")
        self.options = options

    def batches(self, inp: Input) -> Iterator[tuple[RawBatch, list[Reject]]]:
        """Batches of about `batch_size` events (a block of lines is not split); every batch
        comes with the rejects found while reading it."""
        rejects: list[Reject] = []
        batch = self._new_batch(inp)
        for item in self._records(inp, rejects):
            if item is None:
                continue
            if isinstance(item, _Chunk):
                batch.lines.extend(item.lines)
                batch.texts.extend(item.texts)
                batch.redacted.extend(item.redacted)
            else:
                line, text, redacted = item
                batch.add(text, line, redacted)
            if len(batch) >= self.options.batch_size:
                yield batch, rejects
                batch, rejects = self._new_batch(inp), []
        yield batch, rejects

    def _new_batch(self, inp: Input) -> RawBatch:
        return RawBatch(cluster=self.options.cluster, source=inp.name)

    # Each record is (line, event text, redacted), a _Chunk of many, or None when rejected.
    def _records(
        self, inp: Input, rejects: list[Reject]
    ) -> Iterator[tuple[int | None, str, bool] | _Chunk | None]:
        stream = inp.open()
        try:
            fmt = self.options.format
            blocks = _read_blocks(stream, inp.name, rejects)
            read: list[tuple[int, list[bytes]]] = []
            head: list[tuple[int, bytes]] = []
            for blk in blocks:
                read.append(blk)
                head.extend(itertools.islice(_lines_of([blk]), _SNIFF_LINES - len(head)))
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
            raw[:_REJECT_RAW_LIMIT],
        )

    def _native_blocks(
        self, inp: Input, blocks: Iterator[tuple[int, list[bytes]]], rejects: list[Reject]
    ) -> Iterator[_Chunk]:
        """Native NDJSON, a block of lines at a time. The lines go to the store as they are
        (it parses them, and checks UTF-8); only blank, oversize and possibly-Secret lines are
        looked at one by one here."""
        limit = self.options.max_event_size
        redact = self.options.redact
        for start, parts in blocks:
            numbers: list[int | None] = list(range(start, start + len(parts)))
            texts: list[str | bytes] = list(parts)
            if parts and (min(map(len, parts)) <= 1 or max(map(len, parts)) > limit):
                numbers, texts = [], []
                for n, part in enumerate(parts, start):
                    if len(part) > limit:
                        rejects.append(self._too_large(inp.name, n, part))
                    elif part.strip():
                        numbers.append(n)
                        texts.append(part)
            if texts and texts[0][-1:] in (b"\r", "\r"):  # CRLF line ends
                texts = [t.rstrip(b"\r") if isinstance(t, bytes) else t for t in texts]
            flags = [False] * len(texts)
            if redact:
                for i in _secret_candidates(texts):
                    text = texts[i]
                    try:
                        obj = orjson.loads(text)
                    except orjson.JSONDecodeError:
                        continue  # the store rejects it with its reason
                    if isinstance(obj, Mapping):
                        new, flagged = redact_event(obj)
                        if flagged:
                            texts[i] = orjson.dumps(new)
                            flags[i] = True
            yield _Chunk(numbers, texts, flags)

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
                    line[:_REJECT_RAW_LIMIT].decode("utf-8", "replace"),
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
            rejects.append(Reject(name, line, exc.reason, exc.message, raw[:_REJECT_RAW_LIMIT]))
            return
        for i, record in enumerate(records):
            try:
                event = shape.to_event(record)
            except DecodeError as exc:
                where = exc.message if len(records) == 1 else f"record {i}: {exc.message}"
                rec_raw = orjson.dumps(record).decode() if record is not None else ""
                rejects.append(Reject(name, line, exc.reason, where, rec_raw[:_REJECT_RAW_LIMIT]))
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
                    Reject(inp.name, lineno, exc.reason, exc.message, text[:_REJECT_RAW_LIMIT])
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
        data = b"\n".join(line for _, line in lines)
        if len(data) > max(self.options.max_event_size, 1) * 64:
            raise InputError(
                f"{inp.name}: a single JSON document of {len(data) / 1048576:.0f} MiB; "
                "convert it to NDJSON (one event per line) to ingest it in a stream"
            )
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            line, col = _line_col(data, exc.pos)
            rejects.append(
                Reject(
                    inp.name,
                    line,
                    "invalid_json",
                    f"not valid JSON at {line}:{col}: {exc.msg}",
                    data[:_REJECT_RAW_LIMIT].decode("utf-8", "replace"),
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
                        data[:4096].decode("utf-8", "replace"),
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
    decoder = Decoder(options or DecodeOptions())
    sink: list[Reject] = [] if rejects is None else rejects
    for inp in expand_inputs(paths):
        for batch, found in decoder.batches(inp):
            sink.extend(found)
            for text, line in zip(batch.texts, batch.lines, strict=True):
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
