"""The `alerts:` settings, channel/route construction, and the late-window rule."""

from __future__ import annotations

import threading
from dataclasses import fields
from pathlib import Path
from typing import Any, cast

import pytest

from kaudit.alert.noise import Message
from kaudit.alert.pipeline import ReadableConsoleChannel, channel_from_config, routes_from_config
from kaudit.detect.compile import Window
from kaudit.detect.engine import _with_defaults, batch_marker
from kaudit.detect.load import builtin_rules
from kaudit.detect.model import Rule
from kaudit.errors import ConfigError
from kaudit.serve.config import EXAMPLE_CONFIG, AlertsConfig, parse_config
from kaudit.serve.detection import GAP_RULE, Detector, late_windows
from kaudit.serve.health import Health
from kaudit.store.duckdb import DuckDBStore

EXEC = {
    "verb": "create",
    "stage": "ResponseStarted",
    "requestURI": "/api/v1/namespaces/a/pods/p/exec?command=id&container=c",
    "user": {"username": "alice"},
    "objectRef": {"resource": "pods", "subresource": "exec", "name": "p", "namespace": "a"},
}


def test_every_alerts_setting_is_documented() -> None:
    for f in fields(AlertsConfig):
        assert f"  {f.name}:" in EXAMPLE_CONFIG, f.name
    doc = EXAMPLE_CONFIG.split("alerts:", 1)[1]
    for kind in ("webhook", "dingtalk", "wecom", "feishu", "slack", "email", "alertmanager",
                 "syslog", "console"):  # fmt: skip
        assert f"type: {kind}" in doc, kind


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alerts: {channels: {x: {type: pager}}}", "alerts.channels.x.type"),
        ("alerts: {channels: {x: {type: webhook}}}", "alerts.channels.x.url: required"),
        ("alerts: {channels: {x: {type: slack, url: u, colour: red}}}", "unknown setting"),
        ("alerts: {routes: [{channels: [nope]}]}", "no channel 'nope'"),
        ("alerts: {lang: fr}", "alerts.lang"),
    ],
)
def test_alerts_config_errors_name_the_key_and_file(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "kaudit.yaml")
    assert message in str(info.value) and str(info.value).startswith("kaudit.yaml")


def test_channels_and_routes_from_config() -> None:
    cfg = parse_config(
        "alerts:\n  channels:\n    mail: {type: email, host: h, port: 25, sender: a@b, to: c@d,"
        " starttls: false}\n    con: {type: console}\n  routes:\n"
        "    - {channels: [mail], min_severity: high, labels: {brief: '7.1'}}\n"
    )
    built = {n: channel_from_config(n, s) for n, s in cfg.alerts.channels.items()}
    assert built["mail"].to == ("c@d",) and built["mail"].starttls is False  # type: ignore[attr-defined]
    routes = routes_from_config(list(cfg.alerts.routes), built)
    assert routes[0].min_severity == "high" and routes[0].labels == (("brief", "7.1"),)
    assert [r.channels for r in routes_from_config([], built)] == [("mail", "con")]


def test_console_channel_prints_readable_lines() -> None:
    from kaudit.alert.model import Alert

    out: list[str] = []
    a = Alert("fp1", "exec-into-container", "Command executed", "medium", "firing", 2, 0, 0,
              None, ("x",), {"命令": "sh", "empty": ""}, ("id1",))  # fmt: skip
    ReadableConsoleChannel("c", out.append).send(Message((a,)))
    assert out == [
        "ALERT 00:00:00 [medium] exec-into-container fp1 x2: Command executed  命令=sh\n"
    ]


def test_late_rows_rerun_the_windows_already_run_that_hold_them() -> None:
    # every 60 s over 900 s; windows up to t=1200 have run; rows from t=1090 arrive late
    got = late_windows(1090, 1200, _rule(60, 900))
    assert got == [Window(240, 1140), Window(300, 1200)]
    assert late_windows(1300, 1200, _rule(60, 900)) == []  # not late: a future window has it
    assert late_windows(0, None, _rule(60, 900)) == []  # never run: the first round has it


def _rule(every: int, window: int) -> Rule:
    import dataclasses

    from kaudit.detect.model import Scheduled

    return dataclasses.replace(GAP_RULE, kind=Scheduled("*", every, window))


class _Recorder:
    """A notifier that keeps the hits it is handed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hits: list[Any] = []

    def handle(self, hits: list[Any]) -> list[Any]:
        self.hits.extend(hits)
        return []


def _detector(store: DuckDBStore, notifier: _Recorder) -> Detector:
    """A detector as `kaudit serve` starts it: from the mark taken at start."""
    rules = [r for r in builtin_rules() if r.id == "exec-into-container"]
    return Detector(store, rules, cast(Any, notifier), Health(60.0),
                    first_mark=batch_marker(store))  # fmt: skip


def test_rows_stored_before_a_crash_on_the_first_start_are_examined_at_the_next(
    tmp_path: Path,
) -> None:
    db = tmp_path / "k.duckdb"
    with DuckDBStore.open(db) as store:
        store.ingest_events([_with_defaults({**EXEC, "auditID": "history"}, 0)])
    with DuckDBStore.open(db) as store:  # the first start; it dies before its first pass
        _detector(store, _Recorder())
        store.ingest_events([_with_defaults({**EXEC, "auditID": "live"}, 1)])
    with DuckDBStore.open(db) as store:  # the next start
        rec = _Recorder()
        det = _detector(store, rec)
        det.start()
        det.stop()
    assert [h.event_ids for h in rec.hits] == [("live",)]
