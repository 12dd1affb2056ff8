"""Query result values as JSON can hold them (no query machinery: the CLI loads this at start)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any


def json_value(v: Any) -> Any:
    """A result value as JSON can hold it: times as ISO text, decimals as numbers, JSON types
    kept (the CLI's `--format json` and the HTTP API answer the same)."""
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, timedelta):
        return v.total_seconds()
    if isinstance(v, dict):
        return {str(k): json_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [json_value(x) for x in v]
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v
