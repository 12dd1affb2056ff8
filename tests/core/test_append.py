"""How a batch is stored: both ways of appending judge every event alike, and large imports
leave the file as they wrote it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from kaudit.event.batch import BATCH_SCHEMA, BlockStream, RawBatch
from kaudit.store.base import AppendResult
from kaudit.store.duckdb import DuckDBStore

from .conftest import event

_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _j(ev: dict[str, Any]) -> str:
    return json.dumps(ev, separators=(",", ":"))  # as `ingest_events` writes it


def _texts() -> list[str]:
    """A batch with one of everything: new events, repeats of a stored one and of one earlier
    in the batch, a reused key with other content, events without time or auditID, and each
    kind of reject, and white space before an event and before an array."""
    untimed = {k: v for k, v in event(40).items() if not k.endswith("Timestamp")}
    no_id = {k: v for k, v in event(41).items() if k != "auditID"}
    reused = event(1, userAgent="another client")  # event(1)'s key, other content
    wrong_code = event(42, responseStatus={"code": "two hundred"})
    bad_time = event(43, stageTimestamp="yesterday", requestReceivedTimestamp="today")
    return [
        _j(event(10)),
        _j(event(1)),  # stored before: a duplicate
        _j(event(11)),
        _j(event(10)),  # earlier in this batch: a duplicate
        _j(reused),
        _j(untimed),
        _j(untimed),  # a duplicate without a time
        _j(no_id),
        '{"kind":"Event","auditID":"x", "stage": "Resp',
        "[1, 2, 3]",
        '{"hello": "world"}',
        _j(wrong_code),
        _j(bad_time),
        _j(event(12)),
        "\t " + _j(event(13)),  # JSON may start with white space
        " \t[4]",
    ]


def _append(store: DuckDBStore, texts: list[str], keys_first: bool) -> AppendResult:
    batch = RawBatch("prod", "mixed.log")
    for i, text in enumerate(texts, start=1):
        batch.add(text, i)
    store._expect_duplicates = keys_first  # which way `append` takes (it chooses by itself)
    return store.append(batch)


def _state(store: DuckDBStore) -> tuple[list[Any], list[Any]]:
    cur = store.reader()
    rows = cur.execute(
        'SELECT auditID, stage, __time__, raw, "responseStatus.code" FROM events ORDER BY ALL'
    ).fetchall()
    rejects = cur.execute("SELECT line, reason, message, raw FROM rejects ORDER BY line").fetchall()
    return rows, rejects


@pytest.mark.parametrize("keys_first", [False, True], ids=["insert-first", "keys-first"])
def test_both_ways_of_appending_judge_every_event_alike(keys_first: bool) -> None:
    with DuckDBStore.open(":memory:") as store:
        store.ingest_events([event(1), event(2)], cluster="prod")
        result = _append(store, _texts(), keys_first)
        assert (result.received, result.stored, result.duplicates) == (16, 7, 3)
        assert result.rejected_by_reason == {
            "invalid_json": 1,
            "not_an_object": 2,
            "not_an_event": 1,
            "wrong_type": 1,
            "bad_timestamp": 1,
        }
        rows, rejects = _state(store)
        assert len(rows) == 2 + 7
        assert [r[:2] for r in rejects] == [
            (9, "invalid_json"),
            (10, "not_an_object"),
            (11, "not_an_event"),
            (12, "wrong_type"),
            (13, "bad_timestamp"),
            (16, "not_an_object"),
        ]
        assert "yesterday" in rejects[-2][2] and "two hundred" in rejects[-3][2]
        # the same batch again: all of it is stored already
        again = _append(store, _texts(), keys_first)
        assert (again.stored, again.duplicates, again.rejected) == (0, 10, 6)
        assert len(_state(store)[0]) == 9


def test_the_two_ways_leave_the_same_store() -> None:
    states = []
    for keys_first in (False, True):
        with DuckDBStore.open(":memory:") as store:
            store.ingest_events([event(1), event(2)], cluster="prod")
            _append(store, _texts(), keys_first)
            states.append(_state(store))
    assert states[0] == states[1]


def test_rows_taken_out_as_duplicates_leave_gaps_in_seq_only() -> None:
    with DuckDBStore.open(":memory:") as store:
        store.ingest_events([event(1)], cluster="prod")
        _append(store, [_j(event(1)), _j(event(2))], keys_first=False)
        assert store.committed_seq() == 2
        seqs = store.reader().execute("SELECT seq FROM events ORDER BY seq").fetchall()
        assert seqs == [(0,), (2,)]  # the duplicate's number is not reused


def _row_groups(store: DuckDBStore) -> list[tuple[int, int]]:
    return (
        store.reader()
        .execute(
            "SELECT row_group_id, max(count) FROM pragma_storage_info('event_rows') "
            "WHERE column_name = 'auditID' GROUP BY ALL ORDER BY ALL"
        )
        .fetchall()
    )


def _written(store: DuckDBStore) -> set[tuple[Any, ...]]:
    """Where each segment already in the file lies."""
    return set(
        store.reader()
        .execute(
            "SELECT row_group_id, column_id, segment_id, block_id, block_offset "
            "FROM pragma_storage_info('event_rows') WHERE persistent"
        )
        .fetchall()
    )


def _blocks(store: DuckDBStore) -> int:
    row = store.reader().execute("SELECT used_blocks FROM pragma_database_size()").fetchone()
    assert row is not None
    return int(row[0])


def _timed(first: int, n: int, start: datetime) -> list[dict[str, Any]]:
    return [
        event(i, stageTimestamp=(start + timedelta(seconds=i)).strftime(_FMT))
        for i in range(first, first + n)
    ]


def test_a_checkpoint_after_an_import_rewrites_nothing(tmp_path: Path) -> None:
    """Each commit of an import ends in a partial row group; DuckDB's default checkpoint would
    merge them, rewriting every row group after the first partial one."""
    now = datetime.now(UTC)
    with DuckDBStore.open(tmp_path / "k.duckdb") as store:
        for first in (0, 130_000):  # two commits of more than a row group each
            with store.bulk():
                store.ingest_events(_timed(first, 130_000, now))
        before, written = _row_groups(store), _written(store)
        assert len(before) == 4  # each commit: a full row group and a partial one
        store.reader().execute("CHECKPOINT")
        assert _row_groups(store) == before
        assert written and written <= _written(store)  # nothing written was moved


def test_prune_gives_back_the_row_groups_it_empties(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with DuckDBStore.open(tmp_path / "k.duckdb") as store:
        store.ingest_events(_timed(0, 250_000, now - timedelta(days=30)))
        store.ingest_events(_timed(250_000, 10, now))
        store.reader().execute("CHECKPOINT")
        blocks = _blocks(store)
        assert store.prune(now - timedelta(days=7)) == 250_000
        assert _blocks(store) < blocks / 4
        assert store.count() == 10


def _blocks_of(texts: list[str], sizes: list[int]) -> list[pa.RecordBatch]:
    """The texts (numbered from 1) as record batches of the given sizes."""
    out, at = [], 0
    for size in sizes:
        part = texts[at : at + size]
        lines = list(range(at + 1, at + 1 + len(part)))
        out.append(
            pa.record_batch(
                [
                    pa.array(lines, pa.int64()),
                    pa.array(part, pa.string_view()),
                    pa.array([False] * len(part)),
                ],
                schema=BATCH_SCHEMA,
            )
        )
        at += size
    return out


@pytest.mark.parametrize("keys_first", [False, True], ids=["insert-first", "keys-first"])
def test_a_stream_of_blocks_is_judged_and_numbered_as_one_batch(
    monkeypatch: pytest.MonkeyPatch, keys_first: bool
) -> None:
    """DuckDB pulls a stream's blocks while it inserts, cut into slices it scans on its
    threads (or gathers them a few at a time, to read them twice); the refused texts still
    get their own line numbers, and the repeats across slices are found."""
    monkeypatch.setattr("kaudit.store.duckdb._SCAN_CHUNK", 3)
    monkeypatch.setattr("kaudit.store.duckdb._KEYS_FIRST_ROWS", 4)
    states, results = [], []
    for streamed in (False, True):
        with DuckDBStore.open(":memory:") as store:
            store.ingest_events([event(1), event(2)], cluster="prod")
            if streamed:
                store._expect_duplicates = keys_first
                blocks = _blocks_of(_texts(), [5, 1, 0, 10])
                result = store.append(BlockStream("prod", "mixed.log", iter(blocks)))
            else:
                monkeypatch.setattr("kaudit.store.duckdb._KEYS_FIRST_ROWS", 1000)
                result = _append(store, _texts(), keys_first)
                monkeypatch.setattr("kaudit.store.duckdb._KEYS_FIRST_ROWS", 4)
            results.append(result)
            states.append(_state(store))
            assert store.committed_seq() == 2 + 16 - 1
    assert results[0] == results[1]
    assert states[0] == states[1]
    assert [r[0] for r in states[1][1]] == [9, 10, 11, 12, 13, 16]


def test_an_empty_stream_stores_nothing_and_keeps_the_store_usable() -> None:
    with DuckDBStore.open(":memory:") as store:
        with store.bulk():
            assert store.append(BlockStream("prod", "empty.log", iter([]))) == AppendResult()
            store.ingest_events([event(1)], cluster="prod")
        assert store.count() == 1
