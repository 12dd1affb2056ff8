"""Native NDJSON is cut into lines a block at a time, without a Python object per line: the
lines, their numbers and their redaction must be exactly what reading line by line gives."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from kaudit.event import decode
from kaudit.event.decode import DecodeOptions, Decoder, Input
from kaudit.event.redact import MARKER, SECRET_MARKS

from .conftest import event
from .test_redact import SECRET, _on_secret


def _read(path: Path, **options: Any) -> tuple[list[tuple[Any, ...]], list[Any]]:
    rows: list[tuple[Any, ...]] = []
    rejects: list[Any] = []
    for batch, found in Decoder(DecodeOptions(**options)).batches(Input(path.name, path)):
        rejects += found
        for text, line, flag in batch.iter_texts():
            rows.append((line, text if isinstance(text, str) else text.decode(), flag))
    return rows, rejects


def _j(n: int) -> str:
    return json.dumps(event(n))


def _lines(data: bytes) -> list[tuple[int, str, bool]]:
    """What reading line by line gives: every non-blank line, without its line end."""
    out = []
    for n, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            out.append((n, line.removesuffix(b"\r").decode(), False))
    return out


@pytest.mark.parametrize("block", [64, 1024, 8 * 1024 * 1024], ids=["tiny", "small", "default"])
def test_lines_and_numbers_are_those_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(decode, "_BLOCK", block)  # many blocks: numbers go on across them
    data = (
        f"{_j(1)}\r\n{_j(2)}\r\n\n\n{_j(3)}\n\r\n{_j(4)}\n"
        + "\n".join(_j(i) for i in range(5, 60))
        + f"\n{_j(60)}"  # no newline at the end
    ).encode()
    path = tmp_path / "audit.log"
    path.write_bytes(data)
    rows, rejects = _read(path)
    assert rows == _lines(data)
    assert not rejects


def test_white_space_lines_are_read_one_by_one(tmp_path: Path) -> None:
    data = f"{_j(1)}\n   \n\t{_j(2)}\n {_j(3)}  \n{_j(4)}\n".encode()
    path = tmp_path / "audit.log"
    path.write_bytes(data)
    rows, _ = _read(path)
    assert [r[0] for r in rows] == [1, 3, 4, 5]  # the blank line 2 is skipped
    assert rows[1][1] == f"\t{_j(2)}"  # kept as written: the store parses it


def test_secret_lines_are_redacted_in_place(tmp_path: Path) -> None:
    created = _on_secret(7, "create", requestObject=SECRET, responseObject=SECRET)
    listed = event(8, objectRef={"resource": "secrets"})  # Metadata: nothing to redact
    data = "\n".join([_j(1), json.dumps(created), json.dumps(listed), _j(2)]).encode()
    path = tmp_path / "audit.log.gz"
    path.write_bytes(gzip.compress(data))
    rows, _ = _read(path)
    assert [(r[0], r[2]) for r in rows] == [(1, False), (2, True), (3, False), (4, False)]
    kept = json.loads(rows[1][1])
    assert kept["requestObject"]["data"] == {"password": MARKER, "user": MARKER}
    assert kept["auditID"] == created["auditID"]
    assert rows[2][1] == json.dumps(listed)
    # switched off, the text is left as it was
    rows, _ = _read(path, redact=False)
    assert [r[1] for r in rows] == data.decode().split("\n")


def test_a_block_with_a_bad_line_keeps_its_neighbours(tmp_path: Path) -> None:
    big = json.dumps(event(3, userAgent="x" * 500))
    data = f"{_j(1)}\n".encode() + b"\xff\xfe garbage\n" + f"{_j(2)}\n{big}\n".encode()
    path = tmp_path / "audit.log"
    path.write_bytes(data)
    rows, rejects = _read(path, max_event_size=len(big) - 1)
    assert [r[0] for r in rows] == [1, 3]
    assert sorted((r.line, r.reason) for r in rejects) == [(2, "not_utf8"), (4, "too_large")]


class _Trickle(io.RawIOBase):
    """A pipe that hands over a few bytes per read, as standard input may."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), 7, len(self._data))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


