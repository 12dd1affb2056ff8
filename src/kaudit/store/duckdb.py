"""The embedded default store: one DuckDB file, one `events` table (a view over `event_rows`).

Writes go through one writer (a lock around the connection); reads run concurrently on their own
cursors. Every event is kept whole in `raw` (zstd-compressed; export gives it back as ingested);
the SLS columns of `kaudit.store.schema` are derived from it by `kaudit.store.extract` in one SQL
pass, and the bodies (`requestObject`, `responseObject`, `annotations`) are virtual columns read
from `raw`, so they cost no space twice.

Every stored row gets `seq`, its place in the order of arrival (a gap where a row was refused or
a duplicate). Readers that follow new rows (streaming detection) mark how far they got by `seq`:
unlike `rowid`, it never changes when a prune and a checkpoint compact the table.

Identity: an event is stored once per (cluster, auditID, stage, stageTimestamp). A retry of the
webhook or a re-read file gives the same four values; auditID alone is client-settable and
aggregated apiservers reuse it on purpose (spec k8s-audit §6, §9.5), so it is not enough.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from kaudit.errors import StoreError
from kaudit.event.batch import BATCH_SCHEMA, BlockStream, RawBatch, Reject
from kaudit.event.redact import redact_event
from kaudit.store.base import AppendResult, CompiledQuery, QueryResult
from kaudit.store.extract import column_exprs, key_spec, transform_spec
from kaudit.store.schema import COLUMNS

SCHEMA_VERSION = 2  # 2: the `seq` column
WAL_CHECKPOINT = "256MB"
_SCAN_CHUNK = 8192
# Columns computed from `raw` when read instead of stored twice.
VIRTUAL = {
    "annotations": "json_extract(raw, '$.annotations')",
    "requestObject": "json_extract(raw, '$.requestObject')",
    "responseObject": "json_extract(raw, '$.responseObject')",
}
STORED = [c for c in COLUMNS if c.name not in VIRTUAL]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


ROWS = "event_rows"  # the physical table; `events` is the view queries read


def _events_ddl() -> list[str]:
    """The physical table and the `events` view over it, columns in `COLUMNS` order.

    The bodies are not stored twice: the view reads them from `raw` only when a query uses
    them (a virtual generated column would be computed on every insert). The view passes the
    table's `seq` (and `rowid`) on, for readers that follow new rows.
    """
    cols = [f"{_ident(c.name)} {c.sql_type}" for c in STORED]
    cols += ["raw VARCHAR USING COMPRESSION zstd", "size INTEGER", "source VARCHAR", "seq BIGINT"]
    view = [
        f"CAST({VIRTUAL[c.name]} AS {c.sql_type}) AS {_ident(c.name)}"
        if c.name in VIRTUAL
        else _ident(c.name)
        for c in COLUMNS
    ]
    return [
        f"CREATE TABLE IF NOT EXISTS {ROWS} (" + ", ".join(cols) + ")",
        "CREATE OR REPLACE VIEW events AS SELECT "
        + ", ".join([*view, "raw", "size", "source", "seq", "rowid AS rowid"])
        + f" FROM {ROWS}",
    ]


_REJECTS_DDL = """
CREATE TABLE IF NOT EXISTS rejects (
    "at" TIMESTAMP, cluster VARCHAR, source VARCHAR, line BIGINT,
    reason VARCHAR, message VARCHAR, raw VARCHAR USING COMPRESSION zstd
)"""

_META_DDL = "CREATE TABLE IF NOT EXISTS kaudit_meta (key VARCHAR PRIMARY KEY, value VARCHAR)"


class DuckDBStore:
    """The `Store` on a DuckDB file (or `:memory:`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str, read_only: bool) -> None:
        self._con = con
        self.path = path
        self.read_only = read_only
        self._write_lock = threading.Lock()
        self._insert_sql = _build_insert_sql()
        self._in_bulk = False
        self._next_seq = 0  # `seq` of the next stored row
        self._committed_seq = -1  # the greatest `seq` committed
        self._expect_duplicates = False  # see `append`

    # --- lifecycle -------------------------------------------------------------------------
    @classmethod
    def open(
        cls, path: str | Path = ":memory:", read_only: bool = False, memory_limit: str = "1GB"
    ) -> DuckDBStore:
        spath = str(path)
        if spath != ":memory:":
            p = Path(spath)
            if read_only and not p.exists():
                raise StoreError(
                    f"no kaudit store at {spath}: ingest events first (kaudit ingest FILE)"
                )
            p.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(spath, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreError(
                    f"the store {spath} is in use by another kaudit process (DuckDB allows one "
                    "writer per file): stop it, or go through `kaudit serve` (query, stats, "
                    "export and prune do when it runs; send events to its webhook)"
                ) from exc
            raise StoreError(f"cannot open the store {spath}: {exc}") from exc
        except duckdb.Error as exc:
            raise StoreError(f"cannot open the store {spath}: {exc}") from exc
        # Event times are UTC; casting an offset timestamp must not depend on the machine.
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")  # it would write into kaudit's output
        # DuckDB would cache up to 80 % of the machine's memory; kaudit shares the machine
        # (and bulk loads would otherwise keep every uncommitted row group cached).
        con.execute(f"SET memory_limit = '{memory_limit}'")
        # Commits smaller than a row group go through the WAL, and a checkpoint compresses
        # them into the file. At DuckDB's 16 MB (about 9,000 events) the row group being
        # filled is compressed and rewritten at every checkpoint, a dozen times before it is
        # full: appends of 11,000 events ran at 40k events/s and left 202 B/event on disk;
        # at 256 MB, 53k events/s and 136 B/event (benchmarks/webhook.py, 2 cores). The price:
        # a WAL of up to 256 MB to replay after a crash.
        con.execute(f"SET wal_autocheckpoint = '{WAL_CHECKPOINT}'")
        # A checkpoint "vacuums" by default: it merges row groups that are not full, rewriting
        # every row group after the first partial one. Each commit of a large import ends in a
        # partial row group, so closing a store after importing 1M events rewrote ~40 % of it
        # (2 s of 11, and the file grew by the space the old copies left free: 177 B/event
        # instead of 115). A prune still gives back the row groups it empties (measured with
        # DuckDB 2.0: the same blocks are freed with vacuuming on or off).
        con.execute("SET max_vacuum_tasks = 0")
        # The writer's own connection need not keep the order of what it inserts (every row
        # carries its arrival number, `seq`): inserts run 13 % faster (1M events, 2 cores).
        # Readers have connections of their own, where the order is kept.
        con.execute("SET SESSION preserve_insertion_order = false")
        store = cls(con, spath, read_only)
        if not read_only:  # (a reader follows no rows: it needs no `seq`, nor a migration)
            store._create()
            (top,) = con.execute(f"SELECT coalesce(max(seq), -1) FROM {ROWS}").fetchall()[0]
            store._committed_seq = int(top)
            store._next_seq = store._committed_seq + 1
        return store

    def _create(self) -> None:
        with self._write_lock:
            (exists,) = self._con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [ROWS]
            ).fetchall()[0]
            for ddl in _events_ddl()[:1]:
                self._con.execute(ddl)
            if exists:
                self._migrate()
            for ddl in _events_ddl()[1:]:
                self._con.execute(ddl)
            self._con.execute(_REJECTS_DDL)
            self._con.execute(_META_DDL)
            self._con.execute(
                "INSERT OR IGNORE INTO kaudit_meta VALUES ('schema_version', ?)",
                [str(SCHEMA_VERSION)],
            )

    def _migrate(self) -> None:
        """Bring a store written by an older kaudit to this schema."""
        cols = {
            r[0]
            for r in self._con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [ROWS]
            ).fetchall()
        }
        if "seq" not in cols:  # schema 1: rows were followed by rowid, in the same order
            self._con.execute(f"ALTER TABLE {ROWS} ADD COLUMN seq BIGINT")
            self._con.execute(f"UPDATE {ROWS} SET seq = rowid")
            self._con.execute(
                "UPDATE kaudit_meta SET value = ? WHERE key = 'schema_version'",
                [str(SCHEMA_VERSION)],
            )

    def committed_seq(self) -> int:
        """The greatest `seq` committed (-1: none). A reader that has examined the rows up to a
        value of this takes the rows above it next; rows of an open transaction are above it."""
        return self._committed_seq

    def close(self) -> None:
        with self._write_lock:
            self._con.close()

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing ---------------------------------------------------------------------------
    def append(self, batch: RawBatch | BlockStream) -> AppendResult:
        """Store a batch: reject malformed events, skip ones already stored, keep the rest.

        Two ways, chosen by what the last batch was like. Mostly new events (the usual case):
        insert every storable event with one parse, in one statement that pulls the blocks as
        it goes, then find the duplicates among the rows just inserted, from their key columns,
        and delete them; only the events that were not inserted are looked at again, to say
        why. Mostly duplicates (a file read again): read the keys first, then insert only the
        events not stored yet (the blocks are then gathered, `_KEYS_FIRST_ROWS` at a time, to be
        read twice).
        """
        result = AppendResult()
        if isinstance(batch, RawBatch):
            blocks, not_utf8 = batch.record_batches()
            if not_utf8:
                self.add_rejects(batch.cluster, not_utf8)
                result.received = result.rejected = len(not_utf8)
                result.rejected_by_reason["not_utf8"] = len(not_utf8)
            batch = BlockStream(batch.cluster, batch.source, iter(blocks))
        feed = _Feed(batch.with_sources())
        with self._write_lock:
            con = self._con
            own_tx = not self._in_bulk
            seq = self._next_seq
            try:
                if own_tx:
                    con.execute("BEGIN")
                counted: list[tuple[Any, ...]] = []  # (reason, count)
                if self._expect_duplicates:
                    stored = 0
                    for table in feed.tables(_KEYS_FIRST_ROWS):
                        con.register("kaudit_batch", table)
                        more, found = self._append_keys_first(con, batch, seq)
                        con.unregister("kaudit_batch")
                        del table  # (before the next is gathered)
                        stored += more
                        counted += found
                else:
                    con.register("kaudit_batch", feed.reader())
                    stored, counted = self._append_inserting(con, batch, seq, feed)
                self._next_seq += feed.rows
                if own_tx:
                    con.execute("COMMIT")
                    self._committed_seq = self._next_seq - 1
            except duckdb.Error as exc:
                con.execute("ROLLBACK")
                self._in_bulk = False
                raise StoreError(f"storing a batch from {batch.source} failed: {exc}") from exc
            finally:
                con.unregister("kaudit_batch")  # (none is no error)
        result.received += feed.rows
        for reason, count in counted:  # (keys first: once per gathered table)
            by_reason = result.rejected_by_reason
            by_reason[str(reason)] = by_reason.get(str(reason), 0) + int(count)
        result.rejected = sum(result.rejected_by_reason.values())
        result.stored = stored
        result.duplicates = result.received - result.rejected - stored
        # More than a tenth duplicates: the next batch is probably more of the same input.
        self._expect_duplicates = result.duplicates * 10 > result.received
        return result

    @property
    def gathers(self) -> bool:
        """Whether the next `append` reads the keys first: it then gathers `_KEYS_FIRST_ROWS`
        events before it stores any, and its caller may decode further ahead."""
        return self._expect_duplicates

    def begin(self) -> None:
        """Start a transaction spanning several `append`s: big loads then write row groups
        straight to the file instead of through the write-ahead log. Nothing in it is visible
        or durable before `commit`."""
        with self._write_lock:
            if self._in_bulk:
                raise StoreError("a bulk transaction is already open")
            self._con.execute("BEGIN")
            self._in_bulk = True

    def commit(self) -> None:
        with self._write_lock:
            if self._in_bulk:
                self._in_bulk = False
                self._con.execute("COMMIT")
                self._committed_seq = self._next_seq - 1

    def rollback(self) -> None:
        with self._write_lock:
            if self._in_bulk:
                self._in_bulk = False
                self._con.execute("ROLLBACK")

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """`begin` … `commit`, rolled back on an error."""
        self.begin()
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def _append_inserting(
        self, con: duckdb.DuckDBPyConnection, batch: BlockStream, seq: int, feed: _Feed
    ) -> tuple[int, list[tuple[Any, ...]]]:
        """Insert first, then take out what cannot be stored and the duplicates: (events
        stored, rejects by reason)."""
        sql = self._insert_sql
        con.execute(sql["insert_all"], [seq, batch.cluster])
        n = feed.rows
        last = seq + n - 1
        counted: list[tuple[Any, ...]] = []
        # (fetchall: a result left half-read would keep the connection busy)
        ((refusals,),) = con.execute(f"SELECT count(*) FROM {ROWS} WHERE seq < 0").fetchall()
        if refusals:  # some cannot be stored: say why, and take them out
            # The blocks are gone; the texts refused are in the table (`raw`, as inserted).
            refused = con.execute(
                f"SELECT -1 - seq, raw, redacted FROM {ROWS} WHERE seq < 0"
            ).fetchall()
            con.unregister("kaudit_batch")
            con.register("kaudit_batch", feed.with_lines(refused))
            con.execute(sql["left_out"], [batch.cluster])
            try:
                counted = con.execute(
                    "SELECT reason, count(*) FROM kaudit_keys GROUP BY reason"
                ).fetchall()
                con.execute(sql["rejects"])
            finally:
                con.execute("DROP TABLE kaudit_keys")
            con.execute(f"DELETE FROM {ROWS} WHERE seq < 0")
        inserted = n - sum(int(c) for _, c in counted)
        if not inserted:
            return 0, counted
        bounds = con.execute(sql["new_bounds"], [seq, last]).fetchone()
        assert bounds is not None
        lo, hi, untimed = bounds
        lo, hi = (lo, hi) if lo is not None else (0, -1)
        stmt = sql["repeats_untimed" if untimed else "repeats"]
        con.execute(stmt, [seq, last, batch.cluster, lo, hi])
        try:
            dup = con.execute("SELECT count(*) FROM kaudit_dup").fetchone()
            if dup and dup[0]:
                deleted = con.execute(sql["delete_repeats"], [seq, last]).fetchone()
                inserted -= int(deleted[0]) if deleted else 0
        finally:
            con.execute("DROP TABLE kaudit_dup")
        return inserted, counted

    def _append_keys_first(
        self, con: duckdb.DuckDBPyConnection, batch: BlockStream, seq: int
    ) -> tuple[int, list[tuple[Any, ...]]]:
        """Read the keys, then insert what is new: (events stored, rejects by reason)."""
        sql = self._insert_sql
        con.execute(sql["keys"], [batch.cluster])
        try:
            counted = con.execute(
                "SELECT reason, count(*) FROM kaudit_keys WHERE reason IS NOT NULL GROUP BY reason"
            ).fetchall()
            if counted:
                con.execute(sql["rejects"])
            stored = self._insert_new(con, batch.cluster, seq)
        finally:
            con.execute("DROP TABLE kaudit_keys")
        return stored, counted

    def _insert_new(self, con: duckdb.DuckDBPyConnection, cluster: str, seq: int) -> int:
        """Insert the staged events not stored yet; returns how many were inserted."""
        sql = self._insert_sql
        bounds = con.execute(
            "SELECT count(*), min(__time__), max(__time__), count(__time__) "
            "FROM kaudit_keys WHERE reason IS NULL"
        ).fetchone()
        if bounds is None or not bounds[0]:
            return 0
        n, lo, hi, timed = bounds
        con.execute(sql["fresh"])
        try:
            lo, hi = (lo, hi) if timed else (0, -1)
            con.execute(sql["dups" if n == timed else "dups_untimed"], [lo, hi])
            try:
                dup_row = con.execute("SELECT count(*) FROM kaudit_dup").fetchone()
                if dup_row and dup_row[0]:
                    con.execute(sql["exact"])
                row = con.execute(sql["events"], [seq, cluster]).fetchone()
            finally:
                con.execute("DROP TABLE kaudit_dup")
        finally:
            con.execute("DROP TABLE kaudit_fresh")
        return int(row[0]) if row else 0

    def add_rejects(self, cluster: str, rejects: Sequence[Reject]) -> None:
        """Keep records that never became event text (undecodable lines, oversize, ...)."""
        if not rejects:
            return
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = [(now, cluster, r.source, r.line, r.reason, r.message, r.raw) for r in rejects]
        with self._write_lock:
            self._con.executemany("INSERT INTO rejects VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def ingest_events(
        self, events: Iterable[Mapping[str, Any]], cluster: str = "default", redact: bool = True
    ) -> AppendResult:
        """Convenience for callers holding event dicts (tests, webhook): redact and append."""
        batch = RawBatch(cluster=cluster, source="<api>")
        for i, ev in enumerate(events, start=1):
            flagged = False
            if redact:
                ev, flagged = redact_event(ev)
            batch.add(orjson.dumps(ev).decode(), i, flagged)
        return self.append(batch)

    def prune(self, before: datetime) -> int:
        """Delete events whose time is before `before`; returns how many were deleted."""
        cutoff = int(before.timestamp())
        with self._write_lock:
            try:
                row = self._con.execute(
                    f"DELETE FROM {ROWS} WHERE __time__ < ?", [cutoff]
                ).fetchone()
            except duckdb.Error as exc:
                raise StoreError(f"pruning {self.path} failed: {exc}") from exc
            # Give the space back now if nothing else is writing; otherwise the next automatic
            # checkpoint does it.
            with contextlib.suppress(duckdb.TransactionException):
                self._con.execute("CHECKPOINT")
        return int(row[0]) if row else 0

    # --- reading ---------------------------------------------------------------------------
    def reader(self) -> duckdb.DuckDBPyConnection:
        """A cursor of its own for one reading thread."""
        return self._con.cursor()

    def execute(self, query: CompiledQuery) -> QueryResult:
        cur = self.reader()
        try:
            start = time.perf_counter()
            rel = cur.execute(query.sql, list(query.params))
            columns = tuple(d[0] for d in rel.description or ())
            rows = rel.fetchall()
            return QueryResult(columns, rows, time.perf_counter() - start)
        finally:
            cur.close()

    def iter_raw(
        self, where_sql: str | None = None, params: Sequence[Any] = (), batch_size: int = 10_000
    ) -> Iterator[str]:
        """Stored event texts in time order, exactly as kept."""
        cur = self.reader()
        try:
            where = f"WHERE {where_sql}" if where_sql else ""
            cur.execute(
                f"SELECT raw FROM events {where} ORDER BY stageTimestamp, auditID, stage",
                list(params),
            )
            while True:
                rows = cur.fetchmany(batch_size)
                if not rows:
                    break
                for (raw,) in rows:
                    yield raw
        finally:
            cur.close()

    def iter_events(
        self, where_sql: str | None = None, params: Sequence[Any] = ()
    ) -> Iterator[dict[str, Any]]:
        """Stored events as dicts (lossless)."""
        for raw in self.iter_raw(where_sql, params):
            yield orjson.loads(raw)

    def holds(self, cluster: str) -> bool:
        """Whether some event of `cluster` is stored."""
        cur = self.reader()
        try:
            found = cur.execute(f"SELECT 1 FROM {ROWS} WHERE cluster = ? LIMIT 1", [cluster])
            return bool(found.fetchall())
        finally:
            cur.close()

    def count(self) -> int:
        row = self.reader().execute(f"SELECT count(*) FROM {ROWS}").fetchone()
        return int(row[0]) if row else 0

    def stats(self) -> dict[str, Any]:
        cur = self.reader()
        clusters = cur.execute(
            "SELECT cluster, count(*), min(stageTimestamp), max(stageTimestamp), sum(size) "
            f"FROM {ROWS} GROUP BY cluster ORDER BY cluster"
        ).fetchall()
        rejects = cur.execute(
            "SELECT reason, count(*) FROM rejects GROUP BY reason ORDER BY 2 DESC"
        ).fetchall()
        disk = Path(self.path).stat().st_size if self.path != ":memory:" else 0
        total = sum(int(c[1]) for c in clusters)
        return {
            "path": self.path,
            "events": total,
            "bytes_on_disk": disk,
            "bytes_per_event": round(disk / total, 1) if total else None,
            "clusters": [
                {
                    "cluster": c[0],
                    "events": int(c[1]),
                    "first": c[2].isoformat() + "Z" if c[2] else None,
                    "last": c[3].isoformat() + "Z" if c[3] else None,
                    "raw_bytes": int(c[4] or 0),
                }
                for c in clusters
            ],
            "rejects": {str(r[0]): int(r[1]) for r in rejects},
        }

    def rejects(self, limit: int = 100, reason: str | None = None) -> list[dict[str, Any]]:
        cur = self.reader()
        where, params = ("WHERE reason = ?", [reason]) if reason else ("", [])
        rows = cur.execute(
            f'SELECT "at", cluster, source, line, reason, message, raw FROM rejects {where} '
            'ORDER BY "at", source, line LIMIT ?',
            [*params, limit],
        ).fetchall()
        keys = ("at", "cluster", "source", "line", "reason", "message", "raw")
        return [dict(zip(keys, r, strict=True)) for r in rows]


