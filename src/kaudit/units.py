"""Durations (`15m`, `7d`, `1h30m`) and sizes (`8MiB`) as users write them in options and files.

One parser for every command and file, so that `--last`, `--older-than`, `retention`, a rule's
`every`/`window` and `--span` all accept the same spellings.
"""

from __future__ import annotations

import re

_DURATION_PART = re.compile(r"(\d+)\s*(s|m|h|d|w)")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$", re.IGNORECASE)
_BYTES = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_duration(text: str) -> int:
    """`90s`, `15m`, `2h`, `7d`, `2w`, `1h30m` -> seconds (> 0); ValueError otherwise."""
    t = text.strip()
    pos = total = 0
    for m in _DURATION_PART.finditer(t):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _SECONDS[m.group(2)]
        pos = m.end()
    if not t or pos != len(t) or total <= 0:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 15m, 12h, 7d)")
    return total


def parse_size(text: str | int) -> int:
    """`512KiB`, `8MiB`, `1GB`, `1048576` -> bytes (> 0); ValueError otherwise."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text > 0:
            return text
        raise ValueError(f"not a size: {text!r}")
    m = _SIZE.match(str(text))
    size = int(float(m.group(1)) * _BYTES[(m.group(2) or "b").lower()[:1]]) if m else 0
    if size <= 0:
        raise ValueError(f"not a size: {text!r} (use e.g. 512KiB, 8MiB)")
    return size
