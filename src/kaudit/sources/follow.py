"""Follow the audit log kube-apiserver writes (`--audit-log-path`) through lumberjack rotation.

spec k8s-audit §9.3: before a write would pass maxsize, lumberjack renames `audit.log` to
`audit-<UTC 2006-01-02T15-04-05.000>.log` (gzip-compressed to `….log.gz` afterwards when
compress is on, the uncompressed copy then removed), creates a new `audit.log`, and deletes the
oldest backups beyond maxbackup. The follower:

- reads only complete lines of the live file: a partial last line waits for its newline;
- after a rotation, reads the old file to its end through the descriptor it holds (a rename or
  a removal does not close it), then every backup rotated after it, then the new live file;
- notices truncation (the file shrank below the offset) and replacement (another inode with
  no backup of the old one) and starts the new content from its beginning;
- submits each read with a checkpoint (`kaudit.sources.checkpoint`) that the writer commits in
  the transaction of its events, and advances only when that commit succeeded. On start it
  finds the checkpointed file among the live file and the backups by the fingerprint of its
  first bytes (gzip backups are fingerprinted decompressed) and resumes there; if that file is
  gone, it reads every backup rotated after the checkpointed file was opened. Re-reading is
  harmless: the store keeps an event once (`kaudit.store.duckdb`), so doubt is settled by
  reading again, never by skipping.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import re
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

import orjson

from kaudit.errors import DecodeError
from kaudit.event.batch import REJECT_RAW_LIMIT, Reject
from kaudit.event.formats.legacy import parse_legacy_line
from kaudit.event.redact import may_hold_secret, redact_event
from kaudit.sources.checkpoint import Checkpoint
from kaudit.store.base import AppendResult

log = logging.getLogger("kaudit.follow")

FP_BYTES = 1024  # fingerprint: the first bytes of a file; the first event is unique
CHUNK = 4 * 1024 * 1024  # bytes read per step (one store append of ~3,000 events)
_NEVER = float("-inf")
# lumberjack backupTimeFormat "2006-01-02T15-04-05.000"
_STAMP = re.compile(r"-(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3})$")


@dataclass(frozen=True, slots=True)
class Backup:
    path: Path
    rotated_at: float  # the time lumberjack put in the name (UTC)
    compressed: bool


def list_backups(live: Path) -> list[Backup]:
    """Rotated copies of `live`, oldest first; a `.log` still being compressed wins over its
    half-written `.log.gz`."""
    stem, ext = live.stem, live.suffix
    found: dict[str, Backup] = {}
    try:
        entries = list(live.parent.iterdir())
    except FileNotFoundError:
        return []
    for p in entries:
        name = p.name
        compressed = name.endswith(".gz")
        base = name[:-3] if compressed else name
        if not base.startswith(stem + "-") or not base.endswith(ext):
            continue
        core = base[: len(base) - len(ext)] if ext else base
        m = _STAMP.search(core)
        if m is None or core[: m.start()] != stem:
            continue
        stamp = datetime.strptime(m.group(1), "%Y-%m-%dT%H-%M-%S.%f").replace(tzinfo=UTC)
        b = Backup(p, stamp.timestamp(), compressed)
        if base in found and not found[base].compressed:
            continue  # keep the uncompressed one (the .gz may be half-written)
        found[base] = b
    return sorted(found.values(), key=lambda b: (b.rotated_at, b.path.name))


def _open(path: Path, compressed: bool) -> IO[bytes]:
    f = path.open("rb")
    if compressed:
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    return f


def head_fingerprint(path: Path, compressed: bool, n: int = FP_BYTES) -> tuple[int, str] | None:
    """(length, sha256) of the first `n` bytes of the uncompressed content; None if unreadable."""
    try:
        with _open(path, compressed) as f:
            head = f.read(n)
    except (OSError, EOFError, zlib.error):
        return None
    return len(head), hashlib.sha256(head).hexdigest()


def _fp_matches(path: Path, compressed: bool, cp: Checkpoint) -> bool:
    if cp.fp_len == 0:
        return False
    got = head_fingerprint(path, compressed, cp.fp_len)
    return got is not None and got == (cp.fp_len, cp.fp)


# --- turning lines into event texts ---------------------------------------------------------
@dataclass(slots=True)
class Lines:
    """Event texts of some complete lines, and the lines refused."""

    texts: list[str]
    lines: list[int | None]
    redacted: list[bool]
    rejects: list[Reject]


def decode_lines(
    data: bytes, first_line: int, name: str, max_event_size: int, redact: bool
) -> Lines:
    """JSON lines (native events) and legacy text lines, as `kaudit ingest` reads them."""
    out = Lines([], [], [], [])
    for i, raw in enumerate(data.split(b"\n")):
        line = raw.rstrip(b"\r")
        if not line.strip():
            continue
        lineno = first_line + i
        if len(line) > max_event_size:
            out.rejects.append(
                Reject(
                    name,
                    lineno,
                    "too_large",
                    f"event is {len(line)} bytes, above the limit of {max_event_size}",
                    line[:REJECT_RAW_LIMIT].decode("utf-8", "replace"),
                )
            )
            continue
        try:
            text = line.decode()
        except UnicodeDecodeError as exc:
            out.rejects.append(
                Reject(
                    name,
                    lineno,
                    "not_utf8",
                    f"not UTF-8 text at byte {exc.start}",
                    line[:REJECT_RAW_LIMIT].decode("utf-8", "replace"),
                )
            )
            continue
        flagged = False
        if line.lstrip()[:1] == b"{":
            if redact and may_hold_secret(line):
                with contextlib.suppress(orjson.JSONDecodeError):
                    obj = orjson.loads(line)
                    if isinstance(obj, Mapping):
                        new, flagged = redact_event(obj)
                        if flagged:
                            text = orjson.dumps(new).decode()
        else:
            # --audit-log-format=legacy (spec k8s-audit §9.4)
            try:
                text = orjson.dumps(parse_legacy_line(text)).decode()
            except DecodeError as exc:
                out.rejects.append(Reject(name, lineno, exc.reason, exc.message, text))
                continue
        out.texts.append(text)
        out.lines.append(lineno)
        out.redacted.append(flagged)
    return out


# --- the follower ---------------------------------------------------------------------------
class Sink(Protocol):
    """Where the follower's reads go: the writer (stores them and the checkpoint together)."""

    def __call__(self, lines: Lines, cp: Checkpoint, nbytes: int) -> Future[AppendResult]: ...


