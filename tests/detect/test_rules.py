"""Built-in rules: their inline tests, the loader's located errors, the streaming pass (one
statement for every rule, over only the new rows), scheduled rounds with a fake clock."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from kaudit.detect.compile import image_patterns
from kaudit.detect.engine import (
    StreamingPlan,
    _with_defaults,
    batch_marker,
    due_windows,
    run_rule,
    run_scheduled,
    run_streaming,
    run_tests,
)
from kaudit.detect.load import builtin_rules, load_text
from kaudit.detect.model import RuleError
from kaudit.policy.needs import DETECTION_NEEDS
from kaudit.store.duckdb import DuckDBStore

RULES = builtin_rules()


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_inline_tests(rule: object) -> None:
    results = run_tests(rule)  # type: ignore[arg-type]
    assert results, "every built-in rule has inline tests"
    bad = [f"{t.name}: {t.detail}" for t in results if not t.ok]
    assert bad == []


def test_every_rule_has_mitre_and_both_languages() -> None:
    for r in RULES:
        assert r.mitre and r.title.zh and r.title.en and r.description.zh and r.description.en
    known = {n.detection for n in DETECTION_NEEDS}
    assert all(r.needs in known for r in RULES if r.needs), "needs ids are policy.needs ids"


@pytest.mark.parametrize(
    ("text", "where", "msg"),
    [
        ("id: x\ntitle: t\n", "<t>:1:1", "give exactly one of"),
        ("id: x\ntitle: t\ndescription: d\nseverity: loud\nmitre: [T1609]\nmatch: a\n",
         "<t>:4:11", "severity 'loud'"),
        ("id: x\ntitle: t\ndescription: d\nseverity: low\nmitre: [X1]\nmatch: a\n",
         "<t>:5:9", "not an ATT&CK"),
        ("id: x\ntitle: t\ndescription: d\nseverity: low\nmitre: [T1609]\n"
         "query: {query: '*', every: 5m, window: 1m}\n", "<t>:6:40", "shorter than every"),
        ("id: x\ntitle: t\ndescription: d\nseverity: low\nmitre: [T1609]\nmatch: a\nbogus: 1\n",
         "<t>:7:1", "unknown key 'bogus'"),
    ],
)  # fmt: skip
def test_loader_errors_name_file_line_col(text: str, where: str, msg: str) -> None:
    with pytest.raises(RuleError) as e:
        load_text(text, "<t>")
    assert str(e.value).startswith(where) and msg in str(e.value)


def _exec(i: int, t: str = "2026-01-01T00:00:00Z") -> dict[str, object]:
    return _with_defaults(
        {
            "auditID": f"id-{i}",
            "verb": "create",
            "stage": "ResponseStarted",
            "stageTimestamp": t,
            "requestURI": f"/api/v1/namespaces/a/pods/p{i}/exec?command=id",
            "user": {"username": "alice"},
            "objectRef": {"resource": "pods", "subresource": "exec", "name": f"p{i}"},
        },
        i,
    )


def test_streaming_is_one_statement_over_new_rows_only() -> None:
    plan = StreamingPlan.build(RULES)
    assert plan.sql.count("UNION ALL") == len(plan.rules) - 1
    store = DuckDBStore.open(":memory:")
    store.ingest_events([_exec(1)], redact=False)
    mark = batch_marker(store)
    store.ingest_events([_exec(2), _exec(3)], redact=False)
    hits = run_streaming(store, plan, mark)
    assert sorted(h.event_ids[0] for h in hits if h.rule_id == "exec-into-container") == [
        "id-2",
        "id-3",
    ]


def test_due_windows_catch_up_without_gaps() -> None:
    assert due_windows(None, 1000, 60, 900) == [due_windows(None, 1000, 60, 900)[0]]
    wins = due_windows(960, 1210, 60, 900)
    assert [(w.start, w.end) for w in wins] == [(120, 1020), (180, 1080), (240, 1140), (300, 1200)]


def test_scheduled_rule_with_fake_clock_and_restart(tmp_path: Path) -> None:
    brief = next(r for r in RULES if r.id == "public-ip-failed-requests")
    base = 1767225600
    evs = [
        _with_defaults(
            {
                "auditID": f"f{i}",
                "verb": "list",
                "sourceIPs": ["8.8.4.4"],
                "stageTimestamp": f"2026-01-01T00:0{i // 6}:{(i % 6) * 10:02d}Z",
                "responseStatus": {"code": 403},
            },
            i,
        )
        for i in range(12)
    ]
    path = tmp_path / "s.duckdb"
    store = DuckDBStore.open(path)
    store.ingest_events(evs, redact=False)
    r1 = run_scheduled(store, [brief], base + 120)
    assert len(r1.hits) == 1 and r1.hits[0].fields["源地址"] == "8.8.4.4"
    store.close()
    store = DuckDBStore.open(path)  # a restart: the next round resumes after the last window
    r2 = run_scheduled(store, [brief], base + 300)
    assert [w.end for w in r2.windows[brief.id]] == [base + 180, base + 240, base + 300]
    store.close()


@pytest.mark.parametrize(
    ("entry", "covered", "not_covered"),
    [
        ("docker.io/library", ["nginx", "nginx:1.25", "busybox@sha256:ab", "library/nginx:1",
                               "docker.io/library/nginx:latest", "index.docker.io/library/nginx"],
         ["evil/miner", "docker.io/evil/miner", "registry.k8s.io/pause"]),
        ("docker.io/grafana", ["grafana/grafana:10.4.2", "docker.io/grafana/loki:3"],
         ["grafana:1", "grafanax/y", "grafana.com/x"]),
        ("docker.io", ["nginx", "evil/miner:1", "docker.io/x/y"],
         ["quay.io/x/y", "evil.com:5000/x"]),
        ("registry.k8s.io",
         ["registry.k8s.io/pause:3.9", "registry.k8s.io/coredns/coredns@sha256:1"],
         ["registry.k8s.io.evil.com/x", "registry.k8s.iox/p"]),
        ("nginx", ["nginx", "nginx:1"], ["nginxx", "docker.io/library/nginx"]),
    ],
)  # fmt: skip
def test_image_exceptions_follow_docker_reference_normalisation(
    entry: str, covered: list[str], not_covered: list[str]
) -> None:
    # run on DuckDB (RE2), the engine the patterns are written for
    pattern = "^(?:" + "|".join(image_patterns(entry)) + ")$"
    con = duckdb.connect()
    got = {v: con.execute("SELECT regexp_matches(?, ?)", [v, pattern]).fetchone()[0]
           for v in covered + not_covered}  # fmt: skip
    assert got == {**dict.fromkeys(covered, True), **dict.fromkeys(not_covered, False)}


def test_every_builtin_rule_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "detect.md").read_text()
    assert [r.id for r in RULES if f"`{r.id}`" not in doc] == []


def test_body_rules_read_raw_once_and_match_as_each_rule_alone(tmp_path: Path) -> None:
    """The streaming plan decompresses `raw` once for the rows a body rule's search keeps;
    its hits must be exactly those of every rule run on its own (Falco's and Panther's
    cases: pods with bodies, exec, RBAC, anonymous requests ...)."""
    import json

    shared = Path(__file__).resolve().parents[2] / ".." / "shared" / "conformance"
    events = [c["event"] for c in json.loads((shared / "falco_cases.json").read_text())]
    panther = json.loads((shared / "panther_cases.json").read_text())
    events += [c["native_event"] for c in panther if c.get("native_event")]
    store = DuckDBStore.open(tmp_path / "k.duckdb")
    store.ingest_events(events, redact=False)
    plan = StreamingPlan.build(RULES)
    assert "kaudit_raw AS MATERIALIZED" in plan.sql
    together = {(h.rule_id, h.key, h.event_ids) for h in run_streaming(store, plan)}
    alone = {  # each rule on its own, over the `events` view
        (h.rule_id, h.key, h.event_ids) for r in plan.rules for h in run_rule(store, r, None)
    }
    assert together == alone and len(together) > 50


def test_which_compiled_rules_read_a_body() -> None:
    from kaudit.detect.compile import compile_rule, retarget
    from kaudit.detect.engine import _prefilter, _reads_raw

    by_id = {r.id: r for r in RULES}

    def tree(rid: str):  # type: ignore[no-untyped-def]
        return retarget(compile_rule(by_id[rid], None, "UTC"), None, 0)[0]

    assert _reads_raw(tree("privileged-pod")) and _prefilter(tree("privileged-pod")) is not None
    assert not _reads_raw(tree("exec-into-container"))  # the command is in requestURI


def test_a_compiled_plan_is_reused_and_follows_its_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kaudit.detect import engine

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(engine, "_PLANS", {})
    compiled: list[int] = []
    real = engine.StreamingPlan._compile.__func__  # type: ignore[attr-defined]

    def counting(cls: type, chosen: tuple[object, ...], tz: str) -> object:
        compiled.append(len(chosen))
        return real(cls, chosen, tz)

    monkeypatch.setattr(engine.StreamingPlan, "_compile", classmethod(counting))
    first = StreamingPlan.build(RULES)
    assert StreamingPlan.build(RULES).sql == first.sql and compiled == [len(first.rules)]
    assert list((tmp_path / "kaudit" / "plans").glob("*.json"))  # and on disk:
    monkeypatch.setattr(engine, "_PLANS", {})  # a new process
    again = StreamingPlan.build(RULES)
    assert (again.sql, again.params, again.rules) == (first.sql, first.params, first.rules)
    assert len(compiled) == 1
    fewer = StreamingPlan.build([r for r in RULES if r.id != "exec-into-container"])
    assert len(compiled) == 2 and "exec-into-container" not in fewer.sql
