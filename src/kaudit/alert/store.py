"""The `alerts` and `silences` tables, kept in the store's DuckDB file beside `events`.

`alerts` is queryable with plain SQL (`SELECT * FROM alerts`); fields, key, ids and labels are
JSON text.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

import orjson
import pyarrow as pa

from kaudit.alert.model import STATUSES, Alert, Silence
from kaudit.errors import ConfigError
from kaudit.store.duckdb import DuckDBStore

DDL = (
    """CREATE TABLE IF NOT EXISTS alerts (
    fingerprint VARCHAR PRIMARY KEY, rule VARCHAR, title VARCHAR, severity VARCHAR,
    status VARCHAR, count BIGINT, first_seen BIGINT, last_seen BIGINT, last_notified BIGINT,
    "key" VARCHAR, fields VARCHAR, event_ids VARCHAR, labels VARCHAR, mitre VARCHAR,
    delivery_errors VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS silences (
    id VARCHAR PRIMARY KEY, rule VARCHAR, matchers VARCHAR, expires BIGINT, comment VARCHAR)""",
)
_COLS = (
    "fingerprint", "rule", "title", "severity", "status", "count", "first_seen", "last_seen",
    "last_notified", "key", "fields", "event_ids", "labels", "mitre", "delivery_errors",
)  # fmt: skip


def _j(v: Any) -> str:
    return orjson.dumps(v, default=str).decode()


class AlertStore:
    """Alerts and silences in one kaudit store."""

    def __init__(self, store: DuckDBStore) -> None:
        self.store = store
        cur = store.reader()
        try:
            for ddl in DDL:
                cur.execute(ddl)
        finally:
            cur.close()

    def _rows(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        cur = self.store.reader()
        try:
            return cur.execute(sql, params).fetchall()
        finally:
            cur.close()

    def save(self, alerts: Iterable[Alert]) -> None:
        rows = [
            (
                a.fingerprint,
                a.rule_id,
                a.title,
                a.severity,
                a.status,
                a.count,
                a.first_seen,
                a.last_seen,
                a.last_notified,
                _j(list(a.key)),
                _j(a.fields),
                _j(list(a.event_ids)),
                _j(a.labels),
                _j(list(a.mitre)),
                _j(list(a.delivery_errors)),
            )
            for a in alerts
        ]
        if not rows:
            return
        # One statement over an Arrow table: executemany costs milliseconds per row, and an
        # import can raise thousands of alerts at once.
        batch = pa.Table.from_pylist([dict(zip(_COLS, r, strict=True)) for r in rows])
        cur = self.store.reader()
        try:
            cur.register("kaudit_alert_rows", batch)
            cur.execute(
                "INSERT OR REPLACE INTO alerts SELECT "
                + ", ".join(f'"{c}"' for c in _COLS)
                + " FROM kaudit_alert_rows"
            )
        finally:
            cur.close()

    @staticmethod
    def _alert(r: tuple[Any, ...]) -> Alert:
        d = dict(zip(_COLS, r, strict=True))
        return Alert(
            d["fingerprint"], d["rule"], d["title"], d["severity"], d["status"], int(d["count"]),
            int(d["first_seen"]), int(d["last_seen"]),
            None if d["last_notified"] is None else int(d["last_notified"]),
            tuple(orjson.loads(d["key"])), orjson.loads(d["fields"]),
            tuple(orjson.loads(d["event_ids"])), orjson.loads(d["labels"]),
            tuple(orjson.loads(d["mitre"])), tuple(orjson.loads(d["delivery_errors"])),
        )  # fmt: skip

    def get(self, fingerprints: Iterable[str]) -> dict[str, Alert]:
        fps = list(dict.fromkeys(fingerprints))
        if not fps:
            return {}
        rows = self._rows("SELECT * FROM alerts WHERE fingerprint IN (SELECT unnest(?))", [fps])
        return {r[0]: self._alert(r) for r in rows}

    def find(self, prefix: str) -> Alert:
        rows = self._rows("SELECT * FROM alerts WHERE starts_with(fingerprint, ?)", [prefix])
        if len(rows) != 1:
            what = "no alert" if not rows else f"{len(rows)} alerts"
            raise ConfigError(f"{what} with fingerprint {prefix!r}")
        return self._alert(rows[0])

    def list_alerts(
        self, status: str | None = None, rule: str | None = None, limit: int = 100
    ) -> list[Alert]:
        where: list[str] = []
        params: list[Any] = []
        if status:
            if status not in STATUSES:
                raise ConfigError(f"status {status!r}: one of {', '.join(STATUSES)}")
            where.append("status = ?")
            params.append(status)
        if rule:
            where.append("rule = ?")
            params.append(rule)
        w = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._rows(f"SELECT * FROM alerts {w} ORDER BY last_seen DESC LIMIT ?",
                          [*params, limit])  # fmt: skip
        return [self._alert(r) for r in rows]

    def set_status(self, prefix: str, status: str) -> Alert:
        a = self.find(prefix)
        self._rows("UPDATE alerts SET status = ? WHERE fingerprint = ?", [status, a.fingerprint])
        return self.find(a.fingerprint)

    def record_delivery_error(self, fingerprint: str, error: str) -> None:
        a = self.get([fingerprint]).get(fingerprint)
        if a is None:
            return
        errs = [*a.delivery_errors, error][-10:]
        self._rows("UPDATE alerts SET delivery_errors = ? WHERE fingerprint = ?",
                   [_j(errs), fingerprint])  # fmt: skip

    # --- silences -------------------------------------------------------------------------
    def add_silence(
        self, rule: str | None, matchers: list[tuple[str, str]], expires: int, comment: str = ""
    ) -> Silence:
        s = Silence(secrets.token_hex(4), rule, tuple(matchers), expires, comment)
        self._rows("INSERT INTO silences VALUES (?, ?, ?, ?, ?)",
                   [s.id, rule, _j([list(m) for m in matchers]), expires, comment])  # fmt: skip
        return s

    def silences(self, now: float | None = None) -> list[Silence]:
        rows = self._rows("SELECT * FROM silences ORDER BY expires", [])
        out = [
            Silence(
                r[0],
                r[1],
                tuple((str(a), str(b)) for a, b in orjson.loads(r[2])),
                int(r[3]),
                r[4] or "",
            )
            for r in rows
        ]
        return [s for s in out if now is None or s.expires > now]

    def remove_silence(self, sid: str) -> None:
        if not self._rows("SELECT id FROM silences WHERE id = ?", [sid]):
            raise ConfigError(f"no silence with id {sid!r}")
        self._rows("DELETE FROM silences WHERE id = ?", [sid])
