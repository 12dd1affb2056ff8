"""Durable follower checkpoints, committed in the same DuckDB transaction as the events.

A checkpoint says, for one followed path, which file was being read (device and inode, and a
SHA-256 of its first bytes, which survives renaming and gzip compression by lumberjack) and the
offset just after the last complete line whose events are stored. Because `save` runs inside
the transaction that appends those events, a SIGKILL leaves either both or neither: a restart
neither loses nor repeats a line.

The store offers no public handle on its connection for other tables; this module uses the
store's own connection under its write lock, only between `store.begin()` and `store.commit()`
(the writer thread is the only caller).
"""

from __future__ import annotations

from dataclasses import dataclass

from kaudit.store.duckdb import DuckDBStore

_DDL = """
CREATE TABLE IF NOT EXISTS follow_checkpoints (
    "key" VARCHAR, dev UBIGINT, ino UBIGINT, fp_len INTEGER, fp VARCHAR, name VARCHAR,
    "offset" BIGINT, line BIGINT, opened_at DOUBLE, updated_at TIMESTAMP
)"""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where the follower of `key` (the configured live path) stands."""

    key: str
    dev: int
    ino: int
    fp_len: int  # how many leading bytes `fp` covers (0: the file was empty)
    fp: str  # sha256 hex of those bytes, of the uncompressed content
    name: str  # the file's name when it was read (live or a backup)
    offset: int  # bytes of complete lines stored, in uncompressed content
    line: int  # lines up to `offset`
    opened_at: float  # when the follower first opened this file (unix seconds)


def ensure_table(store: DuckDBStore) -> None:
    with store._write_lock:
        store._con.execute(_DDL)


def load(store: DuckDBStore, key: str) -> Checkpoint | None:
    cur = store.reader()
    try:
        row = cur.execute(
            'SELECT "key", dev, ino, fp_len, fp, name, "offset", line, opened_at '
            'FROM follow_checkpoints WHERE "key" = ?',
            [key],
        ).fetchone()
    finally:
        cur.close()
    if row is None:
        return None
    return Checkpoint(
        str(row[0]),
        int(row[1]),
        int(row[2]),
        int(row[3]),
        str(row[4]),
        str(row[5]),
        int(row[6]),
        int(row[7]),
        float(row[8]),
    )


def save(store: DuckDBStore, cp: Checkpoint) -> None:
    """Replace the checkpoint of `cp.key`; call only inside `store.begin()` … `commit()`."""
    with store._write_lock:
        con = store._con
        # DELETE + INSERT, not a keyed upsert: DuckDB refuses re-inserting a key deleted in the
        # same transaction, and one group commit may carry several checkpoints of a follower.
        con.execute('DELETE FROM follow_checkpoints WHERE "key" = ?', [cp.key])
        con.execute(
            "INSERT INTO follow_checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
            [cp.key, cp.dev, cp.ino, cp.fp_len, cp.fp, cp.name, cp.offset, cp.line, cp.opened_at],
        )
