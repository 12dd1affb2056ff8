"""Bad input never stops a run and never loses the good events around it."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

from kaudit.event.batch import REJECT_RAW_LIMIT
from kaudit.sources.follow import decode_lines

from .conftest import event, exported


def _run(
    kaudit: Callable[..., Result], db: Path, *paths: Path, extra: tuple[str, ...] = ()
) -> tuple[int, dict[str, Any]]:
    res = kaudit("ingest", "--db", str(db), "--json", *extra, *map(str, paths))
    return res.exit_code, json.loads(res.stdout)


def _rejects(kaudit: Callable[..., Result], db: Path) -> list[dict[str, Any]]:
    res = kaudit("rejects", "--db", str(db), "--json", "--limit", "100")
    assert res.exit_code == 0
    return [json.loads(x) for x in res.stdout.splitlines()]


def test_bad_lines_among_good_ones(kaudit: Callable[..., Result], db: Path, tmp_path: Path) -> None:
    good = [event(i) for i in range(5)]
    wrong_code = event(90)
    wrong_code["responseStatus"] = {"code": "two hundred"}
    bad_time = event(91, stageTimestamp="yesterday", requestReceivedTimestamp="today")
    lines = [
        json.dumps(good[0]),
        '{"kind":"Event","auditID":"x", "stage": "Resp',  # truncated JSON
        json.dumps(good[1]),
        json.dumps(wrong_code),
        json.dumps(bad_time),
        "[1, 2, 3]",
        json.dumps(good[2]),
        "",
        json.dumps(good[3]),
        json.dumps(good[4]),
    ]
    src = tmp_path / "mixed.log"
    src.write_text("\n".join(lines) + "\n")
    code, summary = _run(kaudit, db, src)
    assert code == 2
    assert summary["stored"] == 5
    assert summary["rejected_by_reason"] == {
        "invalid_json": 1,
        "wrong_type": 1,
        "bad_timestamp": 1,
        "not_an_object": 1,
    }
    rejects = {r["line"]: r for r in _rejects(kaudit, db)}
    assert rejects[2]["reason"] == "invalid_json" and rejects[2]["raw"] == lines[1]
    assert "responseStatus.code" in rejects[4]["message"]
    assert "yesterday" in rejects[5]["message"]
    assert rejects[6]["reason"] == "not_an_object"
    assert all(r["source"] == str(src) for r in rejects.values())
    assert sorted(e["auditID"] for e in exported(kaudit, db)) == sorted(e["auditID"] for e in good)


def test_binary_garbage_and_huge_event(
    kaudit: Callable[..., Result], db: Path, tmp_path: Path
) -> None:
    huge = event(7, requestObject={"data": "x" * (10 * 1024 * 1024)})
    src = tmp_path / "junk.log"
    src.write_bytes(
        json.dumps(event(1)).encode()
        + b"\n\xff\xfe\x00\x81garbage\x00\n"
        + json.dumps(huge).encode()
        + b"\n"
        + json.dumps(event(2)).encode()
        + b"\n"
    )
    code, summary = _run(kaudit, db, src)
    assert code == 2
    assert summary["stored"] == 2
    assert summary["rejected_by_reason"] == {"not_utf8": 1, "too_large": 1}
    big = next(r for r in _rejects(kaudit, db) if r["reason"] == "too_large")
    assert big["line"] == 3 and "--max-event-size" in big["message"]
    assert big["raw"] == json.dumps(huge)[:REJECT_RAW_LIMIT]  # its first MiB, to look at
    # the limit is a setting: raised, the same event is stored
    code, summary = _run(kaudit, db, src, extra=("--max-event-size", "16MiB"))
    assert summary["stored"] == 1


def test_empty_file_and_cut_gzip(kaudit: Callable[..., Result], db: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_text("")
    data = "".join(json.dumps(event(i)) + "\n" for i in range(2000)).encode()
    full = gzip.compress(data)
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(full[: len(full) // 2])
    good = tmp_path / "good.log"
    good.write_text(json.dumps(event(5000)) + "\n")
    code, summary = _run(kaudit, db, empty, cut, good)
    assert code == 2
    assert summary["rejected_by_reason"] == {"empty_input": 1, "truncated_gzip": 1}
    # the events before the cut are kept, and the next input is still read
    assert 0 < summary["stored"] < 2001
    ids = {e["auditID"] for e in exported(kaudit, db)}
    assert event(5000)["auditID"] in ids and event(0)["auditID"] in ids


def test_user_mistakes_are_one_line_errors(
    kaudit: Callable[..., Result], db: Path, tmp_path: Path
) -> None:
    res = kaudit("ingest", "--db", str(db), str(tmp_path / "missing.log"))
    assert res.exit_code == 1
    assert (
        res.output.strip()
        == f"kaudit: error: no such file or directory: {tmp_path / 'missing.log'}"
    )
    res = kaudit("stats", "--db", str(tmp_path / "none.duckdb"))
    assert res.exit_code == 1 and "ingest events first" in res.output
    res = kaudit("prune", "--db", str(db), "--older-than", "soon")
    assert res.exit_code == 1 and "not a duration" in res.output


def test_unknown_text_format_is_reported_not_crashed(
    kaudit: Callable[..., Result], db: Path, tmp_path: Path
) -> None:
    src = tmp_path / "notes.txt"
    src.write_text("hello\nworld\n")
    good = tmp_path / "good.log"
    good.write_text(json.dumps(event(1)) + "\n")
    code, summary = _run(kaudit, db, src, good)
    assert code == 2 and summary["stored"] == 1
    (reject,) = _rejects(kaudit, db)
    assert reject["reason"] == "unreadable" and "--format" in reject["message"]


def test_every_reader_keeps_the_same_length_of_a_refused_text(
    kaudit: Callable[..., Result], db: Path, tmp_path: Path
) -> None:
    """`kaudit rejects` shows up to `REJECT_RAW_LIMIT` of a refused record, however it was read:
    a whole document of no known format (once cut at 4 KiB) and a followed file's line (once
    at 64 KiB)."""
    doc = json.dumps(list(range(20_000)), indent=1)  # ~130 KB, a JSON document of numbers
    src = tmp_path / "numbers.json"
    src.write_text(doc)
    code, summary = _run(kaudit, db, src)
    assert code == 2 and summary["rejected_by_reason"] == {"unknown_format": 1}
    assert _rejects(kaudit, db)[0]["raw"] == doc
    line = json.dumps(event(1, requestObject={"data": "x" * (2 * REJECT_RAW_LIMIT)})).encode()
    got = decode_lines(line + b"\n", 1, "live.log", max_event_size=1024, redact=True)
    assert [(r.reason, r.raw) for r in got.rejects] == [
        ("too_large", line[:REJECT_RAW_LIMIT].decode())
    ]


def test_a_first_line_cut_short_does_not_take_the_events_after_it(
    kaudit: Callable[..., Result], db: Path, tmp_path: Path
) -> None:
    """A first line that starts like JSON but is cut short once made the input look like one
    JSON document spread over lines, and every event after it went into one reject."""
    good = [event(i) for i in range(5)]
    src = tmp_path / "audit.log"
    src.write_text('{"kind": "Event", "auditID": "x", "sta\n' + "".join(
        json.dumps(e) + "\n" for e in good))  # fmt: skip
    code, summary = _run(kaudit, db, src)
    assert code == 2 and summary["stored"] == 5
    (reject,) = _rejects(kaudit, db)
    assert (reject["line"], reject["reason"]) == (1, "invalid_json")
    assert reject["raw"] == '{"kind": "Event", "auditID": "x", "sta'
    # documents spread over lines are still read as one, also with an object on a line
    pretty = tmp_path / "list.json"
    pretty.write_text(json.dumps({"kind": "EventList", "items": [event(9)]}, indent=2))
    array = tmp_path / "array.json"
    array.write_text("[\n" + ",\n".join(json.dumps(event(i)) for i in (10, 11)) + "\n]\n")
    code, summary = _run(kaudit, db, pretty, array)
    assert code == 0 and summary["stored"] == 3
