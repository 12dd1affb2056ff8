"""`kaudit generate` through click's CliRunner."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
from click.testing import CliRunner

from kaudit.cli.main import build

ARGS = ["generate", "--events", "2000", "--seed", "4", "--start", "2025-01-01T00:00:00Z"]


def run(*args: str) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(build(), [*ARGS, *args])
    return result.exit_code, result.stdout_bytes, result.stderr


def test_stdout_ndjson_and_summary_on_stderr() -> None:
    code, out, err = run()
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2000
    assert all(orjson.loads(line)["apiVersion"] == "audit.k8s.io/v1" for line in lines)
    assert "2000 events" in err and "campaigns" in err


def test_gz_file_truth_and_determinism(tmp_path: Path) -> None:
    code, out, _ = run("--quiet")
    assert code == 0
    gz = tmp_path / "audit.ndjson.gz"
    truth = tmp_path / "truth.jsonl"
    code, stdout, _ = run("--out", str(gz), "--truth", str(truth), "-q")
    assert code == 0 and stdout == b""
    data = gz.read_bytes()
    assert data[:2] == b"\x1f\x8b"
    assert gzip.decompress(data) == out
    code, _, _ = run("--out", str(tmp_path / "again.gz"), "-q")
    assert (tmp_path / "again.gz").read_bytes() == data  # byte-identical, gzip header included
    records = [orjson.loads(line) for line in truth.read_bytes().splitlines()]
    ids = {orjson.loads(line)["auditID"] for line in out.splitlines()}
    assert records and all(r["auditID"] in ids for r in records)
    assert set(records[0]) == {"auditID", "kind", "campaign", "time", "user", "sourceIP", "detail"}


def test_plain_file_and_options(tmp_path: Path) -> None:
    target = tmp_path / "a.ndjson"
    code, _, err = run("--out", str(target), "--span", "1h", "--attack-rate", "0", "--nodes", "5")
    assert code == 0, err
    events = [orjson.loads(line) for line in target.read_bytes().splitlines()]
    assert events[-1]["stageTimestamp"] < "2025-01-01T01:30:00"
    kubelets = {
        e["user"]["username"]
        for e in events
        if e["user"].get("username", "").startswith("system:node:")
    }
    assert 1 <= len(kubelets) <= 5
    assert "campaigns" in err and "attacks: 0 campaigns" in err


def test_user_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    for args, needle in (
        (["--start", "yesterday"], "--start"),
        (["--span", "forever"], "--span"),
        (["--attack", "teleport=1"], "unknown attack kind"),
        (["--attack", "exec"], "KIND=WEIGHT"),
        (["--attack-rate", "2"], "--attack-rate"),
        (["--out", str(tmp_path / "missing" / "x.ndjson")], "cannot write"),
    ):
        code, _, err = run(*args)
        assert code == 1, args
        assert needle in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
