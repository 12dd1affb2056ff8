"""The events table: SLS column names and types, identity, retention, readers and the lock."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kaudit.errors import StoreError
from kaudit.event.batch import RawBatch
from kaudit.store.base import CompiledQuery
from kaudit.store.duckdb import DuckDBStore
from kaudit.store.schema import COLUMNS

from .conftest import event


def _one(store: DuckDBStore, sql: str) -> tuple[object, ...]:
    rows = store.execute(CompiledQuery(sql)).rows
    assert len(rows) == 1
    return rows[0]


def test_columns_carry_sls_names_and_types() -> None:
    with DuckDBStore.open(":memory:") as store:
        ev = event(
            3,
            sourceIPs=["203.0.113.9", "10.0.0.1"],
            impersonatedUser={"username": "bob"},
            annotations={
                "authorization.k8s.io/decision": "forbid",
                "authorization.k8s.io/reason": "",
                "pod-security.kubernetes.io/enforce-policy": "restricted:latest",
            },
            responseStatus={
                "metadata": {},
                "status": "Failure",
                "reason": "Forbidden",
                "code": 403,
            },
        )
        store.ingest_events([ev], cluster="prod")
        cols = [c[0] for c in store.execute(CompiledQuery("DESCRIBE events")).rows]
        assert [c.name for c in COLUMNS] == cols[: len(COLUMNS)]
        row = _one(
            store,
            'SELECT cluster, __time__, "user.username", "responseStatus.code", '
            '"responseStatus.reason", sourceIPs, json_array_length(sourceIPs), '
            '"user.groups", "impersonatedUser.username", '
            '"annotations.authorization.k8s.io/decision", '
            "json_extract_string(annotations, '$.\"pod-security.kubernetes.io/enforce-policy\"'), "
            "stageTimestamp, requestReceivedTimestamp FROM events",
        )
    assert row[0] == "prod"
    assert row[1] == int(datetime(2025, 1, 1, 0, 0, 3, tzinfo=UTC).timestamp())
    assert row[2] == "system:serviceaccount:default:web"
    assert row[3] == 403 and isinstance(row[3], int)
    assert row[4] == "Forbidden"
    assert row[5] == '["203.0.113.9","10.0.0.1"]' and row[6] == 2
    assert row[7] == '["system:serviceaccounts","system:authenticated"]'
    assert row[8] == "bob" and row[9] == "forbid" and row[10] == "restricted:latest"
    assert row[11] == datetime(2025, 1, 1, 0, 0, 3, 223456)  # microseconds kept
    assert row[12] == datetime(2025, 1, 1, 0, 0, 3, 123456)


@pytest.mark.parametrize(
    "annotations",
    [
        {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": 'a "b" é'},
        {"authorization.k8s.io/decision": 1, "authorization.k8s.io/reason": {"x": [1, 2]}},
        {"authorization.k8s.io/decision": None, "authorization.k8s.io/reason": True},
        {"Authorization.k8s.io/decision": "allow"},  # another key
        {},
        "not an object",
        ["allow"],
        None,
    ],
)
def test_annotation_columns_hold_what_the_annotations_object_holds(annotations: object) -> None:
    """The two annotations with columns are read at ingest as fields, not from the object
    written out as text: each column is what reading the key from the object gives."""
    with DuckDBStore.open(":memory:") as store:
        store.ingest_events([event(1, annotations=annotations)])
        cols = (
            '"annotations.authorization.k8s.io/decision"',
            '"annotations.authorization.k8s.io/reason"',
        )
        from_object = [f"json_extract_string(annotations, '$.\"{c[13:-1]}\"')" for c in cols]
        got = _one(store, f"SELECT {', '.join(cols)}, {', '.join(from_object)} FROM events")
        assert got[:2] == got[2:]
        if isinstance(annotations, dict) and "authorization.k8s.io/decision" in annotations:
            assert got[0] is not None or annotations["authorization.k8s.io/decision"] is None


def test_offsets_and_nanoseconds_are_normalised_to_utc_micros() -> None:
    with DuckDBStore.open(":memory:") as store:
        store.ingest_events([event(1, stageTimestamp="2025-01-01T08:00:00.123456789+08:00")])
        (ts,) = _one(store, "SELECT stageTimestamp FROM events")
    assert ts == datetime(2025, 1, 1, 0, 0, 0, 123456)


def test_identity_is_cluster_audit_id_stage_and_time() -> None:
    with DuckDBStore.open(":memory:") as store:
        a = store.ingest_events([event(1), event(1)], cluster="a")
        assert (a.stored, a.duplicates) == (1, 1)
        # the same request in another cluster, or at another stage, is another event
        assert store.ingest_events([event(1)], cluster="b").stored == 1
        assert store.ingest_events([event(1, stage="RequestReceived")], cluster="a").stored == 1
        # an exact re-send (webhook retry) is a duplicate
        assert store.ingest_events([event(1)], cluster="a").duplicates == 1
        assert store.count() == 3


def test_prune_deletes_only_old_events() -> None:
    now = datetime.now(UTC)
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    old = event(1, stageTimestamp=(now - timedelta(days=10)).strftime(fmt))
    new = event(2, stageTimestamp=(now - timedelta(hours=1)).strftime(fmt))
    with DuckDBStore.open(":memory:") as store:
        store.ingest_events([old, new])
        assert store.prune(now - timedelta(days=7)) == 1
        assert [e["auditID"] for e in store.iter_events()] == [new["auditID"]]


def test_readers_run_while_the_writer_appends(tmp_path: Path) -> None:
    store = DuckDBStore.open(tmp_path / "k.duckdb")
    errors: list[BaseException] = []
    counts: list[int] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                counts.append(store.count())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    for b in range(20):
        batch = RawBatch("default", "t")
        for i in range(200):
            import json

            batch.add(json.dumps(event(b * 1000 + i)), i + 1)
        store.append(batch)
    stop.set()
    reader.join()
    total = store.count()
    store.close()
    assert not errors and total == 4000
    assert counts == sorted(counts) and counts  # readers only ever see whole batches


def test_a_second_writer_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "k.duckdb"
    DuckDBStore.open(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time; from kaudit.store.duckdb import DuckDBStore; "
            f"s=DuckDBStore.open({str(path)!r}); print('ready', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match="in use by another kaudit process"):
            DuckDBStore.open(path)
    finally:
        holder.kill()
        holder.wait()


def test_prune_uses_the_configured_retention(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kaudit.cli.main import build

    now = datetime.now(UTC)
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    db = tmp_path / "k.duckdb"
    with DuckDBStore.open(db) as store:
        store.ingest_events(
            [
                event(1, stageTimestamp=(now - timedelta(days=40)).strftime(fmt)),
                event(2, stageTimestamp=(now - timedelta(days=2)).strftime(fmt)),
            ]
        )
    cfg = tmp_path / "kaudit.yaml"
    cfg.write_text("retention: 30d\n")
    runner = CliRunner()
    res = runner.invoke(build(), ["prune", "--db", str(db), "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("deleted 1 events")
    res = runner.invoke(build(), ["prune", "--db", str(db)])
    assert res.exit_code == 1 and "--older-than" in res.output
    cfg.write_text("retention: soon\n")
    res = runner.invoke(build(), ["prune", "--db", str(db), "--config", str(cfg)])
    assert res.exit_code == 1 and "retention: not a duration" in res.output


def test_server_retention_deletes_old_events(tmp_path: Path) -> None:
    from kaudit.serve.app import Runtime
    from kaudit.serve.config import parse_config

    now = datetime.now(UTC)
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    db = tmp_path / "k.duckdb"
    with DuckDBStore.open(db) as store:
        store.ingest_events(
            [
                event(1, stageTimestamp=(now - timedelta(days=9)).strftime(fmt)),
                event(2, stageTimestamp=(now - timedelta(hours=1)).strftime(fmt)),
            ]
        )
    cfg = parse_config(f"db: {db}\nretention: 7d\n")
    rt = Runtime(cfg, write_server_file=False)
    rt.start()
    try:
        # the retention thread prunes at start; a second round finds nothing more to delete
        rt.prune_expired()
        assert rt.store is not None and rt.store.count() == 1
        assert rt.prune_expired() == 0
    finally:
        rt.stop()


def _rows(n: int, start: datetime, first: int = 0) -> list[dict[str, object]]:
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    return [
        event(i, stageTimestamp=(start + timedelta(seconds=i)).strftime(fmt))
        for i in range(first, first + n)
    ]


def test_seq_orders_arrival_and_survives_a_compacting_prune(tmp_path: Path) -> None:
    """Streaming detection marks how far it read by `seq`: rows stored after the mark are
    found after a prune has deleted (and a checkpoint compacted) everything before them."""
    now = datetime.now(UTC)
    with DuckDBStore.open(tmp_path / "k.duckdb") as store:
        store.ingest_events(_rows(130_000, now - timedelta(days=30)))  # more than a row group
        mark = store.committed_seq()
        assert mark == 129_999
        store.ingest_events(_rows(5, now - timedelta(hours=1), first=200_000))
        assert store.prune(now - timedelta(days=7)) == 130_000
        after = store.reader().execute("SELECT auditID FROM events WHERE seq > ?", [mark])
        assert len(after.fetchall()) == 5
        assert store.committed_seq() == mark + 5
    with DuckDBStore.open(tmp_path / "k.duckdb") as store:  # the counter continues
        assert store.committed_seq() == mark + 5
        store.ingest_events(_rows(1, now, first=300_000))
        assert store.committed_seq() == mark + 6


def test_seq_is_only_committed_with_the_transaction() -> None:
    with DuckDBStore.open(":memory:") as store:
        store.begin()
        store.ingest_events(_rows(3, datetime.now(UTC)))
        assert store.committed_seq() == -1  # readers must not skip past uncommitted rows
        store.commit()
        assert store.committed_seq() == 2


def test_a_schema_1_store_gets_seq_from_rowid(tmp_path: Path) -> None:
    import duckdb

    db = tmp_path / "old.duckdb"
    with DuckDBStore.open(db) as store:
        store.ingest_events(_rows(4, datetime.now(UTC)))
    con = duckdb.connect(str(db))  # make it what kaudit schema 1 wrote: no `seq`
    con.execute("DROP VIEW events")
    con.execute("ALTER TABLE event_rows DROP COLUMN seq")
    con.execute("UPDATE kaudit_meta SET value = '1' WHERE key = 'schema_version'")
    con.close()
    with DuckDBStore.open(db) as store:
        cur = store.reader()
        assert cur.execute("SELECT seq = rowid FROM events").fetchall() == [(True,)] * 4
        assert _one(store, "SELECT value FROM kaudit_meta WHERE key = 'schema_version'") == ("2",)
        assert store.committed_seq() == 3
