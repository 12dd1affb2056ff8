"""Paths and loaders for the format tests (shared data lives in ../shared, see DESIGN.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
SHARED = HERE.parents[1] / ".." / "shared"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def panther_cases(shape: str) -> list[dict[str, Any]]:
    cases = json.loads((SHARED / "conformance" / "panther_cases.json").read_text())
    return [c for c in cases if c["shape"] == shape]


def falco_events() -> list[tuple[str, dict[str, Any]]]:
    """(file name, event) for every parseable event object of Falco's k8s_audit fixtures."""
    out = []
    for path in sorted((SHARED / "corpus" / "falco_k8s_audit").glob("*.json")):
        for line in path.read_text().splitlines():
            if line.strip():
                out.append((path.name, json.loads(line)))
    return out
