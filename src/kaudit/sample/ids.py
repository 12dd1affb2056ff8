"""Seeded identifiers and kube-apiserver's timestamp format, made fast.

Times are integer microseconds since the epoch throughout the generator: they order the output
and format without floating-point drift.
"""

from __future__ import annotations

import random
import time

_VARIANT = "89ab"
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.String's alphabet


def uuid4(rng: random.Random) -> str:
    """A random (version 4) UUID string drawn from `rng`, so that output is seed-deterministic."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def name_suffix(rng: random.Random, length: int) -> str:
    """A generated-name suffix as Kubernetes makes them (`nginx-7d9c8b6f5-x2k9p`)."""
    return "".join(rng.choices(_NAME_CHARS, k=length))


class MicroTime:
    """Formats microseconds as MicroTime: RFC 3339, UTC, exactly 6 fractional digits (spec §8.1)."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[int, str] = {}

    def __call__(self, us: int) -> str:
        sec, frac = divmod(us, 1_000_000)
        prefix = self._cache.get(sec)
        if prefix is None:
            if len(self._cache) > 4096:  # output is nearly sorted: old seconds are not reused
                self._cache.clear()
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            self._cache[sec] = prefix
        return f"{prefix}.{frac:06d}Z"

    def seconds(self, us: int) -> str:
        """metav1.Time: seconds precision, as in `creationTimestamp`."""
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(us // 1_000_000))
