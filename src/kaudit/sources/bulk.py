"""Bulk import: read inputs, decode them, append them to a store, count what happened."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kaudit.errors import UserError
from kaudit.event.batch import Reject
from kaudit.event.decode import DecodeOptions, Decoder, Input
from kaudit.store.base import AppendResult
from kaudit.store.duckdb import DuckDBStore

# Commit at least this often during a large import, so that an interrupted run keeps what it
# stored (re-running it stores the rest: appends are idempotent).
COMMIT_EVERY = 1_000_000


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


def ingest(
    store: DuckDBStore,
    inputs: Sequence[Input],
    options: DecodeOptions,
    progress: Progress | None = None,
) -> IngestReport:
    """Decode every input into the store. Malformed records are counted and kept as rejects;
    they never stop the run."""
    report = IngestReport(inputs=len(inputs))
    decoder = Decoder(options)
    start = time.perf_counter()
    for inp in inputs:
        pending = 0
        store.begin()
        try:
            for batch, rejects in decoder.batches(inp):
                result = store.append(batch)
                if rejects:
                    store.add_rejects(options.cluster, rejects)
                    result.received += len(rejects)
                    result.rejected += len(rejects)
                    for r in rejects:
                        result.rejected_by_reason[r.reason] = (
                            result.rejected_by_reason.get(r.reason, 0) + 1
                        )
                report.totals.add(result)
                pending += len(batch)
                if progress is not None:
                    progress(inp, result.received)
                if pending >= COMMIT_EVERY:
                    store.commit()
                    store.begin()
                    pending = 0
        except UserError as exc:
            # One unreadable input (unknown format, a CSV without header) is reported and kept
            # as a reject; the other inputs are still read.
            store.commit()
            store.add_rejects(options.cluster, [Reject(inp.name, None, "unreadable", str(exc), "")])
            report.totals.add(
                AppendResult(received=1, rejected=1, rejected_by_reason={"unreadable": 1})
            )
            continue
        except BaseException:
            store.rollback()
            raise
        store.commit()
    report.elapsed_s = time.perf_counter() - start
    return report
