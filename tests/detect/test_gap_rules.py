"""The rules beyond Falco (rules/gaps.yaml, rules/coverage.yaml): each has a MITRE mapping, both
languages, a positive and a negative inline test, says when it needs request bodies; and on
generated traffic with injected attacks the gap rules catch the attacks of their meaning."""

from __future__ import annotations

import dataclasses
import functools
from datetime import UTC, datetime

import pytest

from kaudit.detect.engine import Hit, run_all
from kaudit.detect.load import builtin_dir, load_file
from kaudit.detect.model import Rule
from kaudit.sample.generate import InjectedAttack, generate
from kaudit.store.duckdb import DuckDBStore

GAP_RULES = [r for name in ("gaps.yaml", "coverage.yaml") for r in load_file(builtin_dir() / name)]


@pytest.mark.parametrize("rule", GAP_RULES, ids=[r.id for r in GAP_RULES])
def test_rule_metadata(rule: Rule) -> None:
    assert rule.mitre and rule.title.zh and rule.title.en
    assert any(t.expect for t in rule.tests) and any(not t.expect for t in rule.tests)
    reads_bodies = any(
        "requestObject" in text for text in (str(rule.kind), *(f.expr for f in rule.fields))
    )
    assert (rule.min_level == "Request") == reads_bodies, "body rules say they need Request"


@functools.cache
def _attack_run(kinds: tuple[str, ...]) -> tuple[list[Hit], list[InjectedAttack]]:
    truth: list[InjectedAttack] = []
    events = list(
        generate(4000, seed=7, start=datetime(2026, 1, 5, tzinfo=UTC), attack_rate=0.01,
                 attack_weights={k: 1.0 for k in kinds}, truth=truth)
    )  # fmt: skip
    store = DuckDBStore.open(":memory:")
    try:
        store.ingest_events(events, redact=False)
        rules = [dataclasses.replace(r, enabled=True) for r in GAP_RULES]
        return run_all(store, rules), truth
    finally:
        store.close()


@pytest.mark.parametrize(
    ("kind", "rule_id"),
    [("anonymous_access", "anonymous-request"), ("forbidden_scan", "permission-probing")],
)
def test_injected_attacks_are_caught(kind: str, rule_id: str) -> None:
    hits, truth = _attack_run(("anonymous_access", "forbidden_scan"))
    attack_ids = {t.audit_id for t in truth if t.kind == kind}
    assert attack_ids, "the generator injected the attack"
    caught = {i for h in hits if h.rule_id == rule_id for i in h.event_ids}
    assert caught & attack_ids
