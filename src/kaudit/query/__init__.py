"""SLS queries (`search | SQL`) on the store: `run_query`, `compile_query` (see docs/query.md)."""

from __future__ import annotations

from typing import Any

__all__ = ["compile_query", "run_query"]


def __getattr__(name: str) -> Any:
    # Loaded when first asked for (PEP 562): the compiler brings sqlglot, which commands that
    # never query (`kaudit ingest --no-detect`) need not wait for at start-up.
    if name in __all__:
        from kaudit.query import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
