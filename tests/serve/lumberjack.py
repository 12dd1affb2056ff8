"""A writer that behaves like kube-apiserver's log backend on lumberjack v2 (spec k8s-audit §9.3):
rename to `<stem>-<UTC 2006-01-02T15-04-05.000><ext>` before a write that would pass maxsize,
create a new file, then (asynchronously) gzip the backup and remove the uncompressed copy, and
delete backups beyond maxbackup."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

_STAMP = re.compile(r"-(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3})(\.log)(\.gz)?$")


class Lumberjack:
    def __init__(self, path: Path, maxsize: int, maxbackup: int, compress: bool) -> None:
        self.path = path
        self.maxsize = maxsize
        self.maxbackup = maxbackup
        self.compress = compress
        self.rotations = 0
        self._mill: list[threading.Thread] = []
        self._last_stamp = ""
        self._mill_lock = threading.Lock()  # lumberjack runs one mill goroutine
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = path.open("ab")
        self.size = self.f.tell()

    def write(self, line: bytes, split: bool = False) -> None:
        """One event line; `split` writes it in two flushed halves (a partial last line)."""
        if self.size + len(line) > self.maxsize:
            self._rotate()
        if split:
            half = len(line) // 2
            self.f.write(line[:half])
            self.f.flush()
            time.sleep(0.02)
            self.f.write(line[half:])
        else:
            self.f.write(line)
        self.f.flush()
        self.size += len(line)

    def _rotate(self) -> None:
        self.f.close()
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S.%f")[:-3]
        while stamp <= self._last_stamp:  # names are unique at millisecond resolution
            time.sleep(0.001)
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S.%f")[:-3]
        self._last_stamp = stamp
        backup = self.path.with_name(f"{self.path.stem}-{stamp}{self.path.suffix}")
        os.rename(self.path, backup)
        self.f = self.path.open("ab")
        os.chmod(self.path, 0o600)
        self.size = 0
        self.rotations += 1
        t = threading.Thread(target=self._mill_run, args=(backup,), daemon=True)
        t.start()
        self._mill.append(t)

    def _mill_run(self, backup: Path) -> None:
        with self._mill_lock:
            self._mill_once(backup)

    def _mill_once(self, backup: Path) -> None:
        if self.compress:
            gz = backup.with_name(backup.name + ".gz")
            with backup.open("rb") as src, gzip.open(gz, "wb") as dst:
                shutil.copyfileobj(src, dst)
            backup.unlink()
        backups = sorted(
            (p for p in self.path.parent.iterdir() if _STAMP.search(p.name)),
            key=lambda p: _STAMP.search(p.name).group(1),  # type: ignore[union-attr]
        )
        by_stamp: dict[str, list[Path]] = {}
        for p in backups:
            by_stamp.setdefault(_STAMP.search(p.name).group(1), []).append(p)  # type: ignore[union-attr]
        stamps = sorted(by_stamp)
        for old in stamps[: max(0, len(stamps) - self.maxbackup)]:
            for p in by_stamp[old]:
                p.unlink(missing_ok=True)

    def close(self) -> None:
        self.f.close()
        for t in self._mill:
            t.join()
