"""Fixtures for the core tests: a CLI runner, the shared corpus, small event builders."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kaudit.cli.main import build

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"


@pytest.fixture
def shared() -> Path:
    return SHARED.resolve()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "kaudit.duckdb"


@pytest.fixture
def kaudit() -> Callable[..., Result]:
    runner = CliRunner()
    cli = build()

    def run(*args: str, input: str | bytes | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return run


def event(n: int = 0, **over: Any) -> dict[str, Any]:
    """A realistic Metadata-level v1 event; `n` makes auditID and time unique."""
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"00000000-0000-4000-8000-{n:012d}",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/pods/web-0",
        "verb": "get",
        "user": {
            "username": "system:serviceaccount:default:web",
            "uid": "8f1c",
            "groups": ["system:serviceaccounts", "system:authenticated"],
        },
        "sourceIPs": ["10.0.0.7"],
        "userAgent": "kubectl/v1.30.0 (linux/amd64) kubernetes/abc",
        "objectRef": {
            "resource": "pods",
            "namespace": "default",
            "name": "web-0",
            "apiVersion": "v1",
        },
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": f"2025-01-01T00:00:{n % 60:02d}.123456Z",
        "stageTimestamp": f"2025-01-01T00:00:{n % 60:02d}.223456Z",
        "annotations": {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": 'RBAC: allowed by RoleBinding "web" of Role "r" to '
            'ServiceAccount "web/default"',
        },
    }
    ev.update(over)
    return ev


def write_ndjson(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def exported(kaudit: Callable[..., Result], db: Path, *extra: str) -> list[dict[str, Any]]:
    res = kaudit("export", "--db", str(db), *extra)
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
