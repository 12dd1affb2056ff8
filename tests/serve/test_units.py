"""Config, credentials, health and the follower's reading rules, without a server."""

from __future__ import annotations

import gzip
import os
from concurrent.futures import Future
from dataclasses import fields
from pathlib import Path

import orjson
import pytest

from kaudit.errors import ConfigError
from kaudit.serve.auth import TokenStore
from kaudit.serve.config import EXAMPLE_CONFIG, ServeConfig, parse_config
from kaudit.serve.health import Health
from kaudit.sources.checkpoint import Checkpoint
from kaudit.sources.follow import Follower, Lines, list_backups
from kaudit.sources.webhook import WebhookRefusal, decode_eventlist
from kaudit.store.base import AppendResult


def test_every_setting_is_documented_and_the_example_parses_to_the_defaults() -> None:
    documented = parse_config(EXAMPLE_CONFIG)
    assert documented == ServeConfig()
    for f in fields(ServeConfig):
        if f.name != "config_path":
            assert f"\n{f.name}:" in "\n" + EXAMPLE_CONFIG, f.name
    for section in ("tls", "webhook", "writer"):
        cls = type(getattr(ServeConfig(), section))
        for f in fields(cls):
            assert f"  {f.name}:" in EXAMPLE_CONFIG, f"{section}.{f.name}"
    follow_doc = EXAMPLE_CONFIG.split("follow:", 1)[1]
    for name in ("path", "cluster", "poll_interval", "start_at", "max_event_size", "redact"):
        assert f"{name}:" in follow_doc, name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("webhok: {}", "unknown setting webhok"),
        ("port: 70000", "not a TCP port"),
        ("webhook: {max_body_size: lots}", "not a size"),
        ("tls: {cert: a.pem}", "give both cert and key"),
        ("follow: [{cluster: x}]", "follow[0].path: required"),
        ("port: [1", "not valid YAML"),
    ],
)
def test_config_errors_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "kaudit.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("kaudit.yaml")


def test_tokens_are_stored_hashed_and_checked(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    token, cred = store.create("ingest", "ingest", "n", "prod")
    assert token not in (tmp_path / "tokens.json").read_text()
    assert os.stat(tmp_path / "tokens.json").st_mode & 0o777 == 0o600
    p = store.check(token)
    assert p is not None and p.cluster == "prod" and p.kind == "ingest"
    assert store.check(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.check("not-a-token") is None
    # another process (kaudit token revoke) changes the file: the server sees it
    assert TokenStore(tmp_path / "tokens.json").revoke(cred.id)
    assert store.check(token) is None
    with pytest.raises(ConfigError):
        store.create("api", "root")


def test_health_counts_and_stalls_on_a_fake_clock() -> None:
    now = [1000.0]
    h = Health(stalled_after=60, clock=lambda: now[0])
    h.register("prod", "file:/var/log/audit.log")
    h.arrived("prod", "webhook", 500, 990.0)
    h.stored(
        "prod",
        "webhook",
        AppendResult(received=4, stored=2, duplicates=1, rejected=1, rejected_by_reason={"x": 1}),
    )
    now[0] = 1030.0
    snap = {s["source"]: s for s in h.snapshot()}
    assert snap["webhook"]["stored"] == 2 and snap["webhook"]["duplicate"] == 1
    assert snap["webhook"]["rejected"] == {"x": 1}
    assert snap["webhook"]["lag_seconds"] == 10.0
    assert not snap["webhook"]["stalled"] and not snap["file:/var/log/audit.log"]["stalled"]
    now[0] = 1100.0
    assert all(s["stalled"] for s in h.snapshot())


def test_webhook_body_redacts_secrets_like_ingest() -> None:
    ev = {
        "kind": "Event",
        "auditID": "a",
        "stage": "ResponseComplete",
        "stageTimestamp": "2026-01-01T00:00:00.000001Z",
        "verb": "create",
        "objectRef": {"resource": "secrets", "namespace": "d", "name": "s"},
        "requestObject": {"kind": "Secret", "data": {"password": "aHVudGVyMg=="}},
    }
    body = orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [ev]})
    out = decode_eventlist(body, 1 << 20)
    assert b"aHVudGVyMg" not in out.texts[0] and out.redacted == [True]
    assert orjson.loads(out.texts[0])["requestObject"]["data"] == {
        "password": "<redacted by kaudit>"
    }


_EV = {"auditID": "a", "stage": "ResponseComplete", "verb": "get", "x-unknown": {"é": [1.5]}}


def _list(items: object, **head: object) -> bytes:
    return orjson.dumps(
        {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", **head, "items": items}
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_list([_EV])[:-3], "invalid_json"),
        (_list([_EV]).replace(b"\xc3\xa9", b"\xc3("), "invalid_json"),  # not UTF-8
        (b"[]", "wrong_kind"),
        (_list([_EV], kind=5), "wrong_kind"),
        (_list([_EV], apiVersion="v1"), "wrong_api_version"),
        (_list({"a": _EV}), "bad_eventlist"),
        (_list([_EV, [1]]), "not_an_object"),
        (_list([_EV, "x"]), "not_an_object"),
        # items read as objects (to redact, to re-cut an indented body) that orjson refuses
        (_list([dict(_EV, kind="Secret")]).replace(b'"get"', b'"get","n":1e400'), "invalid_json"),
        (_list([_EV]).replace(b'"get"', b'\n"get","n":1e400'), "invalid_json"),
    ],
)
def test_a_bad_eventlist_is_refused_whole_with_its_reason(body: bytes, reason: str) -> None:
    with pytest.raises(WebhookRefusal) as err:
        decode_eventlist(body, 1 << 20)
    assert err.value.reason == reason and err.value.status == 400


