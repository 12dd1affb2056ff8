"""One shared sample for the sample-generator tests: generated once per session (fast)."""

from __future__ import annotations

import functools
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from kaudit.sample.generate import InjectedAttack, Summary, write_ndjson

START = datetime(2025, 1, 1, tzinfo=UTC)
SPAN = timedelta(hours=24)
N = 40_000
SEED = 11


@functools.cache
def sample() -> tuple[bytes, list[dict[str, Any]], list[InjectedAttack], Summary]:
    """(raw NDJSON, parsed events, ground truth, summary) of N events from SEED."""
    out = io.BytesIO()
    truth_out = io.BytesIO()
    summary = write_ndjson(out, N, SEED, START, truth_out=truth_out, span=SPAN)
    raw = out.getvalue()
    events = [orjson.loads(line) for line in raw.splitlines()]
    truth = [
        InjectedAttack(
            kind=d["kind"],
            audit_id=d["auditID"],
            campaign=d["campaign"],
            time=d["time"],
            user=d["user"],
            source_ip=d["sourceIP"],
            detail=d["detail"],
        )
        for d in map(orjson.loads, truth_out.getvalue().splitlines())
    ]
    return raw, events, truth, summary


def by_audit_id() -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for ev in sample()[1]:
        groups.setdefault(ev["auditID"], []).append(ev)
    return groups
