"""Read the flagged networks out of an IPFire libloc `location.db` (format v1).

Used to derive `kaudit/data/known-bad-networks.txt` from Debian's `libloc-database`
(spec enrichment.md: the `drop` flag is the only clearly redistributable known-bad list) and to
read a user's newer `location.db` with `kaudit intel add`. Layout: libloc `src/libloc/format.h`;
all integers are big-endian.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from pathlib import Path

from kaudit.errors import InputError, Location

FLAG_ANONYMOUS_PROXY = 1 << 0  # libloc A1: Tor exits, open proxies
FLAG_DROP = 1 << 3  # libloc XD: "hostile networks safe to drop" (Spamhaus DROP family)

_MAGIC = b"LOCDBXX"
# created_at, vendor, description, license, as off/len, net data off/len, tree off/len
_HEADER = struct.Struct(">QIIIIIIIII")
_NODE = struct.Struct(">III")  # zero child, one child, network index (0xFFFFFFFF = none)
_NETWORK = struct.Struct(">2s2sIH2s")  # country, reserved, asn, flags, padding
_NO_NETWORK = 0xFFFFFFFF
_V4_MAPPED = 0xFFFF << 32  # libloc stores IPv4 as ::ffff:a.b.c.d


def flagged_networks(
    path: Path, mask: int = FLAG_DROP | FLAG_ANONYMOUS_PROXY
) -> Iterator[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int]]:
    """Every network of the tree whose flags intersect `mask`, with its flags."""
    data = path.read_bytes()
    if data[:7] != _MAGIC or data[7] != 1:
        raise InputError("not a libloc v1 location database", Location(str(path)))
    hdr = _HEADER.unpack_from(data, 8)
    net_off, tree_off, tree_len = hdr[6], hdr[8], hdr[9]
    n_nodes = tree_len // _NODE.size
    stack: list[tuple[int, int, int]] = [(0, 0, 0)]  # node index, address bits, depth
    while stack:
        index, bits, depth = stack.pop()
        if index >= n_nodes:
            continue
        zero, one, network = _NODE.unpack_from(data, tree_off + index * _NODE.size)
        if network != _NO_NETWORK:
            flags = _NETWORK.unpack_from(data, net_off + network * _NETWORK.size)[3]
            if flags & mask:
                yield _to_network(bits, depth), flags
        if depth < 128:
            if zero:
                stack.append((zero, bits, depth + 1))
            if one:
                stack.append((one, bits | (1 << (127 - depth)), depth + 1))


def _to_network(bits: int, depth: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if depth >= 96 and bits >> 32 == _V4_MAPPED >> 32:
        return ipaddress.IPv4Network((bits & 0xFFFFFFFF, depth - 96))
    return ipaddress.IPv6Network((bits, depth))
