"""The webhook journal (kaudit.sources.journal): what is acknowledged is on disk, reaches the
store exactly once across restarts and store failures, and is deleted once stored."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from kaudit.errors import StoreError
from kaudit.sources import checkpoint
from kaudit.sources.journal import Journal, JournalFull, JournalReader, Run, records, runs


class FakeStore:
    """What the writer does with a job: keep its entries and its checkpoint, atomically;
    fails the next `fail` jobs."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, bytes]] = []
        self.cp: checkpoint.Checkpoint | None = None
        self.fail = 0
        self.lock = threading.Lock()

    def submit(self, run: Run, cp: checkpoint.Checkpoint) -> Any:
        fut: Future[None] = Future()
        with self.lock:
            if self.fail:
                self.fail -= 1
                fut.set_exception(StoreError("disk full"))
                return fut
            texts = run.events.column("text").to_pylist()
            self.texts += [(run.cluster, t.encode()) for t in texts]
            self.cp = cp
        fut.set_result(None)
        return fut


def _events(cluster: str, first: int, n: int) -> bytes:
    texts = [f'{{"auditID":"{cluster}-{i}","verb":"get"}}' for i in range(first, first + n)]
    return records(cluster, texts, [i % 7 == 0 for i in range(n)])


def _wait(cond: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_acknowledged_lines_reach_the_store_once_across_restarts(tmp_path: Path) -> None:
    store = FakeStore()
    journal = Journal(tmp_path, segment_bytes=4096)  # a new segment every few requests
    reader = JournalReader(journal, store.submit, None, max_events=50)
    reader.start()
    for i in range(20):  # two clusters, interleaved
        journal.append(_events("prod" if i % 2 else "dev", i * 10, 10), 10).result(5)
    assert reader.caught_up(10)
    reader.stop()
    journal.close()
    assert len(store.texts) == 200 and len(set(store.texts)) == 200
    assert len(journal.segments()) <= 2  # stored segments are deleted
    # a restart from the stored checkpoint reads only what follows it
    journal = Journal(tmp_path, segment_bytes=4096)
    journal.append(_events("prod", 1000, 5), 5).result(5)
    reader = JournalReader(journal, store.submit, store.cp, max_events=50)
    reader.start()
    assert reader.caught_up(10)
    reader.stop()
    journal.close()
    assert len(store.texts) == 205 and len(set(store.texts)) == 205


def test_a_failed_store_is_retried_from_the_last_commit(tmp_path: Path) -> None:
    store = FakeStore()
    store.fail = 2
    journal = Journal(tmp_path)
    reader = JournalReader(journal, store.submit, None, max_events=7, retry_s=0.05)
    reader.start()
    for i in range(5):
        journal.append(_events("prod", i * 10, 10), 10).result(5)
    _wait(lambda: len(store.texts) == 50)
    assert reader.caught_up(5) and reader.failures == 2
    reader.stop()
    journal.close()
    assert sorted(store.texts) == sorted(set(store.texts))


def test_an_event_larger_than_a_read_is_read_whole(tmp_path: Path) -> None:
    store = FakeStore()
    journal = Journal(tmp_path)
    big = '{"auditID":"big","requestObject":"' + "x" * 3_000_000 + '"}'
    journal.append(records("prod", [big], [False]), 1).result(5)
    reader = JournalReader(journal, store.submit, None, max_events=1)
    reader.start()
    _wait(lambda: len(store.texts) == 1)
    reader.stop()
    journal.close()
    assert store.texts[0][1] == big.encode()


def test_a_full_journal_refuses_instead_of_growing(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_pending_bytes=600)  # nobody reads it
    journal.append(_events("prod", 0, 10), 10).result(5)
    with pytest.raises(JournalFull):
        journal.append(_events("prod", 10, 10), 10)
    journal.close()
    with pytest.raises(JournalFull):  # closed: shutting down
        Journal.append(journal, b"x\n", 1)


def test_records_come_back_as_runs_of_one_cluster_with_flag_and_text() -> None:
    data = (
        records('we\t"ird', ['{"a":"b\\tc"}', '{"b":1}'], [True, False])
        + records("prod", ['{"c":"\té"}'], [False])
        + records('we\t"ird', ["{}"], [True])
    )
    got = [
        (r.cluster, r.events.column("text").to_pylist(), r.events.column("redacted").to_pylist())
        for r in runs(data)
    ]
    assert got == [
        ('we\t"ird', ['{"a":"b\\tc"}', '{"b":1}'], [True, False]),
        ("prod", ['{"c":"\té"}'], [False]),
        ('we\t"ird', ["{}"], [True]),
    ]
    assert sum(r.nbytes for r in runs(data)) == len(data)
    assert [r.lines for r in runs(data, limit=2)] == [2]  # at most `limit` lines


def test_a_damaged_journal_keeps_the_good_lines_and_sets_the_damaged_aside() -> None:
    data = records("prod", [b'{"a":1}', b'{"a":"\xff"}', b'{"a":3}'], [False] * 3)
    (run,) = runs(data)
    assert run.events.column("text").to_pylist() == ['{"a":1}', '{"a":3}']
    assert [r.reason for r in run.rejects] == ["not_utf8"]
    data = records("prod", ["{}"], [False]) + b"no head here\n" + b"5\t0\t{}\n"
    data += records("prod", ['{"b":2}'], [False])
    got = runs(data)
    assert [(r.cluster, r.events.num_rows, [j.reason for j in r.rejects]) for r in got] == [
        ("prod", 1, []),
        ("default", 0, ["damaged_journal_line"]),  # no tabs
        ("default", 0, ["damaged_journal_line"]),  # a head that is not a cluster name
        ("prod", 1, []),
    ]
    assert got[1].rejects[0].raw == "no head here"
    assert sum(r.nbytes for r in got) == len(data)


def test_the_webhook_acknowledges_while_the_store_is_busy(tmp_path: Path) -> None:
    """A real server on loopback whose single writer is held for 3 s (as a long DuckDB
    checkpoint would): a webhook request is still acknowledged at once, from the journal;
    once the writer is free, an API read waits for the journal's reader and sees the events."""
    import http.client

    import orjson
    import uvicorn
    import yaml

    from kaudit.sample.generate import generate
    from kaudit.serve.app import Runtime, create_app
    from kaudit.serve.auth import TokenStore, tokens_path
    from kaudit.serve.config import parse_config

    from .conftest import START, eventlist, free_port

    port = free_port()
    cfg = parse_config(
        yaml.safe_dump(
            {"db": str(tmp_path / "data" / "k.duckdb"), "port": port, "alerts": {"enabled": False}}
        )
    )
    tokens = TokenStore(tokens_path(tmp_path / "data"))
    ingest = tokens.create("ingest", "ingest", "t", "prod")[0]
    viewer = tokens.create("api", "viewer", "v")[0]
    rt = Runtime(cfg, write_server_file=False)
    server = uvicorn.Server(
        uvicorn.Config(create_app(cfg, rt), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait(lambda: server.started)

    def post(path: str, body: bytes, token: str) -> tuple[int, bytes, float]:
        t0 = time.perf_counter()
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        con.request("POST", path, body, headers)
        resp = con.getresponse()
        out = (resp.status, resp.read(), time.perf_counter() - t0)
        con.close()
        return out

    try:
        assert rt.writer is not None
        held = rt.writer.exclusive(lambda _s: time.sleep(3))  # the writer is busy for 3 s
        status, _, took = post("/audit/webhook", eventlist(list(generate(200, 5, START))), ingest)
        assert status == 200 and took < 1.5  # not the 3 s the store is held
        assert not held.done()
        held.result(10)
        query = orjson.dumps({"query": "* | select count(1) as n"})
        status, body, _ = post("/api/query", query, viewer)  # waits for the journal's reader
        assert status == 200 and orjson.loads(body)["rows"] == [[200]]
    finally:
        server.should_exit = True
        thread.join(30)


def test_a_line_torn_by_a_crash_is_skipped(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append(_events("prod", 0, 3), 3).result(5)
    journal.close()
    seg = journal.segments()[-1]
    with seg.open("ab") as f:  # killed in the middle of a write that was never acknowledged
        f.write(b'"prod"\t0\t{"auditID":"torn",')
    store = FakeStore()
    journal = Journal(tmp_path)  # the restart writes a new segment
    journal.append(_events("prod", 3, 2), 2).result(5)
    reader = JournalReader(journal, store.submit, None)
    reader.start()
    assert reader.caught_up(10)
    reader.stop()
    journal.close()
    assert [t for _, t in store.texts] == [
        f'{{"auditID":"prod-{i}","verb":"get"}}'.encode() for i in range(5)
    ]


def test_an_unusable_journal_directory_refuses_start_up_in_one_line(tmp_path: Path) -> None:
    import yaml

    from kaudit.serve.app import create_app
    from kaudit.serve.config import parse_config

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "journal").write_text("not a directory")
    cfg = parse_config(yaml.safe_dump({"db": str(tmp_path / "data" / "k.duckdb")}))
    with pytest.raises(StoreError, match=r"cannot use .*journal for the webhook journal"):
        create_app(cfg)
