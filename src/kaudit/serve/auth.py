"""Credentials: ingest credentials (token -> cluster) and API tokens (viewer/admin), kept apart.

Tokens are random (`kat_<id>_<secret>`, 160 bits of secret) and only their SHA-256 is stored,
in `tokens.json` next to the DB (mode 0600). A high-entropy token needs no slow hash: SHA-256
cannot be reversed and there is nothing to guess. The file is re-read when it changes, so
`kaudit token create` takes effect on a running server without a restart. There are no
default credentials: an empty file lets nobody in.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import orjson

from kaudit.errors import ConfigError, Location

Kind = Literal["api", "ingest"]
ROLES = ("viewer", "admin")
TOKENS_FILE = "tokens.json"


@dataclass(frozen=True, slots=True)
class Credential:
    """One stored credential (the hash, never the token)."""

    id: str
    kind: Kind
    role: str  # viewer/admin for api; "ingest" for ingest
    cluster: str | None  # ingest credentials say which cluster their events come from
    name: str
    sha256: str
    created: float


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: an API user with a role, or an ingest sender with its cluster."""

    kind: Kind
    role: str
    cluster: str | None
    name: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_path(data_dir: Path) -> Path:
    return data_dir / TOKENS_FILE


class TokenStore:
    """The credentials file: create, list, revoke, and check a presented token."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_id: dict[str, Credential] = {}

    # --- file ------------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._by_id, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            data = orjson.loads(self.path.read_bytes())
            creds = [Credential(**c) for c in data.get("credentials", [])]
        except (orjson.JSONDecodeError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"unreadable credentials file: {exc}", Location(str(self.path))
            ) from None
        self._by_id = {c.id: c for c in creds}
        self._stamp = stamp

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        body = {"credentials": [asdict(c) for c in self._by_id.values()]}
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps(body, option=orjson.OPT_INDENT_2))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._stamp = None

    # --- changes ---------------------------------------------------------------------------
    def create(
        self, kind: Kind, role: str, name: str = "", cluster: str | None = None
    ) -> tuple[str, Credential]:
        """A new token (returned once, in clear) and its stored record."""
        if kind == "api" and role not in ROLES:
            raise ConfigError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        if kind == "ingest" and not cluster:
            raise ConfigError("an ingest credential needs a cluster name")
        ident = secrets.token_hex(4)
        token = f"kat_{ident}_{secrets.token_urlsafe(20)}"
        cred = Credential(ident, kind, role, cluster, name, _hash(token), time.time())
        with self._lock:
            self._load()
            self._by_id[ident] = cred
            self._save()
        return token, cred

    def revoke(self, ident: str) -> bool:
        with self._lock:
            self._load()
            if self._by_id.pop(ident, None) is None:
                return False
            self._save()
            return True

    def list(self) -> list[Credential]:
        with self._lock:
            self._load()
            return sorted(self._by_id.values(), key=lambda c: c.created)

    # --- checks ----------------------------------------------------------------------------
    def check(self, token: str) -> Principal | None:
        """The principal a token belongs to, or None for an unknown or malformed token."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "kat":
            return None
        with self._lock:
            self._load()
            cred = self._by_id.get(parts[1])
        if cred is None or not hmac.compare_digest(cred.sha256, _hash(token)):
            return None
        return Principal(cred.kind, cred.role, cred.cluster, cred.name)


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def may(principal: Principal, need: str) -> bool:
    """API roles: admin can do everything a viewer can."""
    if principal.kind != "api":
        return False
    return need == "viewer" or principal.role == "admin"
