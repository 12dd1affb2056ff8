"""An import hands each input's blocks to the store as they are decoded: what the store does
when decoding fails part way."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from kaudit.errors import InputError
from kaudit.event import decode
from kaudit.event.batch import Reject
from kaudit.event.decode import DecodeOptions, Decoder, Input, expand_inputs
from kaudit.sources import bulk
from kaudit.sources.bulk import ReadAhead, ingest
from kaudit.store.duckdb import DuckDBStore

from .conftest import event


def _file(path: Path, first: int, n: int) -> Path:
    path.write_text("".join(json.dumps(event(i)) + "\n" for i in range(first, first + n)))
    return path


def _events_by_source(store: DuckDBStore) -> dict[str, int]:
    rows = store.reader().execute("SELECT source, count(*) FROM events GROUP BY source").fetchall()
    return {Path(s).name: n for s, n in rows}


def _failing(error: BaseException, after: int) -> Any:
    """`Decoder.stream` that raises `error` after `after` blocks of an input named bad*."""
    real = Decoder.stream

    def stream(self: Decoder, inp: Input) -> Iterator[tuple[pa.RecordBatch | None, list[Reject]]]:
        for i, piece in enumerate(real(self, inp)):
            if Path(inp.name).name.startswith("bad") and i == after:
                raise error
            yield piece

    return stream


def test_a_user_error_part_way_keeps_what_was_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The input is reported as unreadable; what was read of it, and the inputs around it
    (in the same insert statement), are stored."""
    monkeypatch.setattr(decode, "_BLOCK", 1024)  # a few events per block
    monkeypatch.setattr(Decoder, "stream", _failing(InputError("the disk went away"), after=3))
    a = _file(tmp_path / "a.log", 0, 20)
    bad = _file(tmp_path / "bad.log", 100, 200)
    c = _file(tmp_path / "c.log", 1000, 20)
    with DuckDBStore.open(tmp_path / "k.duckdb") as store:
        report = ingest(store, expand_inputs([str(a), str(bad), str(c)]), DecodeOptions())
        by_source = _events_by_source(store)
        assert by_source["a.log"] == 20 and by_source["c.log"] == 20
        assert 0 < by_source["bad.log"] < 200  # the blocks before the error
        assert report.totals.stored == store.count()
        assert report.totals.rejected_by_reason == {"unreadable": 1}
        (reject,) = store.rejects()
        assert reject["source"] == str(bad) and "disk went away" in reject["message"]


def test_any_other_error_rolls_the_part_back_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decode, "_BLOCK", 1024)
    monkeypatch.setattr(Decoder, "stream", _failing(RuntimeError("a bug"), after=40))
    bad = _file(tmp_path / "bad.log", 0, 400)
    with DuckDBStore.open(tmp_path / "k.duckdb") as store:
        with pytest.raises(RuntimeError, match="a bug"):
            ingest(store, expand_inputs([str(bad)]), DecodeOptions(), commit_every=20)
        # the parts committed before the one that failed are kept, that one is not
        kept = store.count()
        assert kept and kept % 20 == 0 and kept < 2 * 40  # (a block holds one or two events)
        assert store.committed_seq() + 1 == kept


def test_events_read_into_reused_buffers_are_stored_as_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read buffers go back to the reader once the store lets go of them: every event must
    still be stored exactly as it was in the file."""
    monkeypatch.setattr(decode, "_BLOCK", 4096)  # hundreds of blocks, few buffers
    src = _file(tmp_path / "audit.log", 0, 3000)
    with DuckDBStore.open(tmp_path / "k.duckdb") as store:
        report = ingest(store, expand_inputs([str(src)]), DecodeOptions(), commit_every=500)
        assert report.totals.stored == 3000
        stored = sorted(store.iter_raw())
    assert stored == sorted(src.read_text().splitlines())


def test_progress_counts_every_event_and_reject_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ticks come from whichever thread DuckDB pulls a block on."""
    monkeypatch.setattr(decode, "_BLOCK", 4096)
    src = _file(tmp_path / "audit.log", 0, 500)
    with src.open("a") as f:
        f.write("not json\n\xff\n")
    ticks: list[tuple[str, int]] = []
    with DuckDBStore.open(tmp_path / "k.duckdb") as store:
        report = ingest(
            store,
            expand_inputs([str(src)]),
            DecodeOptions(),
            progress=lambda inp, n: ticks.append((inp.name, n)),
            commit_every=100,
        )
    assert sum(n for _, n in ticks) == report.totals.received == 502
    assert {name for name, _ in ticks} == {str(src)}


