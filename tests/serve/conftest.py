"""Real `kaudit serve` processes on 127.0.0.1, and an apiserver-like webhook sender."""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from kaudit.serve.auth import TokenStore, tokens_path
from kaudit.store.duckdb import DuckDBStore

PY = sys.executable
# fixed, recent: generated data is the same in every run, and lag figures stay plausible
START = datetime(2026, 1, 1, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "kaudit.serve", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Server:
    """One `kaudit serve` subprocess with its config; restartable on the same port."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self.root = root
        self.port = free_port()
        self.config = {"db": str(root / "data" / "kaudit.duckdb"), "port": self.port, **config}
        self.config_path = root / "kaudit.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config))
        tls = self.config.get("tls") or {}
        self.ca = tls.get("cert") and str(Path(tls["cert"]).parent / "ca.pem")
        self.scheme = "https" if tls.get("cert") else "http"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "serve.log"
        self.tokens = TokenStore(tokens_path(root / "data"))

    @property
    def db(self) -> Path:
        return Path(self.config["db"])

    def start(self, timeout: float = 20.0) -> None:
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [PY, "-m", "kaudit.serve", "serve", "--config", str(self.config_path)],
            stdout=log,
            stderr=log,
            cwd=self.root,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"kaudit serve exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = self.request("GET", "/readyz", timeout=1.0)
                if status == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"kaudit serve not ready: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        finally:
            self.proc = None
        assert code == 0, self.log.read_text()[-3000:]

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        if self.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.ca)
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        conn = self.connection(timeout)
        try:
            h = {"Content-Type": "application/json", **(headers or {})}
            if token:
                h["Authorization"] = f"Bearer {token}"
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def stored_keys(self) -> list[tuple[str, str, str, str]]:
        """Identity of every stored event (read from the file: the server must be stopped)."""
        with DuckDBStore.open(self.db, read_only=True) as store:
            rows = (
                store.reader()
                .execute(
                    "SELECT cluster, auditID, stage, "
                    "strftime(stageTimestamp, '%Y-%m-%dT%H:%M:%S.%f') FROM events"
                )
                .fetchall()
            )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def event_key(cluster: str, ev: dict[str, Any]) -> tuple[str, str, str, str]:
    ts = ev["stageTimestamp"].rstrip("Z")
    head, _, frac = ts.partition(".")
    return (cluster, ev["auditID"], ev["stage"], f"{head}.{(frac + '000000')[:6]}")


def eventlist(items: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})


def send_with_retry(
    server: Server,
    path: str,
    body: bytes,
    token: str,
    attempts: int = 40,
    initial: float = 0.1,
    factor: float = 1.5,
    cap: float = 2.0,
) -> int:
    """POST like kube-apiserver's webhook: retry on any error with jittered backoff
    (spec k8s-audit §9.5, with shorter delays). Returns the number of attempts used."""
    delay = initial
    for attempt in range(1, attempts + 1):
        try:
            status, _ = server.request("POST", path, body, token, timeout=30)
            if 200 <= status <= 206:
                return attempt
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(delay * (1 + 0.2 * random.random()))
        delay = min(cap, delay * factor)
    raise AssertionError(f"batch not accepted after {attempts} attempts")


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    d = tmp_path / "tls"
    res = run_cli("certs", "create", "--dir", str(d), "--host", "localhost", "--host", "127.0.0.1")
    assert res.returncode == 0, res.stderr
    return d


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    servers: list[Server] = []

    def make(config: dict[str, Any] | None = None) -> Server:
        s = Server(tmp_path, config or {})
        servers.append(s)
        return s

    yield make
    for s in servers:
        if s.proc is not None:
            s.proc.kill()
            s.proc.wait(10)


def env_without_token() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("KAUDIT_TOKEN", None)
    return env