_FEED_SCHEMA = pa.schema(
    [*BATCH_SCHEMA, ("idx", pa.int64()), ("source", pa.dictionary(pa.int32(), pa.string()))]
)
# Events gathered at once when an append reads its texts twice (keys first): ~150 MB.
_KEYS_FIRST_ROWS = 125_000


@dataclass(frozen=True, slots=True)
class _Slice:
    """What is kept of a slice once DuckDB has read it: where it starts in the append, its
    line numbers and its source."""

    start: int
    lines: pa.Array
    source: str


class _Feed:
    """The blocks of one append as DuckDB scans them: numbered (`idx`, the row's place in the
    append, of which its `seq` is made), with their source, cut into slices of `_SCAN_CHUNK`
    rows (DuckDB scans a record batch on one thread: a big one would keep the other cores
    idle) and counted. Only the line numbers and sources are kept once a block is read, to
    say where a refused text was."""

    def __init__(self, blocks: Iterator[tuple[str, pa.RecordBatch]]) -> None:
        self._blocks = blocks
        self.rows = 0
        self._read: list[_Slice] = []

    def _slices(self) -> Iterator[pa.RecordBatch]:
        for source, block in self._blocks:
            name = pa.array([source], pa.string())
            for off in range(0, block.num_rows, _SCAN_CHUNK):
                part = block.slice(off, _SCAN_CHUNK)
                first, k = self.rows, part.num_rows
                self._read.append(_Slice(first, part.column(0), source))
                self.rows += k
                idx = pa.array(np.arange(first, first + k, dtype=np.int64))
                src = pa.DictionaryArray.from_arrays(pa.array(np.zeros(k, np.int32)), name)
                yield pa.RecordBatch.from_arrays([*part.columns, idx, src], schema=_FEED_SCHEMA)

    def reader(self) -> pa.RecordBatchReader:
        """The blocks as DuckDB pulls them, a few at a time, while it inserts."""
        return pa.RecordBatchReader.from_batches(_FEED_SCHEMA, self._slices())

    def tables(self, rows: int) -> Iterator[pa.Table]:
        """The blocks gathered into tables of about `rows` rows, for statements that read
        them twice."""
        held: list[pa.RecordBatch] = []
        count = 0
        for part in self._slices():
            held.append(part)
            count += part.num_rows
            if count >= rows:
                yield pa.Table.from_batches(held, schema=_FEED_SCHEMA)
                held, count = [], 0
        if held:
            yield pa.Table.from_batches(held, schema=_FEED_SCHEMA)

    def with_lines(self, refused: list[tuple[Any, ...]]) -> pa.Table:
        """(idx, text, redacted) rows read back from the table, with their line numbers and
        sources."""
        lines, sources = [], []
        for idx, *_ in refused:
            got = self._read[bisect.bisect_right(self._read, idx, key=lambda s: s.start) - 1]
            lines.append(got.lines[idx - got.start].as_py())
            sources.append(got.source)
        idx, text, redacted = (list(c) for c in zip(*refused, strict=True))
        return pa.table(
            {
                "idx": pa.array(idx, pa.int64()),
                "line": pa.array(lines, pa.int64()),
                "text": pa.array(text, pa.string()),
                "redacted": pa.array(redacted, pa.bool_()),
                "source": pa.array(sources, pa.string()),
            }
        )