@dataclass(slots=True)
class _Reader:
    """One open file and the position after its last stored complete line."""

    path: Path  # name it had when opened (the live path, or a backup)
    f: IO[bytes]
    compressed: bool
    final: bool  # a backup: complete, its last line need not end with a newline
    dev: int
    ino: int
    offset: int
    line: int
    opened_at: float
    fp_len: int = 0
    fp: str = ""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.f.close()


class Follower:
    """Follows one live path (through its rotations) for one cluster."""

    def __init__(
        self,
        live: Path,
        cluster: str,
        sink: Sink,
        load_checkpoint: Callable[[str], Checkpoint | None],
        *,
        poll_interval: float = 0.25,
        start_at: str = "beginning",
        max_event_size: int = 8 * 1024 * 1024,
        redact: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.live = live
        self.key = str(live)
        self.cluster = cluster
        self.sink = sink
        self.load_checkpoint = load_checkpoint
        self.poll_interval = poll_interval
        self.start_at = start_at
        self.max_event_size = max_event_size
        self.redact = redact
        self.clock = clock
        self.pending: list[tuple[Backup, int, int]] = []  # backup, start offset, start line
        self.current: _Reader | None = None
        self.resume_live: tuple[int, int] | None = None  # (offset, line) in the live file
        self.resume_cp: Checkpoint | None = None
        self.last_backup_at = _NEVER  # rotation time of the newest backup read (or skipped)

    # --- start -----------------------------------------------------------------------------
    def restore(self) -> None:
        """Work out, from the checkpoint and the files present, what is left to read."""
        cp = self.load_checkpoint(self.key)
        self.resume_cp = cp
        backups = list_backups(self.live)
        newest = backups[-1].rotated_at if backups else _NEVER
        self.last_backup_at = _NEVER
        if cp is None:
            if self.start_at == "end":
                self.resume_live = self._live_end()
                self.last_backup_at = newest
                log.info("following %s from its end", self.live)
            else:
                self.pending = [(b, 0, 1) for b in backups]
            return
        if self.live.exists() and _fp_matches(self.live, False, cp):
            # still the same live file: every backup listed before it was read already
            self.resume_live = (cp.offset, cp.line)
            self.last_backup_at = newest
            return
        for i, b in enumerate(backups):
            if _fp_matches(b.path, b.compressed, cp):
                self.pending = [(b, cp.offset, cp.line)] + [(x, 0, 1) for x in backups[i + 1 :]]
                log.info("resuming %s in backup %s at byte %d", self.live, b.path, cp.offset)
                return
        # the checkpointed file is gone: read every backup it may have become or preceded
        self.pending = [(b, 0, 1) for b in backups if b.rotated_at >= cp.opened_at - 2]
        log.warning(
            "checkpointed file of %s not found; re-reading %d backup(s)",
            self.live,
            len(self.pending),
        )

    def _live_end(self) -> tuple[int, int]:
        try:
            with self.live.open("rb") as f:
                data = f.read()
        except FileNotFoundError:
            return 0, 1
        end = data.rfind(b"\n") + 1
        return end, data.count(b"\n", 0, end) + 1

    # --- loop ------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Follow until `stop` is set; a failed store write is retried from the checkpoint."""
        self.restore()
        while not stop.is_set():
            try:
                progressed = self.step()
            except _SinkFailed as exc:
                log.warning("storing lines of %s failed, retrying: %s", self.live, exc)
                self._restart()
                stop.wait(min(5.0, self.poll_interval * 8))
                continue
            except Exception:
                # a bug or an odd file must not end following: start over from the checkpoint
                log.exception("following %s failed; resuming from the checkpoint", self.live)
                stop.wait(1.0)
                self._restart()
                continue
            if not progressed:
                stop.wait(self.poll_interval)
        if self.current is not None:
            self.current.close()

    def step(self) -> bool:
        """Read what can be read now; True if anything was read or a file changed."""
        if self.current is None:
            opened = self._open_next()
            if self.current is None:
                return opened  # nothing to read, or the plan changed (backups first)
        cur = self.current
        progressed = self._read(cur)
        if cur.final:
            if not progressed:  # the backup is read to its end
                cur.close()
                self.current = None
                done, _, _ = self.pending.pop(0)
                self.last_backup_at = max(self.last_backup_at, done.rotated_at)
                return True
            return True
        return self._check_live(cur) or progressed

    def _open_next(self) -> bool:
        while self.pending:
            b, offset, line = self.pending[0]
            try:
                self.current = self._reader(b.path, b.compressed, True, offset, line)
                return True
            except FileNotFoundError:
                # compressed or deleted (maxbackup) meanwhile: look for what it became
                self.pending = self._refresh_pending()
        offset, line = self.resume_live or (0, 1)
        try:
            r = self._reader(self.live, False, False, offset, line)
        except FileNotFoundError:
            return False
        cp = self.resume_cp
        if self.resume_live is not None and cp is not None and not _fd_matches(r, cp):
            # rotated between the look at the checkpoint and now: look again
            r.close()
            self.pending, self.resume_live = [], None
            self.restore()
            return True
        # Backups rotated since the last one read, before the file just opened, come first:
        # rotations may have happened while backups were read (or while kaudit was down).
        before: list[Backup] = []
        for b in list_backups(self.live):
            if b.rotated_at <= self.last_backup_at:
                continue
            if self._is_file(b, r):
                break  # the open file was rotated meanwhile; what follows it comes later
            before.append(b)
        if before:
            r.close()
            self.pending = [(b, 0, 1) for b in before]
            self.resume_live = None
            return True
        self.current = r
        self.resume_live = None
        return True

    def _refresh_pending(self) -> list[tuple[Backup, int, int]]:
        now = {b.path.name.removesuffix(".gz"): b for b in list_backups(self.live)}
        out: list[tuple[Backup, int, int]] = []
        for b, offset, line in self.pending:
            found = now.get(b.path.name.removesuffix(".gz"))
            if found is None:
                log.warning("backup %s was deleted before it could be read", b.path)
            else:
                out.append((found, offset, line))
        return out

    def _reader(self, path: Path, compressed: bool, final: bool, offset: int, line: int) -> _Reader:
        f = _open(path, compressed)
        try:
            st = path.stat() if compressed else os.fstat(f.fileno())
            r = _Reader(path, f, compressed, final, st.st_dev, st.st_ino, 0, line, self.clock())
            if compressed:
                # the fingerprint and the offsets are of the uncompressed content; a gzip
                # stream is skipped by decompressing
                head = f.read(FP_BYTES)
                r.fp_len, r.fp = len(head), hashlib.sha256(head).hexdigest()
                skip = min(offset, len(head))
                remaining = offset - skip
                while remaining:
                    got = f.read(min(remaining, CHUNK))
                    if not got:
                        break
                    remaining -= len(got)
                r.offset = offset - remaining
                if skip < len(head):
                    r.f = _Prefixed(head[skip:], f)  # type: ignore[assignment]
            else:
                if offset > st.st_size:
                    log.warning("%s is shorter than its checkpoint: truncated, read anew", path)
                    offset, r.line = 0, 1
                f.seek(offset)
                r.offset = offset
                self._refingerprint(r)
        except BaseException:
            f.close()
            raise
        return r

    def _restart(self) -> None:
        """After a failed store write: forget the reading state, resume from the checkpoint
        the store holds (the failed transaction left none of its events)."""
        if self.current is not None:
            self.current.close()
        self.current, self.pending, self.resume_live = None, [], None
        self.restore()

    @staticmethod
    def _refingerprint(r: _Reader) -> None:
        if r.compressed or r.fp_len >= FP_BYTES:
            return
        # through the descriptor: after a rotation the name is another file's
        head = os.pread(r.f.fileno(), FP_BYTES, 0)
        if len(head) >= r.fp_len:
            r.fp_len, r.fp = len(head), hashlib.sha256(head).hexdigest()

    # --- reading ---------------------------------------------------------------------------
    def _read(self, r: _Reader) -> bool:
        """Read and store the complete lines available; True if any were stored."""
        want = CHUNK
        data = r.f.read(want)
        if not data:
            return False
        while True:
            end = data.rfind(b"\n") + 1
            if end:
                break
            # no complete line yet: a partial last line, or one longer than the chunk
            more = r.f.read(want)
            if more:
                data += more
                if len(data) <= self.max_event_size + CHUNK:
                    continue
            if r.final or len(data) > self.max_event_size:
                end = len(data)  # a backup's last line, or a line too large to keep
                break
            r.f.seek(r.offset)  # wait for the rest of the line
            return False
        complete, rest = data[:end], data[end:]
        if rest and not r.compressed:
            r.f.seek(r.offset + end)
        elif rest:
            # gzip cannot seek back cheaply: keep the partial tail for the next read
            r.f = _Prefixed(rest, r.f)  # type: ignore[assignment]
        lines = decode_lines(complete, r.line, str(r.path), self.max_event_size, self.redact)
        new_offset = r.offset + end
        new_line = r.line + complete.count(b"\n") + (0 if complete.endswith(b"\n") else 1)
        self._refingerprint(r)
        cp = Checkpoint(
            self.key,
            r.dev,
            r.ino,
            r.fp_len,
            r.fp,
            str(r.path),
            new_offset,
            new_line,
            r.opened_at,
        )
        fut = self.sink(lines, cp, len(complete))
        try:
            fut.result()
        except Exception as exc:
            raise _SinkFailed(str(exc)) from exc
        r.offset, r.line = new_offset, new_line
        return True

    def _check_live(self, r: _Reader) -> bool:
        """Rotation, replacement or truncation of the live file; True if the file changed."""
        try:
            st = self.live.stat()
        except FileNotFoundError:
            st = None
        if st is not None and (st.st_dev, st.st_ino) == (r.dev, r.ino):
            if st.st_size < r.offset:
                log.warning("%s was truncated; reading it from the start", self.live)
                r.f.seek(0)
                r.offset, r.line, r.fp_len, r.fp = 0, 1, 0, ""
                return True
            return False
        if st is None and not list_backups(self.live):
            return False  # removed, nothing rotated: wait for it to come back
        # rotated (renamed) or replaced: finish the old file through our descriptor
        r.final = True
        while self._read(r):
            pass
        r.close()
        self.current = None
        backups = list_backups(self.live)
        newer: list[Backup] = []
        for i, b in enumerate(backups):
            if self._is_file(b, r):
                newer = backups[i + 1 :]
                self.last_backup_at = max(self.last_backup_at, b.rotated_at)
                break
        else:
            newer = [b for b in backups if b.rotated_at >= r.opened_at - 2]
        self.pending = [(b, 0, 1) for b in newer]
        log.info("%s rotated; %d backup(s) to read before the new file", self.live, len(newer))
        return True

    @staticmethod
    def _is_file(b: Backup, r: _Reader) -> bool:
        if not b.compressed:
            with contextlib.suppress(OSError):
                st = b.path.stat()
                if (st.st_dev, st.st_ino) == (r.dev, r.ino):
                    return True
        if r.fp_len == 0:
            return False
        got = head_fingerprint(b.path, b.compressed, r.fp_len)
        return got == (r.fp_len, r.fp)


def _fd_matches(r: _Reader, cp: Checkpoint) -> bool:
    """Does the open (uncompressed) file start with the checkpointed file's first bytes?"""
    if cp.fp_len == 0:
        return True  # the checkpointed file was empty: nothing to skip
    head = os.pread(r.f.fileno(), cp.fp_len, 0)
    return len(head) == cp.fp_len and hashlib.sha256(head).hexdigest() == cp.fp


class _SinkFailed(Exception):
    pass


class _Prefixed:
    """A gzip stream with bytes pushed back in front (a partial line read too early)."""

    def __init__(self, prefix: bytes, inner: IO[bytes]) -> None:
        self.prefix = prefix
        self.inner = inner

    def read(self, n: int = -1) -> bytes:
        if self.prefix:
            out, self.prefix = self.prefix, b""
            return out
        return self.inner.read(n)

    def close(self) -> None:
        self.inner.close()

    def fileno(self) -> int:
        return self.inner.fileno()

    def seek(self, pos: int) -> int:
        raise OSError("cannot seek a gzip backup")


def expand(pattern: str) -> list[Path]:
    """The live files a configured path names: itself, or the files a glob matches that are
    not rotated backups."""
    if not any(c in pattern for c in "*?["):
        return [Path(pattern)]
    p = Path(pattern)
    base = p.parent
    out = []
    for f in sorted(base.glob(p.name)):
        if f.name.endswith(".gz") or _STAMP.search(f.stem):
            continue
        out.append(f)
    return out
