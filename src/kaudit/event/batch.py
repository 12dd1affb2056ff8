"""What decoding hands to a store: event texts in batches, and the records it had to refuse."""

from __future__ import annotations

from dataclasses import dataclass, field


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

    A text may still be bytes: the store checks that it is UTF-8 (and rejects it if not)."""

    cluster: str
    source: str
    texts: list[str | bytes] = field(default_factory=list)
    lines: list[int | None] = field(default_factory=list)
    redacted: list[bool] = field(default_factory=list)

    def add(self, text: str | bytes, line: int | None, redacted: bool = False) -> None:
        self.texts.append(text)
        self.lines.append(line)
        self.redacted.append(redacted)

    def __len__(self) -> int:
        return len(self.texts)
