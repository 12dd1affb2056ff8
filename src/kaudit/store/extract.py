"""SQL that turns raw event JSON text into the events table's columns, in one vectorised pass.

Every path into the store goes through this one extraction (files, stdin, the webhook), so a
column means the same thing whichever way an event arrived. The event text itself is kept in the
`raw` column; columns are derived from it, never the other way round.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kaudit.store.schema import COLUMNS, Column

# Fallback timestamps of v1beta1/v1alpha1 events (spec k8s-audit §8.3).
_EXTRA_PATHS: dict[str, Any] = {
    "kind": "VARCHAR",
    "apiVersion": "VARCHAR",
    "timestamp": "VARCHAR",
    "metadata": {"creationTimestamp": "VARCHAR"},
}


def _json_path(path: tuple[str, ...]) -> str:
    return "$." + ".".join(json.dumps(p) for p in path)


def _whole_annotations(columns: Sequence[Column]) -> bool:
    return any(c.path == ("annotations",) for c in columns)


def transform_spec(columns: Sequence[Column] = COLUMNS) -> str:
    """The json_transform structure: the path of every one of `columns`, read once per event.
    A store that reads the bodies from the event's text only when asked leaves them out: a
    JSON-typed field is written out again as text by the transform (3 % of an ingest's CPU).
    Without the whole `annotations` object, the annotations that have columns are read as
    fields, not written out and parsed twice (0.3 s of CPU per 1M events)."""
    spec: dict[str, Any] = json.loads(json.dumps(_EXTRA_PATHS))
    whole = _whole_annotations(columns)
    for col in (c for c in columns if c.path is not None):
        assert col.path is not None
        if col.path[0] == "annotations":
            if whole:
                spec["annotations"] = "JSON"
            elif len(col.path) > 1:
                spec.setdefault("annotations", {})[col.path[1]] = "VARCHAR"
            continue
        node = spec
        for part in col.path[:-1]:
            node = node.setdefault(part, {})
        node[col.path[-1]] = "JSON" if col.sql_type == "JSON" else "VARCHAR"
    return json.dumps(spec)


def key_spec() -> str:
    """The small json_transform structure of the first pass: identity, time and what tells an
    audit event, nothing else (the containers only as JSON, for their presence)."""
    spec: dict[str, Any] = json.loads(json.dumps(_EXTRA_PATHS))
    for name in ("auditID", "stage", "verb", "requestURI", "level"):
        spec[name] = "VARCHAR"
    for name in ("stageTimestamp", "requestReceivedTimestamp"):
        spec[name] = "VARCHAR"
    for name in ("user", "objectRef", "sourceIPs"):
        spec[name] = "JSON"
    spec["responseStatus"] = {"code": "VARCHAR"}
    return json.dumps(spec)


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _access(path: tuple[str, ...]) -> str:
    return "t" + "".join(f"[{_quote(p)}]" for p in path)


def _timestamp(expr: str) -> str:
    # Go's zero time marks an unset MicroTime in old event versions (§8.3).
    cast = f"CAST(TRY_CAST({expr} AS TIMESTAMPTZ) AS TIMESTAMP)"
    return f"NULLIF({cast}, TIMESTAMP '0001-01-01 00:00:00')"


def column_exprs(columns: Sequence[Column] = COLUMNS) -> dict[str, str]:
    """SQL for each of `columns`, over `t` (`transform_spec` of the same columns), `text`,
    `cluster`, ..."""
    whole = _whole_annotations(columns)
    received_ts = _timestamp(_access(("requestReceivedTimestamp",)))
    received = f"COALESCE({received_ts}, {_timestamp('t.timestamp')})"
    stage_ts = (
        f"COALESCE({_timestamp(_access(('stageTimestamp',)))}, "
        f"{_timestamp('t.metadata.creationTimestamp')}, {received})"
    )
    exprs: dict[str, str] = {}
    for col in columns:
        if col.name == "cluster":
            exprs[col.name] = "cluster"
        elif col.name == "__time__":
            exprs[col.name] = f"CAST(floor(epoch({stage_ts})) AS BIGINT)"
        elif col.name == "redacted":
            exprs[col.name] = "redacted"
        elif col.name == "requestReceivedTimestamp":
            exprs[col.name] = received
        elif col.name == "stageTimestamp":
            exprs[col.name] = stage_ts
        elif col.name == "auditID":
            # Hand-written samples may lack an auditID; a digest of the event keeps them
            # distinct and idempotent (the raw event is not changed).
            exprs[col.name] = (
                "CASE WHEN t.auditID IS NULL OR t.auditID = '' "
                "THEN 'kaudit-' || md5(text) ELSE t.auditID END"
            )
        elif col.name == "objectRef.apiGroup":
            # v1alpha1: no apiGroup; objectRef.apiVersion is "group/version" (§8.3)
            exprs[col.name] = (
                "CASE WHEN t.objectRef.apiGroup IS NULL AND t.apiVersion = 'audit.k8s.io/v1alpha1'"
                " AND contains(t.objectRef.apiVersion, '/') THEN "
                "regexp_extract(t.objectRef.apiVersion, '^(.*)/[^/]*$', 1) "
                "ELSE t.objectRef.apiGroup END"
            )
        elif col.path is not None and col.path[0] == "annotations" and len(col.path) > 1:
            exprs[col.name] = (
                f"json_extract_string(t.annotations, {_quote(_json_path(col.path[1:]))})"
                if whole
                else _access(col.path)
            )
        elif col.path is not None:
            acc = _access(col.path)
            exprs[col.name] = f"TRY_CAST({acc} AS INTEGER)" if col.sql_type == "INTEGER" else acc
    return exprs
