"""Known-bad networks for `security_check_ip`: sorted ranges, looked up by bisection.

Default list: `kaudit/data/known-bad-networks.txt`, derived from the IPFire location database's
`drop` and `anonymous-proxy` flags (CC-BY-SA-4.0, see the file's header). Users add more lists
(one IP or CIDR per line, `#` comments) or a newer libloc `location.db` with `kaudit intel add`.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable
from pathlib import Path

from kaudit.enrich.libloc import flagged_networks
from kaudit.errors import InputError, Location

DEFAULT_LIST = Path(__file__).resolve().parent.parent / "data" / "known-bad-networks.txt"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BadNetworks:
    """A set of networks; `contains(ip)` is a bisection over merged ranges per IP version."""

    def __init__(self, networks: Iterable[Network] = ()) -> None:
        ranges: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for net in networks:
            ranges[net.version].append((int(net.network_address), int(net.broadcast_address)))
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        for version, rs in ranges.items():
            merged: list[tuple[int, int]] = []
            for lo, hi in sorted(rs):
                if merged and lo <= merged[-1][1] + 1:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
                else:
                    merged.append((lo, hi))
            self._starts[version] = [lo for lo, _ in merged]
            self._ends[version] = [hi for _, hi in merged]

    def __len__(self) -> int:
        return sum(len(v) for v in self._starts.values())

    def contains(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        n = int(addr)
        starts = self._starts[addr.version]
        i = bisect.bisect_right(starts, n) - 1
        return i >= 0 and n <= self._ends[addr.version][i]


def read_list(path: Path) -> list[Network]:
    """One IP or CIDR per line (anything after whitespace is a comment), `#` comments."""
    out: list[Network] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the bad-IP list: {e}", Location(str(path))) from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        item = line.split("#", 1)[0].strip().split()
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item[0], strict=False))
        except ValueError:
            raise InputError(
                f"not an IP address or CIDR: {item[0]!r}", Location(str(path), lineno, 1)
            ) from None
    return out


def load_networks(paths: Iterable[Path]) -> BadNetworks:
    """The default list plus every extra list or libloc database given."""
    nets: list[Network] = read_list(DEFAULT_LIST)
    for p in paths:
        if p.suffix == ".db":
            nets.extend(n for n, _ in flagged_networks(p))
        else:
            nets.extend(read_list(p))
    return BadNetworks(nets)
