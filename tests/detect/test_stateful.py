"""The stateful kinds compile to SQL over the store and fire on the events of their meaning."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kaudit.detect.compile import Window
from kaudit.detect.engine import _with_defaults, run_rule
from kaudit.detect.load import load_text
from kaudit.detect.model import RuleError
from kaudit.store.duckdb import DuckDBStore

HEAD = "id: x\ntitle: t\ndescription: d\nseverity: medium\nmitre: [T1613]\n"
T0 = 1767225600  # 2026-01-01T00:00:00Z


def ev(i: int, sec: int, **kw: Any) -> dict[str, Any]:
    m, s = divmod(sec, 60)
    h, m = divmod(m, 60)
    base = {"auditID": f"e{i}", "stageTimestamp": f"2026-01-01T{h:02d}:{m:02d}:{s:02d}Z"}
    return _with_defaults({**base, **kw}, i)


def hits(rule_text: str, events: list[dict[str, Any]], start: int, end: int) -> list[Any]:
    rule = load_text(HEAD + rule_text)[0]
    store = DuckDBStore.open(":memory:")
    try:
        store.ingest_events(events, redact=False)
        return run_rule(store, rule, Window(T0 + start, T0 + end))
    finally:
        store.close()


def forbidden(i: int, sec: int, user: str) -> dict[str, Any]:
    return ev(i, sec, verb="get", user={"username": user}, responseStatus={"code": 403},
              objectRef={"resource": "secrets", "name": f"s{i}"})  # fmt: skip


def test_threshold_per_key() -> None:
    evs = [forbidden(i, i, "mallory") for i in range(5)] + [forbidden(9, 1, "alice")]
    rule = ("threshold: {search: 'responseStatus.code = 403', by: ['\"user.username\"'],"
            " count: 5, every: 1m, window: 5m}\n")  # fmt: skip
    out = hits(rule, evs, 0, 300)
    assert [(h.key, h.count, len(h.event_ids)) for h in out] == [(("mallory",), 5, 5)]


def test_cardinality() -> None:
    evs = [forbidden(i, i, "mallory") for i in range(4)]
    rule = ("cardinality: {search: 'objectRef.resource:secrets', by: ['\"user.username\"'],"
            " distinct: '\"objectRef.name\"', count: 4, every: 1m, window: 5m}\n")  # fmt: skip
    assert len(hits(rule, evs, 0, 300)) == 1
    assert hits(rule, evs[:3], 0, 300) == []


def read(i: int, sec: int, user: str, ip: str) -> dict[str, Any]:
    """A secret read at T0 + `sec` (any number of days)."""
    t = datetime.fromtimestamp(T0 + sec, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _with_defaults({"auditID": f"e{i}", "stageTimestamp": t, "verb": "get",
                           "user": {"username": user}, "sourceIPs": [ip],
                           "objectRef": {"resource": "secrets"}}, i)  # fmt: skip


NEW_IP = (
    "new_term: {search: 'objectRef.resource:secrets', by: ['\"user.username\"'],"
    " terms: ['json_format(json_array_get(sourceIPs, 0))'], history: 7d,"
    " every: 1h, window: 1h%s}\n"
)
DAY = 86400


def test_new_term_fires_for_a_known_identity_only() -> None:
    evs = [
        read(1, 10, "bob", "10.0.0.1"),  # bob's history, two days before the window
        read(2, 2 * DAY + 100, "bob", "10.0.0.1"),  # a known term again: nothing
        read(3, 2 * DAY + 200, "bob", "47.1.1.1"),  # a new term of a known identity
        read(4, 2 * DAY + 300, "eve", "47.1.1.2"),  # a brand-new identity: its baseline
    ]
    out = hits(NEW_IP % "", evs, 2 * DAY, 2 * DAY + 3600)
    assert [(h.key, h.event_ids) for h in out] == [(("bob", "47.1.1.1"), ("e3",))]


def test_new_term_needs_the_learning_period() -> None:
    evs = [read(1, 0, "bob", "10.0.0.1"), read(2, 4000, "bob", "47.1.1.1")]
    assert hits(NEW_IP % "", evs, 3600, 7200) == []  # known for 67 min < 1 day (default)
    out = hits(NEW_IP % ", learning: 1h", evs, 3600, 7200)
    assert [h.key for h in out] == [("bob", "47.1.1.1")]


def test_new_term_seen_in_history_is_not_new() -> None:
    evs = [
        read(1, 0, "bob", "10.0.0.1"),
        read(2, DAY + 10, "bob", "47.1.1.1"),  # first seen before the window
        read(3, 2 * DAY + 10, "bob", "47.1.1.1"),
    ]
    assert hits(NEW_IP % "", evs, 2 * DAY, 2 * DAY + 3600) == []
    # the same pair, looked at in the window where it first appeared, is new
    assert len(hits(NEW_IP % "", evs, DAY, DAY + 3600)) == 1


def test_new_term_learning_longer_than_history_is_refused() -> None:
    with pytest.raises(RuleError) as e:
        load_text(HEAD + (NEW_IP % ", learning: 8d"), "<t>")
    assert str(e.value).startswith("<t>:6:") and "longer than history" in str(e.value)


def test_spike() -> None:
    base = [forbidden(i, i * 60, "svc") for i in range(6)]  # 6 in the hour before
    burst = [forbidden(100 + i, 3600 + i, "svc") for i in range(12)]
    rule = ("spike: {search: 'objectRef.resource:secrets', by: ['\"user.username\"'],"
            " factor: 5, min_count: 10, reference: 1h, every: 5m, window: 5m}\n")  # fmt: skip
    assert len(hits(rule, base + burst, 3600, 3900)) == 1
    assert hits(rule, base + burst[:5], 3600, 3900) == []


def test_sequence_exec_into_a_pod_created_privileged() -> None:
    priv = ev(1, 10, verb="create", objectRef={"resource": "pods", "namespace": "a"},
              requestObject={"metadata": {"name": "p"}, "spec": {"containers": [
                  {"image": "x", "securityContext": {"privileged": True}}]}})  # fmt: skip
    exec_p = ev(2, 600, verb="create", stage="ResponseStarted",
                objectRef={"resource": "pods", "namespace": "a", "name": "p",
                           "subresource": "exec"})  # fmt: skip
    exec_q = ev(3, 600, verb="create", stage="ResponseStarted",
                objectRef={"resource": "pods", "namespace": "a", "name": "q",
                           "subresource": "exec"})  # fmt: skip
    rule = """sequence:
  first:
    search: verb:create and objectRef.resource:pods
    where: regexp_like("requestObject", '"privileged":\\s*true')
  first_key: >-
    concat("objectRef.namespace", '/', json_extract_scalar("requestObject", '$.metadata.name'))
  then: objectRef.subresource:exec
  then_key: concat("objectRef.namespace", '/', "objectRef.name")
  within: 1d
  lookback: 7d
  every: 5m
  window: 15m
"""
    out = hits(rule, [priv, exec_p, exec_q], 0, 900)
    assert [h.event_ids for h in out] == [("e2",)]
