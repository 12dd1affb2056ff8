"""SLS queries (`search | SQL`) on the store: `run_query`, `compile_query` (see docs/query.md)."""

from kaudit.query.run import compile_query, run_query

__all__ = ["compile_query", "run_query"]
