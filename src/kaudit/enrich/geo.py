"""IP geolocation behind one seam: `GeoProvider.lookup(ip) -> GeoInfo | None`.

Default: ip2region (Chinese names down to city and ISP for China, mostly country elsewhere).
Optional: MaxMind/DB-IP mmdb files added with `kaudit intel add` (zh-CN names when present).
`ChainProvider` fills each field from the first provider that knows it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from kaudit.enrich.xdb import XdbSearcher, default_xdb_path
from kaudit.errors import InputError, Location


@dataclass(frozen=True, slots=True)
class GeoInfo:
    """What is known of one address; empty string = unknown."""

    country: str = ""  # Chinese, as SLS returns it
    province: str = ""
    city: str = ""
    isp: str = ""
    country_code: str = ""  # ISO 3166-1 alpha-2
    province_en: str = ""
    city_en: str = ""
    lat: float | None = None
    lon: float | None = None


class GeoProvider(Protocol):
    """Looks up one address (text); None when the address is unknown."""

    def lookup(self, ip: str) -> GeoInfo | None: ...


@dataclass(frozen=True, slots=True)
class FakeGeoProvider:
    """A provider backed by a dict, for tests."""

    table: Mapping[str, GeoInfo]

    def lookup(self, ip: str) -> GeoInfo | None:
        return self.table.get(ip)


# ISO codes of ip2region's Chinese country names (the ones seen in its data, by frequency).
COUNTRY_CODES: dict[str, str] = {
    "中国": "CN",
    "美国": "US",
    "日本": "JP",
    "英国": "GB",
    "加拿大": "CA",
    "法国": "FR",
    "西班牙": "ES",
    "印度": "IN",
    "德国": "DE",
    "俄罗斯": "RU",
    "澳大利亚": "AU",
    "意大利": "IT",
    "荷兰": "NL",
    "越南": "VN",
    "印度尼西亚": "ID",
    "泰国": "TH",
    "巴西": "BR",
    "马来西亚": "MY",
    "菲律宾": "PH",
    "波兰": "PL",
    "挪威": "NO",
    "瑞士": "CH",
    "韩国": "KR",
    "瑞典": "SE",
    "新加坡": "SG",
    "罗马尼亚": "RO",
    "匈牙利": "HU",
    "乌克兰": "UA",
    "爱尔兰": "IE",
    "捷克": "CZ",
    "土耳其": "TR",
    "奥地利": "AT",
    "保加利亚": "BG",
    "芬兰": "FI",
    "新西兰": "NZ",
    "阿根廷": "AR",
    "比利时": "BE",
    "南非": "ZA",
    "丹麦": "DK",
    "哥伦比亚": "CO",
    "伊朗": "IR",
    "孟加拉": "BD",
    "墨西哥": "MX",
    "葡萄牙": "PT",
    "巴基斯坦": "PK",
    "以色列": "IL",
    "智利": "CL",
    "沙特阿拉伯": "SA",
    "哈萨克斯坦": "KZ",
    "拉脱维亚": "LV",
    "立陶宛": "LT",
    "埃及": "EG",
    "希腊": "GR",
    "斯洛文尼亚": "SI",
    "斯洛伐克": "SK",
    "爱沙尼亚": "EE",
    "摩尔多瓦": "MD",
    "塞尔维亚": "RS",
    "阿联酋": "AE",
    "尼日利亚": "NG",
    "卢森堡": "LU",
    "肯尼亚": "KE",
    "厄瓜多尔": "EC",
    "秘鲁": "PE",
    "克罗地亚": "HR",
    "委内瑞拉": "VE",
    "摩洛哥": "MA",
    "柬埔寨": "KH",
    "伊拉克": "IQ",
    "马耳他": "MT",
    "黎巴嫩": "LB",
    "波多黎各": "PR",
    "塞浦路斯": "CY",
    "多米尼加": "DO",
    "科特迪瓦": "CI",
    "格鲁吉亚": "GE",
    "突尼斯": "TN",
    "哥斯达黎加": "CR",
    "坦桑尼亚": "TZ",
    "叙利亚": "SY",
    "冰岛": "IS",
    "尼泊尔": "NP",
    "波黑": "BA",
    "科威特": "KW",
    "缅甸": "MM",
    "巴勒斯坦": "PS",
    "白俄罗斯": "BY",
    "巴拿马": "PA",
    "阿富汗": "AF",
    "约旦": "JO",
    "加纳": "GH",
    "洪都拉斯": "HN",
    "亚美尼亚": "AM",
    "阿塞拜疆": "AZ",
    "乌兹别克斯坦": "UZ",
    "阿尔巴尼亚": "AL",
    "萨尔瓦多": "SV",
    "马其顿": "MK",
    "阿尔及利亚": "DZ",
    "乌干达": "UG",
    "蒙古": "MN",
    "吉尔吉斯斯坦": "KG",
    "安哥拉": "AO",
    "毛里求斯": "MU",
    "赞比亚": "ZM",
    "巴拉圭": "PY",
    "危地马拉": "GT",
    "巴林": "BH",
    "阿曼": "OM",
    "斯里兰卡": "LK",
    "尼加拉瓜": "NI",
    "乌拉圭": "UY",
    "卡塔尔": "QA",
    "黑山": "ME",
    "玻利维亚": "BO",
    "朝鲜": "KP",
    "古巴": "CU",
    "也门": "YE",
    "利比亚": "LY",
    "苏丹": "SD",
    "老挝": "LA",
    "文莱": "BN",
    "不丹": "BT",
    "马尔代夫": "MV",
    "塔吉克斯坦": "TJ",
    "土库曼斯坦": "TM",
    "埃塞俄比亚": "ET",
    "摩纳哥": "MC",
    "安道尔": "AD",
    "圣马力诺": "SM",
    "梵蒂冈": "VA",
    "列支敦士登": "LI",
    "格陵兰": "GL",
    "牙买加": "JM",
    "海地": "HT",
    "巴哈马": "BS",
}
_UNKNOWN = {"", "0"}


def _part(value: str) -> str:
    return "" if value in _UNKNOWN else value


class Ip2RegionProvider:
    """ip2region xdb (IPv4 only): `国家|区域|省份|城市|ISP`."""

    def __init__(self, path: Path | None = None) -> None:
        self.searcher = XdbSearcher(path or default_xdb_path())

    def lookup(self, ip: str) -> GeoInfo | None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if addr.version != 4:
            return None
        region = self.searcher.search(int(addr))
        if not region:
            return None
        parts = [*region.split("|"), "", "", "", "", ""][:5]
        country, _area, province, city, isp = (_part(p) for p in parts)
        if city == "内网IP":  # ip2region's marker for private ranges
            return GeoInfo(city=city, isp=isp)
        return GeoInfo(
            country=country,
            province=province,
            city=city,
            isp=isp,
            country_code=COUNTRY_CODES.get(country, ""),
        )


class MmdbProvider:
    """A MaxMind/DB-IP mmdb file (GeoLite2-City/Country/ASN, dbip-city-lite)."""

    def __init__(self, path: Path) -> None:
        import maxminddb  # imported when used: optional data, no work at start-up

        self.path = path
        try:
            self.reader = maxminddb.open_database(str(path))
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as e:
            raise InputError(f"cannot open the geo database: {e}", Location(str(path))) from None

    def lookup(self, ip: str) -> GeoInfo | None:
        try:
            rec = self.reader.get(ip)
        except ValueError:
            return None
        if not isinstance(rec, dict):
            return None
        return _from_mmdb(rec)


def _names(node: Any) -> tuple[str, str]:
    names = node.get("names", {}) if isinstance(node, dict) else {}
    return str(names.get("zh-CN", "") or names.get("en", "")), str(names.get("en", ""))


def _from_mmdb(rec: dict[str, Any]) -> GeoInfo:
    country = rec.get("country") or rec.get("registered_country") or {}
    cn_country, _ = _names(country)
    subs = rec.get("subdivisions") or [{}]
    cn_prov, en_prov = _names(subs[0])
    cn_city, en_city = _names(rec.get("city") or {})
    loc = rec.get("location") or {}
    isp = rec.get("isp") or rec.get("autonomous_system_organization") or rec.get("organization")
    return GeoInfo(
        country=cn_country,
        province=cn_prov,
        city=cn_city,
        isp=str(isp or ""),
        country_code=str(country.get("iso_code", "")) if isinstance(country, dict) else "",
        province_en=en_prov,
        city_en=en_city,
        lat=loc.get("latitude"),
        lon=loc.get("longitude"),
    )


@dataclass(frozen=True, slots=True)
class ChainProvider:
    """Each field from the first provider that knows it (user data first, then defaults)."""

    providers: Sequence[GeoProvider]

    def lookup(self, ip: str) -> GeoInfo | None:
        found: GeoInfo | None = None
        for p in self.providers:
            info = p.lookup(ip)
            if info is None:
                continue
            if found is None:
                found = info
                continue
            updates = {
                f: getattr(info, f)
                for f in GeoInfo.__slots__
                if getattr(found, f) in ("", None) and getattr(info, f) not in ("", None)
            }
            if updates:
                found = replace(found, **updates)
        return found