def test_small_inputs_share_a_commit_and_are_judged_together(tmp_path: Path) -> None:
    """Inputs smaller than a commit go into one transaction (a commit of less than a row group
    goes through DuckDB's WAL); an event repeated in a later input of the same transaction is
    still a duplicate, and every input's rejects are kept."""
    files = [_file(tmp_path / f"audit-{i}.log", 10 * i, 10) for i in range(5)]
    again = _file(tmp_path / "audit-5.log", 0, 10)  # audit-0.log's events once more
    with (tmp_path / "audit-6.log").open("w") as f:
        f.write("not json\n" + json.dumps(event(500)) + "\n")
    commits: list[int] = []
    with DuckDBStore.open(tmp_path / "k.duckdb") as store:
        inputs = expand_inputs([*map(str, files), str(again), str(tmp_path / "audit-6.log")])
        count = lambda: commits.append(store.count())  # noqa: E731
        report = ingest(store, inputs, DecodeOptions(), after_commit=count, commit_every=25)
        assert commits == [30, 50, 51]  # after 3 inputs (30 events), 3 more (30), the last
        assert (report.totals.stored, report.totals.duplicates) == (51, 10)
        assert report.totals.rejected_by_reason == {"invalid_json": 1}
        assert store.reader().execute("SELECT count(*) FROM events").fetchone() == (51,)
        assert [r["source"] for r in store.rejects()] == [str(tmp_path / "audit-6.log")]


def test_an_error_rolls_back_the_inputs_not_yet_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupted run keeps its commits; what it read since the last one is read again by
    the next run (appends are idempotent)."""
    monkeypatch.setattr(Decoder, "stream", _failing(RuntimeError("a bug"), after=0))
    good = [_file(tmp_path / f"a-{i}.log", 10 * i, 10) for i in range(4)]
    bad = _file(tmp_path / "bad.log", 100, 10)
    names = [*map(str, good), str(bad)]
    with DuckDBStore.open(tmp_path / "k.duckdb") as store:
        with pytest.raises(RuntimeError, match="a bug"):
            ingest(store, expand_inputs(names), DecodeOptions(), commit_every=25)
        assert store.count() == 30  # the commit after 3 inputs; a-3.log was not committed
    monkeypatch.undo()
    with DuckDBStore.open(tmp_path / "k.duckdb") as store:
        report = ingest(store, expand_inputs(names), DecodeOptions())
        assert (report.totals.stored, report.totals.duplicates, store.count()) == (20, 30, 50)


def test_inputs_sharing_a_statement_keep_their_own_sources_and_lines(tmp_path: Path) -> None:
    """Small inputs are stored by one insert statement; each row and each reject still names
    its file, and a reject its line there, whether the store inserts first or reads the keys
    first (a directory read again)."""
    a = _file(tmp_path / "a.log", 0, 3)
    b = tmp_path / "b.log"
    b.write_text(json.dumps(event(10)) + "\n[1]\n" + json.dumps(event(11)) + "\n")
    c = tmp_path / "c.log"
    c.write_text("{oops\n" + json.dumps(event(20)) + "\n")
    names = [str(a), str(b), str(c)]
    with DuckDBStore.open(tmp_path / "k.duckdb") as store:
        report = ingest(store, expand_inputs(names), DecodeOptions())
        assert report.totals.stored == 6
        assert _events_by_source(store) == {"a.log": 3, "b.log": 2, "c.log": 1}
        got = sorted((Path(r["source"]).name, r["line"], r["reason"]) for r in store.rejects())
        assert got == [("b.log", 2, "not_an_object"), ("c.log", 1, "invalid_json")]
        # read again, with a new file: the first part is all duplicates, then keys first
        d = tmp_path / "d.log"
        d.write_text(json.dumps(event(30)) + "\n" + "[2]\n")
        report = ingest(store, expand_inputs([*names, str(d)]), DecodeOptions(), commit_every=3)
        assert (report.totals.stored, report.totals.duplicates) == (1, 6)
        assert _events_by_source(store) == {"a.log": 3, "b.log": 2, "c.log": 1, "d.log": 1}
        new = [(Path(r["source"]).name, r["line"]) for r in store.rejects()]
        assert sorted(new).count(("d.log", 2)) == 1


def _counting(produced: list[int], stop_at: int | None = None) -> Iterator[int]:
    """0, 1, 2, ... noting each one as it is made; raises at `stop_at`."""
    i = 0
    while True:
        if i == stop_at:
            raise ValueError(f"broken at {i}")
        produced.append(i)
        yield i
        i += 1


def _made(produced: list[int], n: int) -> int:
    """How many the producer has made once it has made `n` (however slow the machine) and then
    had time to make more (it makes them at once)."""
    deadline = time.monotonic() + 30
    while len(produced) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    return len(produced)


def test_read_ahead_makes_at_most_depth_items_beyond_the_callers_and_follows_a_new_depth() -> None:
    produced: list[int] = []
    with ReadAhead(_counting(produced), depth=2) as ahead:
        assert _made(produced, 3) == 3  # the caller's next one, and two beyond it
        assert next(ahead) == 0
        assert _made(produced, 3) == 3  # the caller works on 0: 1 and 2 are ready
        assert next(ahead) == 1
        assert _made(produced, 4) == 4  # on 1: 2 and 3
        ahead.depth = 6
        assert _made(produced, 8) == 8  # on 1: 2 to 7
        ahead.depth = 1
        assert [next(ahead) for _ in range(5)] == [2, 3, 4, 5, 6]
        assert _made(produced, 8) == 8  # on 6: 7 was made already; none more yet
        assert next(ahead) == 7
        assert _made(produced, 9) == 9  # on 7: only 8 is made beyond it
    # closed: the producer has stopped for good
    assert _made(produced, 9) == 9


def test_read_ahead_raises_the_producers_error_in_order() -> None:
    produced: list[int] = []
    with ReadAhead(_counting(produced, stop_at=3), depth=8) as ahead:
        assert [next(ahead) for _ in range(3)] == [0, 1, 2]
        with pytest.raises(ValueError, match="broken at 3"):
            next(ahead)


def test_an_input_read_again_is_decoded_further_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that reads the keys first gathers many blocks before it stores any: the decoder
    then works `READ_AHEAD` blocks ahead, and only a few when the store inserts as it reads."""
    depths: list[int] = []

    class Recording(ReadAhead[Any]):
        @ReadAhead.depth.setter  # type: ignore[attr-defined, untyped-decorator]
        def depth(self, depth: int) -> None:
            depths.append(depth)
            ReadAhead.depth.fset(self, depth)  # type: ignore[attr-defined]

    monkeypatch.setattr(bulk, "ReadAhead", Recording)
    monkeypatch.setattr(bulk, "FIRST_PART", 10)  # an input's first part: 10 events
    monkeypatch.setattr(decode, "_BLOCK", 1024)  # a few events per block
    path = _file(tmp_path / "audit.log", 0, 30)
    with DuckDBStore.open(tmp_path / "k.duckdb") as store:
        ingest(store, expand_inputs([str(path)]), DecodeOptions(), commit_every=10)
        assert set(depths) == {bulk.STREAM_AHEAD}
        depths.clear()
        report = ingest(store, expand_inputs([str(path)]), DecodeOptions(), commit_every=10)
        assert report.totals.duplicates == 30
        # the first part shows the input is stored already; the store reads the keys first
        assert depths[0] == bulk.STREAM_AHEAD and len(depths) >= 3
        assert set(depths[1:]) == {bulk.READ_AHEAD}


