"""The `Store` seam: what every store offers its callers, and the records it speaks in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from kaudit.event.batch import RawBatch


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    """SQL text generated for one store's dialect, with its values bound as parameters.

    `params` are positional (`?` / `$1` placeholders in `sql`); the query layer never splices
    values into the text.
    """

    sql: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Columns exactly as the query names them, rows as tuples of Python values."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    elapsed_s: float = 0.0


@dataclass(slots=True)
class AppendResult:
    """What one `append` did with a batch."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    def add(self, other: AppendResult) -> None:
        self.received += other.received
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        for k, v in other.rejected_by_reason.items():
            self.rejected_by_reason[k] = self.rejected_by_reason.get(k, 0) + v


class Store(Protocol):
    """Append a batch, run a compiled query, close. Callers know nothing else of the store."""

    def append(self, batch: RawBatch) -> AppendResult: ...

    def execute(self, query: CompiledQuery) -> QueryResult: ...

    def close(self) -> None: ...
