"""The SLS IP functions that need no data (spec sls-query §2.3), as plain Python."""

from __future__ import annotations

import ipaddress

# What counts as `intranet` (spec enrichment.md): RFC 1918, CGNAT, loopback, link-local, and
# their IPv6 counterparts. ip2region answers `内网IP` for the same ranges.
_INTRANET = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(text: str | None) -> Address | None:
    if text is None:
        return None
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def ip_to_domain(text: str | None) -> str:
    """`intranet`, `internet`, or `invalid` for anything that is not an address (Tencent CLS)."""
    addr = parse_ip(text)
    if addr is None:
        return "invalid"
    if any(addr.version == n.version and addr in n for n in _INTRANET):
        return "intranet"
    return "internet"


def _net(text: str | None) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if text is None:
        return None
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def ip_prefix(text: str | None, bits: int | None) -> str | None:
    """`ip_prefix('192.168.1.7', 24)` -> `192.168.1.0/24`."""
    addr = parse_ip(text)
    if addr is None or bits is None or not 0 <= bits <= addr.max_prefixlen:
        return None
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


def is_subnet_of(cidr: str | None, ip: str | None) -> bool | None:
    """The address lies in the CIDR (CIDR first, as in SLS)."""
    net, addr = _net(cidr), parse_ip(ip)
    if net is None or addr is None:
        return None
    return addr.version == net.version and addr in net


def is_prefix_subnet_of(cidr: str | None, cidr2: str | None) -> bool | None:
    """`cidr2` lies inside `cidr`."""
    outer, inner = _net(cidr), _net(cidr2)
    if outer is None or inner is None:
        return None
    if outer.version != inner.version:
        return False
    return inner.subnet_of(outer)  # type: ignore[arg-type]


def ip_subnet_min(cidr: str | None) -> str | None:
    """The network address (included, like Alibaba's examples)."""
    net = _net(cidr)
    return None if net is None else str(net.network_address)


def ip_subnet_max(cidr: str | None) -> str | None:
    """The broadcast (last) address."""
    net = _net(cidr)
    return None if net is None else str(net.broadcast_address)
