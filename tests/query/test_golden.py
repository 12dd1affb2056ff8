"""Golden query files (tests/query/golden/*.yaml): input, expected DuckDB SQL and parameters,
expected rows. Every case is also executed, so a wrong expectation fails.

Regenerate after an intended change with `KAUDIT_REGEN_GOLDEN=1 pytest tests/query/test_golden.py`
and review the diff: the rows are the contract.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlglot
import yaml

from kaudit.query.run import compile_query, execute, prepare
from kaudit.store.duckdb import DuckDBStore

from .conftest import fake_functions, open_store
from .golden_data import golden_events

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = sorted(GOLDEN.glob("*.yaml"))
REGEN = os.environ.get("KAUDIT_REGEN_GOLDEN") == "1"


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (SQL, long queries) as literal blocks, for readable diffs."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def pretty(sql: str) -> str:
    """The SQL as sqlglot's pretty printer writes it (equivalent DuckDB SQL, one clause a line)."""
    return sqlglot.parse_one(sql, read="duckdb").sql("duckdb", pretty=True)


def plain(v: Any) -> Any:
    """Row values as YAML-friendly plain data."""
    if isinstance(v, datetime | date):
        return v.isoformat(sep=" ") if isinstance(v, datetime) else v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
    if isinstance(v, list | tuple):
        return [plain(x) for x in v]
    return v


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@pytest.fixture(scope="module")
def store() -> Iterator[DuckDBStore]:
    s = open_store(golden_events(), fake=False)
    prepare(s, fake_functions())
    yield s
    s.close()


def test_there_are_golden_cases() -> None:
    names = {p.stem for p in CASES}
    for required in ("brief_a_exec", "brief_b_public_ip", "ack_delete", "ack_update"):
        assert required in names


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden(path: Path, store: DuckDBStore) -> None:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    compiled = compile_query(
        case["query"], start=case.get("start"), end=case.get("end"), tz=case.get("tz", "UTC")
    )
    prepare(store, fake_functions()).start_query()
    result = execute(store, compiled)
    got_rows = [plain(list(r)) for r in result.rows]
    if REGEN:
        case["sql"] = pretty(compiled.sql)
        case["params"] = list(compiled.params)
        case["columns"] = list(result.columns)
        case["rows"] = got_rows
        path.write_text(
            yaml.dump(case, Dumper=_BlockDumper, allow_unicode=True, sort_keys=False, width=100),
            encoding="utf-8",
        )
        return
    assert pretty(compiled.sql) == case["sql"]
    assert list(compiled.params) == case["params"]
    assert list(result.columns) == case["columns"]
    expected = case["rows"]
    if not case.get("ordered", True):
        got_rows = sorted(got_rows, key=repr)
        expected = sorted(expected, key=repr)
    assert same(got_rows, expected), f"{path.name}: rows differ:\n{got_rows}\n!=\n{expected}"
    assert len(expected) >= case.get("min_rows", 1)
