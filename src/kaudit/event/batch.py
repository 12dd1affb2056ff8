"""What decoding hands to a store: event texts in batches, and the records it had to refuse."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa

# The columns of a batch as the store scans it.
REJECT_RAW_LIMIT = 1024 * 1024  # keep at most this much of a rejected record's text
# Texts are string views: native lines are read where they lie in the block read, not copied.
BATCH_SCHEMA = pa.schema(
    [("line", pa.int64()), ("text", pa.string_view()), ("redacted", pa.bool_())]
)


@dataclass(frozen=True, slots=True)
class Reject:
    """One input record kaudit could not store, kept aside for `kaudit rejects`."""

    source: str
    line: int | None
    reason: str
    message: str
    raw: str


@dataclass(slots=True)
class RawBatch:
    """Event texts (one JSON object each) from one source, ready for the store.

    Texts come one by one (`add`: a text may still be bytes, which the store checks is UTF-8)
    or as whole Arrow record batches of `BATCH_SCHEMA` (`add_block`: native NDJSON cut straight
    from the bytes read, already checked, never turned into Python strings). The one-by-one
    texts come first in the batch's order."""

    cluster: str
    source: str
    texts: list[str | bytes] = field(default_factory=list)
    lines: list[int | None] = field(default_factory=list)
    redacted: list[bool] = field(default_factory=list)
    blocks: list[pa.RecordBatch] = field(default_factory=list)

    def add(self, text: str | bytes, line: int | None, redacted: bool = False) -> None:
        self.texts.append(text)
        self.lines.append(line)
        self.redacted.append(redacted)

    def add_block(self, block: pa.RecordBatch) -> None:
        self.blocks.append(block)

    def __len__(self) -> int:
        return len(self.texts) + sum(int(b.num_rows) for b in self.blocks)

    def iter_texts(self) -> Iterator[tuple[str | bytes, int | None, bool]]:
        """(text, line, redacted) of every event, in order."""
        yield from zip(self.texts, self.lines, self.redacted, strict=True)
        for block in self.blocks:
            cols = [block.column(i).to_pylist() for i in range(3)]
            for line, text, flag in zip(*cols, strict=True):
                yield text, line, flag

    def record_batches(self) -> tuple[list[pa.RecordBatch], list[Reject]]:
        """The whole batch as record batches of `BATCH_SCHEMA`, and the one-by-one texts that
        are not UTF-8, as rejects (they are left out)."""
        out = list(self.blocks)
        rejects: list[Reject] = []
        if self.texts:
            first, rejects = utf8_only(self.source, self.texts, self.lines, self.redacted)
            out.insert(0, first)
        return out, rejects


@dataclass(slots=True)
class BlockStream:
    """Event texts as record batches of `BATCH_SCHEMA` that are produced while
    the store reads them: a bulk import hands the store its decoder's output, and DuckDB pulls
    each block as it inserts, so that decoding and storing overlap from the first block on and
    no more is held than the blocks in flight. Read once. The blocks must not raise: whoever
    decodes keeps its errors and ends the stream."""

    cluster: str
    source: str  # every block's source; with `sourced`, a label for messages
    blocks: Iterator[pa.RecordBatch] = field(default_factory=lambda: iter(()))
    # Blocks of several sources, with the source of each: several small files then make one
    # insert statement (each statement ends with work on one thread: ~0.45 s a statement).
    sourced: Iterator[tuple[str, pa.RecordBatch]] | None = None

    def with_sources(self) -> Iterator[tuple[str, pa.RecordBatch]]:
        """(source, block) pairs."""
        if self.sourced is not None:
            return self.sourced
        return ((self.source, block) for block in self.blocks)


def utf8_only(
    source: str, texts: list[str | bytes], lines: list[int | None], redacted: list[bool]
) -> tuple[pa.RecordBatch, list[Reject]]:
    """The texts as a record batch of `BATCH_SCHEMA`, without those that are not UTF-8, and
    those as rejects."""
    try:
        return _record_batch(texts, lines, redacted), []
    except (pa.ArrowInvalid, UnicodeDecodeError):
        pass
    kept: tuple[list[str | bytes], list[int | None], list[bool]] = ([], [], [])
    rejects = []
    for text, line, flag in zip(texts, lines, redacted, strict=True):
        if isinstance(text, bytes):
            try:
                kept[0].append(text.decode())
            except UnicodeDecodeError as exc:
                raw = text[:REJECT_RAW_LIMIT].decode("utf-8", "replace")
                msg = f"not UTF-8 text at byte {exc.start}"
                rejects.append(Reject(source, line, "not_utf8", msg, raw))
                continue
        else:
            kept[0].append(text)
        kept[1].append(line)
        kept[2].append(flag)
    return _record_batch(*kept), rejects


def _record_batch(
    texts: list[str | bytes], lines: list[int | None], redacted: list[bool]
) -> pa.RecordBatch:
    return pa.record_batch(
        [
            pa.array(lines, type=pa.int64()),
            pa.array(texts, type=pa.string_view()),
            pa.array(redacted, type=pa.bool_()),
        ],
        schema=BATCH_SCHEMA,
    )