def test_the_first_input_into_a_store_without_its_cluster_is_not_cut_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An input's first part is short, so that a file read again is found out early; into a
    store holding no event of the cluster, the first input cannot be one read again: one
    statement takes it whole (each statement ends with DuckDB's work on one thread)."""
    received: list[int] = []
    real = DuckDBStore.append

    def append(self: DuckDBStore, batch: Any) -> Any:
        result = real(self, batch)
        if result.received:
            received.append(result.received)
        return result

    monkeypatch.setattr(DuckDBStore, "append", append)
    monkeypatch.setattr(bulk, "FIRST_PART", 10)
    monkeypatch.setattr(decode, "_BLOCK", 1024)  # a few events per block
    first, second = _file(tmp_path / "a.log", 0, 30), _file(tmp_path / "b.log", 30, 30)
    with DuckDBStore.open(tmp_path / "k.duckdb") as store:
        store.ingest_events([event(100)], cluster="other")  # another cluster's: not this one's
        received.clear()
        ingest(store, expand_inputs([str(first), str(second)]), DecodeOptions(), commit_every=100)
        # the first input whole, then the second's first blocks, cut short
        assert 40 <= received[0] < 50 and sum(received) == 60
        received.clear()
        third = _file(tmp_path / "c.log", 60, 30)
        ingest(store, expand_inputs([str(third)]), DecodeOptions(), commit_every=100)
        assert 10 <= received[0] < 20  # the store holds the cluster now
        assert store.count() == 91
