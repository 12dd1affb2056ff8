"""Secret values never reach the store; keys do, and the event says it was redacted."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

from kaudit.event.redact import MARKER, redact_event
from kaudit.store.base import CompiledQuery
from kaudit.store.duckdb import DuckDBStore

from .conftest import event, exported, write_ndjson

SECRET = {
    "kind": "Secret",
    "apiVersion": "v1",
    "metadata": {"name": "db", "namespace": "prod"},
    "type": "Opaque",
    "data": {"password": "aHVudGVyMg==", "user": "YWRtaW4="},
}


def _on_secret(n: int, verb: str, **bodies: Any) -> dict[str, Any]:
    return event(
        n,
        verb=verb,
        level="RequestResponse",
        requestURI="/api/v1/namespaces/prod/secrets/db",
        objectRef={"resource": "secrets", "namespace": "prod", "name": "db", "apiVersion": "v1"},
        **bodies,
    )


def _leaks(obj: Any) -> bool:
    text = json.dumps(obj)
    return "aHVudGVyMg==" in text or "YWRtaW4=" in text or "s3cr3t" in text


def test_create_update_get_are_redacted_keys_kept() -> None:
    for verb, bodies in [
        ("create", {"requestObject": SECRET, "responseObject": SECRET}),
        ("update", {"requestObject": {**SECRET, "stringData": {"token": "s3cr3t"}}}),
        ("get", {"responseObject": SECRET}),
    ]:
        out, flagged = redact_event(_on_secret(1, verb, **bodies))
        assert flagged and not _leaks(out)
        for body in ("requestObject", "responseObject"):
            if body in bodies:
                assert out[body]["data"] == {"password": MARKER, "user": MARKER}
                assert out[body]["metadata"] == SECRET["metadata"]


def test_patches_are_redacted() -> None:
    json_patch = [
        {"op": "replace", "path": "/data/password", "value": "aHVudGVyMg=="},
        {"op": "add", "path": "/metadata/labels/a", "value": "keep-me"},
        {"op": "add", "path": "/stringData", "value": {"token": "s3cr3t"}},
    ]
    out, flagged = redact_event(_on_secret(1, "patch", requestObject=json_patch))
    assert flagged and not _leaks(out)
    assert out["requestObject"][1]["value"] == "keep-me"
    assert out["requestObject"][2]["value"] == {"token": MARKER}
    merge = {"data": {"password": "aHVudGVyMg=="}}
    out, flagged = redact_event(_on_secret(2, "patch", requestObject=merge))
    assert flagged and out["requestObject"] == {"data": {"password": MARKER}}


def test_lists_and_nested_secrets_are_redacted() -> None:
    item = {k: v for k, v in SECRET.items() if k not in ("kind", "apiVersion")}
    secret_list = {"kind": "SecretList", "apiVersion": "v1", "items": [item, item]}
    out, flagged = redact_event(_on_secret(1, "list", responseObject=secret_list))
    assert flagged and not _leaks(out)
    # a generic List (kubectl apply -f of many kinds) carries a Secret among other objects
    mixed = {"kind": "List", "items": [{"kind": "ConfigMap", "data": {"a": "b"}}, SECRET]}
    ev = event(2, verb="create", requestObject=mixed)
    out, flagged = redact_event(ev)
    assert flagged and not _leaks(out)
    assert out["requestObject"]["items"][0]["data"] == {"a": "b"}  # ConfigMaps are not secrets


def test_events_without_secrets_are_untouched() -> None:
    ev = event(1, verb="create", requestObject={"kind": "ConfigMap", "data": {"a": "b"}})
    out, flagged = redact_event(ev)
    assert out is ev and not flagged


def test_ingest_redacts_and_marks(kaudit: Callable[..., Result], db: Path, tmp_path: Path) -> None:
    evs = [_on_secret(1, "create", requestObject=SECRET, responseObject=SECRET), event(2)]
    write_ndjson(tmp_path / "s.log", evs)
    kaudit("ingest", "--db", str(db), str(tmp_path / "s.log"))
    rows = exported(kaudit, db)
    assert len(rows) == 2 and not _leaks(rows)
    assert db.read_bytes().find(b"aHVudGVyMg==") == -1  # not even in the file
    with DuckDBStore.open(db, read_only=True) as store:
        res = store.execute(CompiledQuery("SELECT auditID, redacted FROM events ORDER BY 1"))
    assert [r[1] for r in res.rows] == [True, False]


def test_redaction_can_be_switched_off(
    kaudit: Callable[..., Result], db: Path, tmp_path: Path
) -> None:
    evs = [_on_secret(1, "create", requestObject=SECRET)]
    write_ndjson(tmp_path / "s.log", evs)
    kaudit("ingest", "--db", str(db), "--no-redact", str(tmp_path / "s.log"))
    assert exported(kaudit, db) == evs