def test_events_go_on_as_sent_one_line_each_even_from_an_indented_body() -> None:
    second = dict(_EV, auditID="b", note="line\nbreak")
    compact = _list([_EV, second])
    indented = orjson.dumps(orjson.loads(compact), option=orjson.OPT_INDENT_2)
    for body in (compact, indented):
        out = decode_eventlist(body, 1 << 20)
        assert [orjson.loads(t) for t in out.texts] == [_EV, second]
        assert all(b"\n" not in t for t in out.texts)  # the journal keeps a line per event
    assert decode_eventlist(compact, 1 << 20).texts[0] == orjson.dumps(_EV)  # bytes as sent
    assert decode_eventlist(_list(None), 1 << 20).texts == []  # Go's empty slice


class _Sink:
    """The writer's fake: records what would be stored and the checkpoint beside it."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.cp: Checkpoint | None = None

    def __call__(self, lines: Lines, cp: Checkpoint, nbytes: int) -> Future[AppendResult]:
        self.texts.extend(lines.texts)
        self.cp = cp
        fut: Future[AppendResult] = Future()
        fut.set_result(AppendResult(received=len(lines.texts)))
        return fut


def _line(i: int) -> bytes:
    return orjson.dumps({"auditID": f"id-{i}", "stage": "ResponseComplete", "verb": "get"}) + b"\n"


def test_a_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    live = tmp_path / "audit.log"
    live.write_bytes(_line(1) + _line(2)[:10])
    sink = _Sink()
    f = Follower(live, "c", sink, lambda key: sink.cp, poll_interval=0.01)
    f.restore()
    f.step()
    assert [orjson.loads(t)["auditID"] for t in sink.texts] == ["id-1"]
    assert sink.cp is not None and sink.cp.offset == len(_line(1))
    f.step()
    assert len(sink.texts) == 1  # still partial
    with live.open("ab") as fh:
        fh.write(_line(2)[10:])
    f.step()
    assert [orjson.loads(t)["auditID"] for t in sink.texts] == ["id-1", "id-2"]


def test_restart_resumes_in_a_compressed_backup_and_reads_what_followed(tmp_path: Path) -> None:
    live = tmp_path / "audit.log"
    live.write_bytes(_line(1) + _line(2))
    sink = _Sink()
    f = Follower(live, "c", sink, lambda key: sink.cp)
    f.restore()
    f.step()
    assert len(sink.texts) == 2
    # while "down": more lines, rotation with compression, a new live file
    with live.open("ab") as fh:
        fh.write(_line(3))
    backup = tmp_path / "audit-2026-01-01T00-00-00.000.log"
    live.rename(backup)
    with gzip.open(str(backup) + ".gz", "wb") as gz:
        gz.write(backup.read_bytes())
    backup.unlink()
    live.write_bytes(_line(4))
    assert [b.compressed for b in list_backups(live)] == [True]
    g = Follower(live, "c", sink, lambda key: sink.cp)
    g.restore()
    for _ in range(5):
        g.step()
    assert [orjson.loads(t)["auditID"] for t in sink.texts] == ["id-1", "id-2", "id-3", "id-4"]


def test_truncation_rereads_from_the_start(tmp_path: Path) -> None:
    live = tmp_path / "audit.log"
    live.write_bytes(_line(1) + _line(2))
    sink = _Sink()
    f = Follower(live, "c", sink, lambda key: sink.cp)
    f.restore()
    f.step()
    with live.open("r+b") as fh:  # copytruncate
        fh.truncate(0)
    with live.open("ab") as fh:
        fh.write(_line(5))
    for _ in range(3):
        f.step()
    assert [orjson.loads(t)["auditID"] for t in sink.texts] == ["id-1", "id-2", "id-5"]


def test_serve_registers_its_intel_aware_functions_once_at_start(tmp_path: Path) -> None:
    """The API's functions (with `kaudit intel add`'s lists) are registered before any thread
    queries, and detection uses the same set rather than swapping in its own."""
    from kaudit.detect.engine import shared_functions
    from kaudit.query.run import prepared
    from kaudit.serve.app import Runtime

    data = tmp_path / "data"
    (data / "intel").mkdir(parents=True)
    (data / "intel" / "ours.txt").write_text("203.0.113.0/24\n", encoding="utf-8")
    cfg = parse_config(f"db: {data / 'k.duckdb'}\nalerts:\n  enabled: false\n")
    rt = Runtime(cfg, write_server_file=False)
    rt.start()
    try:
        assert rt.store is not None
        fns = prepared(rt.store, shared_functions)
        assert fns is not shared_functions()
        assert fns.security_check_ip("203.0.113.9") == 1
    finally:
        rt.stop()