# An object is taken for an audit event when it says so (kind Event) or has two of its fields;
# this is the same test the format sniffer uses, so hand-written samples are kept.
_EVENT_FIELDS = (
    "auditID",
    "stage",
    "verb",
    "requestURI",
    "user",
    "objectRef",
    "sourceIPs",
    "level",
)
_NOT_EVENT = (
    "(coalesce(t.kind, '') <> 'Event' AND ("
    + " + ".join(f"(t.{_ident(f)} IS NOT NULL)::INTEGER" for f in _EVENT_FIELDS)
    + ") < 2)"
)


def _parsed(spec: str, where: str = "") -> str:
    """The staged batch with each text parsed once (`t`, NULL when it is not JSON); its first
    parameter is the cluster."""
    return (
        "SELECT b.idx, b.line, b.text, b.redacted, b.source, ? AS cluster, "
        f"TRY(json_transform(b.text, '{spec}')) AS t FROM kaudit_batch b {where}"
    )


def _verdict(ok: str) -> tuple[str, str]:
    """(reason, message): why a parsed text cannot be stored, NULL when it can; `ok` tells a
    text that is JSON. The checks read only fields that both the key and the full transform
    structures have, so every statement judges an event the same way."""
    stage_ts = column_exprs(STORED)["stageTimestamp"]
    time_text = (
        "coalesce(t.stageTimestamp, t.requestReceivedTimestamp, t.timestamp, "
        "t.metadata.creationTimestamp)"
    )
    code = "t.responseStatus.code"
    checks = [
        (f"NOT ({ok})", "invalid_json", "'not valid JSON'"),
        (
            # JSON's white space may come first (RFC 8259 §2). Trimming copies the text, so it
            # is done only for texts that do not start with the brace: 0.2 s less CPU per 1M.
            "NOT starts_with(text, '{') AND "
            "left(ltrim(text, ' ' || chr(9) || chr(10) || chr(13)), 1) <> '{'",
            "not_an_object",
            "'expected a JSON object (an audit event)'",
        ),
        (
            _NOT_EVENT,
            "not_an_event",
            "'not an audit event: fewer than two of auditID, stage, verb, requestURI, user, "
            "objectRef, sourceIPs, level'",
        ),
        (
            f"{time_text} IS NOT NULL AND {stage_ts} IS NULL",
            "bad_timestamp",
            f"'timestamp is not RFC 3339: ' || {time_text}",
        ),
        (
            f"{code} IS NOT NULL AND TRY_CAST({code} AS INTEGER) IS NULL",
            "wrong_type",
            f"'field responseStatus.code: expected an integer, got ' || {code}",
        ),
        # JSON that the transform still refused (nesting too deep, ...)
        ("t IS NULL", "invalid_json", "'cannot be read as an audit event'"),
    ]
    reason = "CASE " + " ".join(f"WHEN {c} THEN '{r}'" for c, r, _ in checks) + " END"
    message = "CASE " + " ".join(f"WHEN {c} THEN {m}" for c, _, m in checks) + " END"
    return reason, message


