"""`kaudit query` and `kaudit intel` through click, on a store file."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kaudit.cli.main import _Root
from kaudit.cli.query import COMMANDS, parse_duration, parse_time
from kaudit.errors import ConfigError
from kaudit.store.duckdb import DuckDBStore

from .conftest import T0, event


def cli() -> click.Group:
    group = _Root(name="kaudit")
    for name, command in COMMANDS.items():
        group.add_command(command, name)
    return group


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "kaudit.duckdb"
    store = DuckDBStore.open(path)
    store.ingest_events(
        [
            event(1, verb="delete", user="alice", ips=("47.100.1.2",)),
            event(2, verb="get", user="bob", ips=("203.0.113.9",), code=403),
            event(3, verb="get", user="bob", ips=("8.8.4.4", "10.0.0.1")),
        ]
    )
    store.close()
    return path


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli(), list(args))
    return res.exit_code, res.stdout, res.stderr


def test_json_keeps_column_names_and_types(db: Path) -> None:
    code, out, _ = run(
        "query",
        "--db",
        str(db),
        "--format",
        "json",
        "--tz",
        "Asia/Shanghai",
        '* | select "user.username" as "用户", count(1) as "次数", '
        "max(date_format(from_unixtime(__time__), '%H:%i:%s')) as t, "
        "max(stageTimestamp) as ts, bool_or(verb = 'delete') as del "
        'group by 1 order by "用户"',
    )
    assert code == 0
    rows = json.loads(out)
    assert rows == [
        {"用户": "alice", "次数": 1, "t": "06:13:21", "ts": "2023-11-14 22:13:21", "del": True},
        {"用户": "bob", "次数": 2, "t": "06:13:23", "ts": "2023-11-14 22:13:23", "del": False},
    ]


def test_csv_and_table(db: Path) -> None:
    code, out, _ = run(
        "query",
        "--db",
        str(db),
        "--format",
        "csv",
        "verb:get | select auditID, sourceIPs order by 1",
    )
    assert code == 0
    assert out.splitlines() == [
        "auditID,sourceIPs",
        'id-00002,"[""203.0.113.9""]"',
        'id-00003,"[""8.8.4.4"",""10.0.0.1""]"',
    ]
    code, out, _ = run("query", "--db", str(db), "verb:delete | select auditID")
    assert code == 0 and "id-00001" in out and "1 row(s)" in out


def test_time_window_options(db: Path) -> None:
    code, out, _ = run(
        "query",
        "--db",
        str(db),
        "--format",
        "json",
        "--from",
        str(T0 + 2),
        "--to",
        str(T0 + 3),
        "* | select auditID",
    )
    assert code == 0 and json.loads(out) == [{"auditID": "id-00002"}]
    code, out, _ = run(
        "query",
        "--db",
        str(db),
        "--format",
        "json",
        "--tz",
        "UTC",
        "--from",
        "2023-11-14T22:13:22",
        "* | select count(1) as n",
    )
    assert json.loads(out) == [{"n": 2}]
    code, out, _ = run(
        "query", "--db", str(db), "--format", "json", "--last", "15m", "* | select count(1) as n"
    )
    assert json.loads(out) == [{"n": 0}]  # the events are from 2023


def test_explain_prints_sql_and_parameters(db: Path) -> None:
    code, out, _ = run("query", "--explain", "verb:get | select count(1)")
    assert code == 0
    assert out.startswith("-- duckdb\nWITH log AS")
    assert '-- parameters: ["get",' in out


def test_user_errors_are_one_message_without_traceback(db: Path) -> None:
    code, _, err = run("query", "--db", str(db), "* | select nosuch")
    assert code == 1
    assert err.startswith('kaudit: error: query:1:12: unknown column "nosuch"')
    assert "Traceback" not in err
    code, _, err = run("query", "--db", str(db), "--last", "5m", "--from", "1", "*")
    assert code == 1 and "--last cannot be combined" in err
    code, _, err = run("query", "--db", str(db.parent / "missing.duckdb"), "*")
    assert code == 1 and "no kaudit store" in err


def test_intel_add_list_is_used_by_security_check_ip(db: Path, tmp_path: Path) -> None:
    q = (
        "* | select json_format(json_array_get(sourceIPs, 0)) as ip, "
        "security_check_ip(json_format(json_array_get(sourceIPs, 0))) as bad order by ip"
    )
    code, out, _ = run("query", "--db", str(db), "--format", "json", q)
    assert code == 0
    assert {r["ip"]: r["bad"] for r in json.loads(out)}["203.0.113.9"] == 0
    extra = tmp_path / "mine.txt"
    extra.write_text("203.0.113.0/24\n", encoding="utf-8")
    code, out, _ = run("intel", "add", str(extra), "--data", str(db.parent))
    assert code == 0 and "bad-IP list: 1 networks" in out
    code, out, _ = run("query", "--db", str(db), "--format", "json", q)
    assert {r["ip"]: r["bad"] for r in json.loads(out)}["203.0.113.9"] == 1
    code, out, _ = run("intel", "list", "--data", str(db.parent))
    assert "mine.txt" in out and "ip2region" in out


def test_intel_add_refuses_unknown_files(tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(b"\0")
    code, _, err = run("intel", "add", str(f), "--data", str(tmp_path))
    assert code == 1 and "unknown intel file type" in err
    mm = tmp_path / "bad.mmdb"
    mm.write_bytes(b"not an mmdb")
    code, _, err = run("intel", "add", str(mm), "--data", str(tmp_path))
    assert code == 1 and "not a readable mmdb" in err


def test_time_parsing() -> None:
    assert parse_duration("15m") == 900 and parse_duration("1h30m") == 5400
    with pytest.raises(ConfigError):
        parse_duration("soon")
    assert parse_time("1700000000", "UTC", "--from") == 1_700_000_000
    assert parse_time("2023-11-15T06:13:20", "Asia/Shanghai", "--from") == 1_700_000_000
    assert parse_time("2023-11-14T22:13:20Z", "Asia/Shanghai", "--from") == 1_700_000_000
    with pytest.raises(ConfigError):
        parse_time("yesterday", "UTC", "--to")


def test_display_zone_setting(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    q = "* | select date_format(from_unixtime(min(__time__)), '%H:%i') as t"
    monkeypatch.setenv("KAUDIT_TZ", "Asia/Shanghai")
    assert json.loads(run("query", "--db", str(db), "--format", "json", q)[1]) == [{"t": "06:13"}]
    monkeypatch.setenv("KAUDIT_TZ", "UTC")
    assert json.loads(run("query", "--db", str(db), "--format", "json", q)[1]) == [{"t": "22:13"}]
    out = run("query", "--db", str(db), "--format", "json", "--tz", "Asia/Shanghai", q)[1]
    assert json.loads(out) == [{"t": "06:13"}]


def test_display_zone_comes_from_kaudit_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --tz and KAUDIT_TZ, `tz` of the configuration file is the display zone."""
    from kaudit.cli.main import build

    db = tmp_path / "k.duckdb"
    with DuckDBStore.open(db) as store:
        store.ingest_events(
            [
                {
                    "auditID": "a",
                    "stage": "ResponseComplete",
                    "verb": "get",
                    "stageTimestamp": "2025-01-01T00:30:00.000000Z",
                }
            ]
        )
    cfg = tmp_path / "kaudit.yaml"
    cfg.write_text("tz: Asia/Shanghai\n")
    monkeypatch.delenv("KAUDIT_TZ", raising=False)
    q = "* | select date_format(from_unixtime(__time__), '%H:%i') as t"
    runner = CliRunner()
    res = runner.invoke(
        build(), ["query", "--db", str(db), "--config", str(cfg), "--format", "json", q]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == [{"t": "08:30"}]
    cfg.write_text("tz: Mars/Olympus\n")
    res = runner.invoke(build(), ["query", "--db", str(db), "--config", str(cfg), q])
    assert res.exit_code == 1 and "unknown time zone" in res.output
