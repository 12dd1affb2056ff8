"""Run the app under uvicorn: TLS, optional client certificates, JSON logs, graceful stop.

uvicorn handles SIGTERM and SIGINT: it stops accepting, lets requests in flight finish (each
is acknowledged only after its commit), then runs the app's shutdown, which stores what the
followers read and closes the store.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from types import FrameType
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kaudit.serve.app import Runtime, create_app
from kaudit.serve.config import ServeConfig
from kaudit.store.duckdb import DuckDBStore

_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STD_ATTRS and k != "color_message" and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True


Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def _client_cn(cert: dict[str, Any] | None) -> str | None:
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


class ClientCertProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools: the C parser, which reads a 400-event
    EventList several times faster than the pure-Python h11) that tells the app the verified
    client certificate's CN (scope extension `tls.client_cn`); uvicorn itself does not pass
    it on."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        cn = _client_cn(transport.get_extra_info("peercert"))
        if cn is None:
            return
        inner: ASGIApp = self.app

        async def app(scope: Scope, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})["tls"] = {"client_cn": cn}
            await inner(scope, receive, send)

        self.app = app


def uvicorn_config(config: ServeConfig, runtime: Runtime | None = None) -> uvicorn.Config:
    tls = config.tls
    kwargs: dict[str, Any] = {}
    if tls.cert:
        kwargs.update(ssl_certfile=tls.cert, ssl_keyfile=tls.key)
        if tls.client_ca:
            kwargs.update(ssl_ca_certs=tls.client_ca, ssl_cert_reqs=ssl.CERT_OPTIONAL)
    return uvicorn.Config(
        create_app(config, runtime),
        host=config.host,
        port=config.port,
        http=ClientCertProtocol,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
        limit_max_requests=None,
        **kwargs,
    )


class _Server(uvicorn.Server):
    """Exit 0 after a graceful stop: uvicorn re-raises SIGTERM once shut down, which makes a
    clean stop look like a crash to supervisors that read the status."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def serve(config: ServeConfig) -> None:
    """Run until SIGTERM/SIGINT."""
    # a crash in native code (DuckDB, uvloop, pyarrow) leaves every thread's Python stack in
    # the log instead of a bare exit status -11
    with contextlib.suppress(OSError, ValueError, AttributeError):  # stderr without a fd
        faulthandler.enable(sys.stderr, all_threads=True)
    setup_logging(config.log_level)
    # The store is opened before the server listens: a store another process holds (DuckDB
    # allows one writer) stops `kaudit serve` with one line, not a start-up traceback.
    runtime = Runtime(config)
    runtime.store = DuckDBStore.open(config.db)
    runtime.register_functions()  # likewise: an intel file that cannot be read
    server = _Server(uvicorn_config(config, runtime))
    server.run()
    if not server.started:
        sys.exit(1)