def _build_insert_sql() -> dict[str, str]:
    """The statements of `append`, generated once from the schema.

    Inserting first: `insert_all` parses each text once, whole, and inserts it, marking those
    that cannot be stored; `left_out` gives those their reason and `rejects` keeps them aside;
    `repeats` finds, from the key columns of the rows just inserted, those that repeat an
    earlier row, and `delete_repeats` takes out the ones whose text is the same too.

    Keys first: `keys` reads each event's identity with a small `json_transform` and judges
    it; `fresh`, `dups` and `exact` find the events already stored; `events` parses the rest
    once more, whole, and inserts them with their text.
    """
    exprs = column_exprs(STORED)
    stored_names = [c.name for c in STORED]
    select_cols = ", ".join(f"{exprs[n]} AS {_ident(n)}" for n in stored_names)
    key = ("cluster", "auditID", "stage", "stageTimestamp")
    key_exprs = ", ".join(f"{exprs[k]} AS {_ident(k)}" for k in (*key[1:], "__time__"))
    full = transform_spec(STORED)  # the bodies are read from `raw` when a query asks
    # A text that is not JSON gives t = NULL (TRY); only those are parsed again (`json_valid`),
    # to tell not-JSON from JSON that is not an event.
    reason, message = _verdict("t IS NOT NULL OR json_valid(text)")
    insert_reason, _ = _verdict("t IS NOT NULL")
    key_cols = ", ".join(_ident(k) for k in key)
    insert_cols = ", ".join([*(_ident(n) for n in stored_names), "raw", "size", "source", "seq"])

    # Every text is inserted; one that cannot be stored gets a negative `seq` (-1 - idx) and
    # is taken out again in the same transaction. A filter instead would be pushed below the
    # projection and parse every text twice (25 % slower).
    insert_all = f"""
    INSERT INTO {ROWS} ({insert_cols})
    SELECT {select_cols}, text, strlen(text), source,
           CASE WHEN ({insert_reason}) IS NULL THEN ? + idx ELSE -1 - idx END
    FROM ({_parsed(full)})
    """
    left_out = f"""
    CREATE TEMP TABLE kaudit_keys AS
    SELECT idx, line, source, cluster, {reason} AS reason, {message} AS message
    FROM ({_parsed(full, f"WHERE b.idx IN (SELECT -1 - seq FROM {ROWS} WHERE seq < 0)")})
    """
    new_bounds = (
        f"SELECT min(__time__), max(__time__), count(*) > count(__time__) FROM {ROWS} "
        "WHERE seq BETWEEN ? AND ?"
    )
    on = " AND ".join(f"n.{_ident(k)} IS NOT DISTINCT FROM o.{_ident(k)}" for k in key)

    # Identity is the key above; an event that repeats a stored key with *different* content is
    # not a retry (hand-edited samples, a client reusing an Audit-ID) and is kept too. Only the
    # rows whose key is already stored (usually none) have their text compared.
    # The lookups of stored keys are bounded to the batch's time range, so that zone maps skip
    # every row group of other times; events without a time are only looked for when the batch
    # has some.
    def repeats(with_untimed: bool) -> str:
        untimed = " OR __time__ IS NULL" if with_untimed else ""
        return f"""
    CREATE TEMP TABLE kaudit_dup AS
    SELECT n.seq, o.seq AS prior
    FROM (SELECT seq, {key_cols} FROM {ROWS} WHERE seq BETWEEN ? AND ?) n
    JOIN (SELECT seq, {key_cols} FROM {ROWS}
          WHERE cluster = ? AND (__time__ BETWEEN ? AND ?{untimed})) o
      ON {on} AND o.seq < n.seq
    """

    delete_repeats = f"""
    DELETE FROM {ROWS} WHERE seq BETWEEN ? AND ? AND seq IN (
        SELECT d.seq FROM kaudit_dup d
        JOIN {ROWS} n ON n.seq = d.seq
        JOIN {ROWS} o ON o.seq = d.prior
        WHERE n.raw = o.raw
    )
    """

    keys = f"""
    CREATE TEMP TABLE kaudit_keys AS
    SELECT idx, line, source, hash(text) AS text_hash, cluster, {key_exprs},
           {reason} AS reason, {message} AS message
    FROM ({_parsed(key_spec())})
    """
    rejects = """
    INSERT INTO rejects
    SELECT now()::TIMESTAMP, s.cluster, s.source, s.line, s.reason, s.message, b.text
    FROM kaudit_keys s JOIN kaudit_batch b USING (idx) WHERE s.reason IS NOT NULL
    """

    def existing(with_untimed: bool) -> str:
        untimed = " OR __time__ IS NULL" if with_untimed else ""
        return f"(SELECT {key_cols} FROM {ROWS} WHERE __time__ BETWEEN ? AND ?{untimed})"

    fresh = f"""
    CREATE TEMP TABLE kaudit_fresh AS
    SELECT idx, {key_cols} FROM kaudit_keys WHERE reason IS NULL
    QUALIFY row_number() OVER (PARTITION BY {key_cols}, text_hash ORDER BY idx) = 1
    """
    f_on = " AND ".join(f"f.{_ident(k)} IS NOT DISTINCT FROM e.{_ident(k)}" for k in key)

    def dups(with_untimed: bool) -> str:
        return f"""
    CREATE TEMP TABLE kaudit_dup AS
    SELECT f.idx FROM kaudit_fresh f SEMI JOIN {existing(with_untimed)} e ON ({f_on})
    """

    same = " AND ".join(f"e.{_ident(k)} IS NOT DISTINCT FROM f.{_ident(k)}" for k in key)
    exact = f"""
    DELETE FROM kaudit_dup WHERE idx NOT IN (
        SELECT f.idx FROM kaudit_fresh f JOIN kaudit_dup d USING (idx)
        JOIN kaudit_batch b USING (idx)
        JOIN {ROWS} e ON ({same}) AND e.raw = b.text
    )
    """
    events = f"""
    INSERT INTO {ROWS} ({insert_cols})
    SELECT {select_cols}, text, strlen(text), source, ? + idx
    FROM (
        SELECT b.idx, b.text, b.redacted, b.source, ? AS cluster,
               json_transform(b.text, '{full}') AS t
        FROM kaudit_batch b SEMI JOIN kaudit_fresh USING (idx) ANTI JOIN kaudit_dup USING (idx)
    )
    """
    return {
        "insert_all": insert_all,
        "left_out": left_out,
        "new_bounds": new_bounds,
        "repeats": repeats(False),
        "repeats_untimed": repeats(True),
        "delete_repeats": delete_repeats,
        "keys": keys,
        "rejects": rejects,
        "fresh": fresh,
        "dups": dups(False),
        "dups_untimed": dups(True),
        "exact": exact,
        "events": events,
    }