@pytest.mark.parametrize("tail", ["\n", "", "\n\n"], ids=["newline", "none", "blank"])
def test_blocks_of_short_reads_hold_every_line_once(
    monkeypatch: pytest.MonkeyPatch, tail: str
) -> None:
    monkeypatch.setattr(decode, "_BLOCK", 100)
    text = "\n".join(_j(i) if i % 5 else "x" * 450 for i in range(40)) + tail
    rejects: list[Any] = []
    blocks = list(decode._read_raw_blocks(_Trickle(text.encode()), "<stdin>", rejects))
    assert b"\n".join(b.data for b in blocks).decode() == text.removesuffix("\n")
    assert [b.start for b in blocks][:2] == [1, blocks[0].count() + 1]
    assert not rejects


def test_stream_gives_what_batches_give(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode, "_BLOCK", 512)
    created = _on_secret(7, "create", requestObject=SECRET)
    lines = [_j(1), "not json", json.dumps(created), *(_j(i) for i in range(10, 30))]
    data = "\n".join(lines).encode().replace(b"not json", b"not \xff json")  # not UTF-8
    path = tmp_path / "audit.log"
    path.write_bytes(data)
    rows, rejects = _read(path)
    streamed: list[tuple[Any, ...]] = []
    found: list[Any] = []
    for block, bad in Decoder(DecodeOptions()).stream(Input(path.name, path)):
        found += bad
        if block is not None:
            cols = [block.column(i).to_pylist() for i in range(3)]
            streamed += list(zip(*cols, strict=True))
    assert streamed == rows
    assert [(r.line, r.reason) for r in found] == [(r.line, r.reason) for r in rejects]
    assert [r.reason for r in found] == ["not_utf8"]


def test_a_read_buffer_is_used_again_only_once_nothing_refers_to_it() -> None:
    def address(a: Any) -> int:
        return int(a.__array_interface__["data"][0])

    pool = decode.Buffers(keep=3)
    first = pool.take(64)
    at = address(first)
    held = pa.py_buffer(first[:10])  # what a block's string views hold on to
    del first
    second = pool.take(64)
    assert address(second) != at  # the first is still referred to
    del held
    again = pool.take(64)
    assert address(again) == at  # now it is free again
    third = pool.take(64)
    assert address(third) not in (at, address(second))  # the others are all held
    assert address(pool.take(32)) not in (at, address(second), address(third))  # (size)


def _marks_by_find(data: bytes) -> set[int]:
    found = set()
    for mark in SECRET_MARKS:
        i = data.find(mark)
        while i >= 0:
            found.add(i)
            i = data.find(mark, i + 1)
    return found


@pytest.mark.parametrize("shift", [0, 1, 2, 3])
def test_secret_marks_are_found_wherever_they_lie_in_a_block(shift: int) -> None:
    """The block search reads aligned 4-byte words: a mark is found at every offset from the
    word boundaries, at the very start and end of a block, whatever the block's alignment,
    and near misses (other case, cut short) are not taken for marks."""
    room = np.zeros(4096 + 8, np.uint8)
    base = int(room.__array_interface__["data"][0])
    start = (-base) % 4 + shift  # the block begins `shift` bytes after an aligned address
    decoys = b'"SECRET" "secret" "Secre "secret "sec"urityContext ecret "Sec\n'
    for mark in SECRET_MARKS:
        for at in [*range(0, 12), *range(40, 48)]:
            for tail in range(0, 12):
                data = decoys[:at] + mark + decoys[: tail % len(decoys)]
                block = room[start : start + len(data)]
                block[:] = np.frombuffer(data, np.uint8)
                got = set(int(p) for p in decode._mark_positions(block))
                assert got == _marks_by_find(data), (mark, at, tail)


def test_secret_marks_in_random_blocks_are_those_bytes_find_finds() -> None:
    rng = np.random.default_rng(7)
    # marks, near misses and fillers of every length, so marks fall at every alignment
    tokens = [*SECRET_MARKS, b'"SECRET', b'"Secre', b'"secret"', b'ecrets"', b"\n", b'"', b"S"]
    tokens += [b"x" * n for n in range(1, 8)]
    room = np.zeros(40_000, np.uint8)
    for trial in range(200):
        picked = rng.integers(0, len(tokens), int(rng.integers(0, 3000)))
        data = b"".join(tokens[i] for i in picked)
        start = trial % 4
        block = room[start : start + len(data)]
        block[:] = np.frombuffer(data, np.uint8)
        want = _marks_by_find(data)
        assert set(int(p) for p in decode._mark_positions(block)) == want
