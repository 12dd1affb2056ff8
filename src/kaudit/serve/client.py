"""Reach a running `kaudit serve` from the CLI when it holds the store (DuckDB: one writer).

    remote_for(db_path_or_config, server_url=None) -> Client | None

With `server_url` (`--server URL`), the token comes from `KAUDIT_TOKEN` (or `token=`). Without
it, the server is found through `serve.json`, which `kaudit serve` writes next to the DB (mode
0600) while it runs: its URL, pid, CA and a local admin token that lives as long as the server.
Anyone who can read that file could read the DB file itself, so this gives nothing away.
"""

from __future__ import annotations

import http.client
import os
import ssl
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from kaudit.errors import ConfigError, KauditError, QueryError, StoreError

SERVER_FILE = "serve.json"


class RemoteError(KauditError):
    """The server answered with an error, or could not be reached."""


@dataclass(frozen=True, slots=True)
class Client:
    """A small HTTP client of the kaudit API (stdlib only)."""

    url: str
    token: str | None
    ca: str | None = None
    timeout: float = 300.0

    def _conn(self) -> http.client.HTTPConnection:
        u = urllib.parse.urlsplit(self.url)
        host = u.hostname or "127.0.0.1"
        if u.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.ca) if self.ca else None
            return http.client.HTTPSConnection(
                host, u.port or 443, timeout=self.timeout, context=ctx
            )
        return http.client.HTTPConnection(host, u.port or 80, timeout=self.timeout)

    def _request(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> http.client.HTTPResponse:
        if query:
            qs = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
            path = f"{path}?{qs}" if qs else path
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        conn = self._conn()
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise RemoteError(f"cannot reach kaudit serve at {self.url}: {exc}") from None
        if resp.status >= 400:
            detail = resp.read()
            conn.close()
            try:
                msg = orjson.loads(detail).get("detail") or detail.decode()
            except (orjson.JSONDecodeError, AttributeError):
                msg = detail.decode("utf-8", "replace")
            if resp.status == 400 and path.startswith("/api/query"):
                raise QueryError(str(msg))
            if resp.status in (401, 403):
                raise ConfigError(f"{self.url}: {msg} (set KAUDIT_TOKEN to an API token)")
            raise RemoteError(f"{self.url}{path.split('?')[0]}: HTTP {resp.status}: {msg}")
        return resp

    def _json(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        resp = self._request(method, path, body, query)
        try:
            return orjson.loads(resp.read())
        finally:
            resp.close()

    # --- the API ---------------------------------------------------------------------------
    def query(
        self,
        text: str,
        start: int | None = None,
        end: int | None = None,
        tz: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"query": text, "from": start, "to": end, "tz": tz}
        result: dict[str, Any] = self._json("POST", "/api/query", body)
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", "/api/stats")
        return result

    def prune(self, older_than: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", "/api/prune", {"older_than": older_than})
        return result

    def events(self, cluster: str, audit_id: str) -> list[dict[str, Any]]:
        q = urllib.parse.quote
        result: list[dict[str, Any]] = self._json(
            "GET", f"/api/events/{q(cluster, safe='')}/{q(audit_id, safe='')}"
        )
        return result

    def export(
        self,
        where: str | None = None,
        cluster: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> Iterator[bytes]:
        """NDJSON lines (with their newline), streamed."""
        resp = self._request(
            "GET",
            "/api/export",
            query={"where": where, "cluster": cluster, "start": start, "end": end},
        )
        try:
            while True:
                line = resp.readline()
                if not line:
                    break
                yield line
        finally:
            resp.close()


def _server_file(db_path_or_config: str | Path | Any) -> Path:
    db = getattr(db_path_or_config, "db", db_path_or_config)
    return Path(str(db)).parent / SERVER_FILE


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remote_for(
    db_path_or_config: str | Path | Any, server_url: str | None = None, token: str | None = None
) -> Client | None:
    """A client of the server holding this store, or None when no server holds it.

    `db_path_or_config` is the DB path or a `ServeConfig`. An explicit `server_url` always
    gives a client (token: `token` or `KAUDIT_TOKEN`; CA: `KAUDIT_CA`)."""
    token = token or os.environ.get("KAUDIT_TOKEN")
    if server_url:
        return Client(server_url.rstrip("/"), token, os.environ.get("KAUDIT_CA"))
    path = _server_file(db_path_or_config)
    try:
        info = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(info, dict) or not _alive(int(info.get("pid", 0))):
        return None
    return Client(str(info["url"]), token or info.get("token"), info.get("ca"))


def locked_error(db: str | Path) -> StoreError:
    """What to say when the store is locked and no server can be reached."""
    return StoreError(
        f"the store {db} is locked by another process and no kaudit server answers for it; "
        "stop that process, or give the server with --server URL (and KAUDIT_TOKEN)"
    )


def store_or_remote(db: str | Path, read_only: bool) -> tuple[Any, Client | None]:
    """`(store, None)` normally; `(None, client)` when a running `kaudit serve` holds the
    store's lock (or `KAUDIT_SERVER` names a server). Raises `locked_error` when the store is
    locked and no server answers for it."""
    from kaudit.store.duckdb import DuckDBStore

    explicit = os.environ.get("KAUDIT_SERVER")
    if explicit:
        return None, remote_for(db, explicit)
    try:
        return DuckDBStore.open(db, read_only=read_only), None
    except StoreError as exc:
        if "in use" not in str(exc):
            raise
        client = remote_for(db)
        if client is None:
            raise locked_error(db) from None
        return None, client


@dataclass(frozen=True, slots=True)
class RemoteAlerts:
    """The `AlertStore` methods the CLI uses, through a server's API (`kaudit alerts` and
    `kaudit silence` while `kaudit serve` holds the store)."""

    client: Client

    @staticmethod
    def _alert(d: dict[str, Any]) -> Any:
        from kaudit.alert.model import Alert

        return Alert(
            d["fingerprint"], d["rule"], d["title"], d["severity"], d["status"], int(d["count"]),
            int(d["first_seen"]), int(d["last_seen"]), d["last_notified"], tuple(d["key"]),
            d["fields"], tuple(d["event_ids"]), d["labels"], tuple(d["mitre"]),
            tuple(d["delivery_errors"]),
        )  # fmt: skip

    def list_alerts(self, status: str | None = None, rule: str | None = None,
                    limit: int = 100) -> list[Any]:  # fmt: skip
        doc = self.client._json("GET", "/api/alerts", status=status, rule=rule, limit=limit)
        return [self._alert(a) for a in doc["alerts"]]

    def _fp(self, prefix: str) -> str:
        return urllib.parse.quote(prefix, safe="")

    def find(self, prefix: str) -> Any:
        return self._alert(self.client._json("GET", f"/api/alerts/{self._fp(prefix)}"))

    def set_status(self, prefix: str, status: str) -> Any:
        action = {"acknowledged": "ack", "resolved": "resolve"}[status]
        return self._alert(self.client._json("POST", f"/api/alerts/{self._fp(prefix)}/{action}"))

    @staticmethod
    def _silence(d: dict[str, Any]) -> Any:
        from kaudit.alert.model import Silence

        pairs = tuple((str(a), str(b)) for a, b in d["matchers"])
        return Silence(d["id"], d["rule"], pairs, int(d["expires"]), d["comment"])

    def silences(self, now: float | None = None) -> list[Any]:
        return [self._silence(s) for s in self.client._json("GET", "/api/silences")["silences"]]

    def add_silence_for(self, rule: str | None, matchers: list[tuple[str, str]],
                        duration: str, comment: str = "") -> Any:  # fmt: skip
        body = {"rule": rule, "match": [f"{k}:{v}" for k, v in matchers], "for": duration,
                "comment": comment}  # fmt: skip
        return self._silence(self.client._json("POST", "/api/silences", body))

    def remove_silence(self, sid: str) -> None:
        self.client._json("DELETE", f"/api/silences/{urllib.parse.quote(sid, safe='')}")
