"""Every generated event is an audit.k8s.io/v1 Event as the log backend writes it (spec §6–8)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest
from _sample_data import SEED, SPAN, START, N, by_audit_id, sample

from kaudit.errors import ConfigError
from kaudit.sample.generate import dumps, generate, write_ndjson

MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
LEVELS = {"Metadata", "Request", "RequestResponse"}
STAGES = {"RequestReceived", "ResponseStarted", "ResponseComplete"}


def is_resource_request(uri: str) -> bool:
    # spec §5.1: /api/{v}/{resource...} needs 3 segments, /apis/{g}/{v}/{resource...} 4
    parts = uri.split("?", 1)[0].strip("/").split("/")
    if parts[0] == "api":
        return len(parts) >= 3
    if parts[0] == "apis":
        return len(parts) >= 4
    return False


def test_exactly_n_events_sorted_by_stage_timestamp() -> None:
    raw, events, _, summary = sample()
    assert len(events) == N == summary.events
    assert summary.bytes == len(raw)
    stamps = [e["stageTimestamp"] for e in events]
    assert stamps == sorted(stamps)  # fixed-width RFC 3339 strings order like times
    assert stamps[0] >= "2025-01-01T00:00:00.000000Z"
    assert stamps[-1] < "2025-01-02T06:00:00.000000Z"  # about the 24 h span
    assert stamps[-1] > "2025-01-01T18:00:00.000000Z"


def test_always_present_fields_and_types() -> None:
    for ev in sample()[1]:
        assert ev["kind"] == "Event"
        assert ev["apiVersion"] == "audit.k8s.io/v1"
        assert ev["level"] in LEVELS
        assert UUID.match(ev["auditID"])
        assert ev["stage"] in STAGES
        assert isinstance(ev["requestURI"], str) and ev["requestURI"].startswith("/")
        assert isinstance(ev["verb"], str) and ev["verb"]
        assert isinstance(ev["user"], dict)
        assert MICRO.match(ev["requestReceivedTimestamp"]), ev["requestReceivedTimestamp"]
        assert MICRO.match(ev["stageTimestamp"])
        assert ev["stageTimestamp"] >= ev["requestReceivedTimestamp"]
        assert isinstance(ev["sourceIPs"], list) and all(
            isinstance(i, str) for i in ev["sourceIPs"]
        )
        assert isinstance(ev.get("userAgent", ""), str)
        user = ev["user"]
        if user:
            assert isinstance(user["username"], str)
            assert all(isinstance(g, str) for g in user["groups"])
        # objectRef only for resource requests (spec §7)
        assert ("objectRef" in ev) == is_resource_request(ev["requestURI"]), ev["requestURI"]
        if "objectRef" in ev:
            assert isinstance(ev["objectRef"]["resource"], str)
            assert isinstance(ev["objectRef"]["apiVersion"], str)
            assert ev["objectRef"].get("apiGroup") != ""  # the core group is omitted


def test_stage_contents() -> None:
    for ev in sample()[1]:
        if ev["stage"] == "RequestReceived":
            # before authorization and the handler: no annotations, status or bodies
            assert ev["stageTimestamp"] == ev["requestReceivedTimestamp"]
            for key in ("responseStatus", "annotations", "requestObject", "responseObject"):
                assert key not in ev
            continue
        status = ev["responseStatus"]
        assert isinstance(status["code"], int)
        assert status["metadata"] == {}
        if ev["level"] == "Metadata":
            assert "requestObject" not in ev and "responseObject" not in ev
        if ev["level"] == "Request":
            assert "responseObject" not in ev
        if status["code"] == 401:
            continue
        assert ev["annotations"]["authorization.k8s.io/decision"] in ("allow", "forbid")
        assert isinstance(ev["annotations"]["authorization.k8s.io/reason"], str)
        if status["code"] >= 400:
            assert status["status"] == "Failure"
            assert status["reason"] and status["message"]
        elif "status" not in status:
            assert status == {"metadata": {}, "code": status["code"]}


def test_rbac_reasons_read_like_the_authorizer() -> None:
    reasons = {
        e["annotations"]["authorization.k8s.io/reason"]
        for e in sample()[1]
        if "annotations" in e and e["annotations"]["authorization.k8s.io/reason"]
    }
    pattern = re.compile(
        r'^RBAC: allowed by (ClusterRoleBinding "[^"]+"|RoleBinding "[^"/]+/[^"]+") of '
        r'(ClusterRole|Role) "[^"]+" to (User|Group|ServiceAccount) "[^"]+"$'
    )
    assert reasons
    for reason in reasons:
        assert pattern.match(reason), reason
    assert any('to ServiceAccount "replicaset-controller/kube-system"' in r for r in reasons)


def test_service_account_tokens_carry_extra() -> None:
    sa = [
        e for e in sample()[1] if e["user"].get("username", "").startswith("system:serviceaccount:")
    ]
    assert len(sa) > 1000
    for ev in sa:
        extra = ev["user"]["extra"]
        assert extra["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
        assert "system:serviceaccounts" in ev["user"]["groups"]
    with_pod = [e for e in sa if "authentication.kubernetes.io/pod-name" in e["user"]["extra"]]
    assert len(with_pod) > len(sa) // 3
    assert list(with_pod[0]["user"]["extra"]) == sorted(
        with_pod[0]["user"]["extra"]
    )  # Go map order


def test_stages_pair_by_audit_id() -> None:
    for aid, evs in by_audit_id().items():
        stages = [e["stage"] for e in evs]
        if stages == ["ResponseStarted"] and evs[0]["responseStatus"]["code"] == 401:
            continue  # failed authentication: one event only (spec §5.4)
        assert stages[0] == "RequestReceived", (aid, stages)
        assert len(set(stages)) == len(stages)
        assert {e["requestURI"] for e in evs} == {evs[0]["requestURI"]}
        assert {e["requestReceivedTimestamp"] for e in evs} == {evs[0]["requestReceivedTimestamp"]}
        if "ResponseStarted" in stages:
            # only long-running requests (spec §5.3)
            ev = evs[0]
            sub = ev.get("objectRef", {}).get("subresource")
            assert ev["verb"] == "watch" or sub in ("exec", "attach", "portforward", "log")
        if len(stages) == 3:
            assert stages == ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    complete = sum(1 for evs in by_audit_id().values() if evs[-1]["stage"] == "ResponseComplete")
    assert complete > N * 0.4


def test_watches_have_three_stages() -> None:
    watches = [evs for evs in by_audit_id().values() if evs[0]["verb"] == "watch"]
    assert len(watches) > 500
    full = [w for w in watches if len(w) == 3]
    assert len(full) > len(watches) * 0.8  # the rest are still open when the sample ends


def test_go_html_escaping_of_the_log_backend() -> None:
    raw = sample()[0]
    assert b"&" not in raw and b"<" not in raw and b">" not in raw
    assert b"\\u0026watch=true" in raw
    assert dumps({"a": "x&y<z>"}) == b'{"a":"x\\u0026y\\u003cz\\u003e"}\n'


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    def run(seed: int) -> bytes:
        out = io.BytesIO()
        write_ndjson(out, 3000, seed, START, span=SPAN)
        return out.getvalue()

    assert run(SEED) == run(SEED)
    assert run(SEED) != run(SEED + 1)


def test_generate_yields_the_same_dicts_as_written() -> None:
    events = list(generate(500, SEED, START, span=SPAN))
    out = io.BytesIO()
    write_ndjson(out, 500, SEED, START, span=SPAN)
    assert b"".join(dumps(e) for e in events) == out.getvalue()


def test_zero_events_and_naive_start() -> None:
    assert list(generate(0, 1, START)) == []
    naive = list(generate(50, 1, datetime(2025, 1, 1)))
    aware = list(generate(50, 1, datetime(2025, 1, 1, tzinfo=UTC)))
    assert naive == aware


def test_default_start_is_recent() -> None:
    events = list(generate(20, 1))
    assert events[0]["stageTimestamp"][:4] >= str(datetime.now(UTC).year - 1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": -1},
        {"attack_rate": 1.5},
        {"attack_weights": {"nope": 1.0}},
        {"attack_weights": {"exec": -1.0}},
        {"nodes": 0},
    ],
)
def test_bad_options_raise_config_errors(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"n": 10, "seed": 1, "start": START}
    args.update(kwargs)
    with pytest.raises(ConfigError):
        generate(**args)  # type: ignore[arg-type]
