"""The SLS IP and threat-intel functions, registered as DuckDB Python UDFs.

Vectorised (Arrow) UDFs with a per-query cache: a query such as example B calls the geo
functions once per distinct source IP, not once per event. `start_query()` clears the caches
so that a changed intel file is seen by the next query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
from duckdb.func import FunctionNullHandling, PythonUDFType

from kaudit.enrich import ip as ipf
from kaudit.enrich.geo import GeoInfo, GeoProvider
from kaudit.enrich.intel import BadNetworks


@dataclass
class IpFunctions:
    """The functions over one geo provider and one bad-network set."""

    geo: GeoProvider
    bad: BadNetworks
    _geo_cache: dict[str, GeoInfo | None] = field(default_factory=dict)
    _bad_cache: dict[str, int] = field(default_factory=dict)

    def start_query(self) -> None:
        self._geo_cache.clear()
        self._bad_cache.clear()

    def info(self, ip: str) -> GeoInfo | None:
        if ip not in self._geo_cache:
            addr = ipf.parse_ip(ip)
            self._geo_cache[ip] = None if addr is None else self.geo.lookup(str(addr))
        return self._geo_cache[ip]

    def security_check_ip(self, ip: str) -> int:
        if ip not in self._bad_cache:
            self._bad_cache[ip] = 1 if self.bad.contains(ip.strip()) else 0
        return self._bad_cache[ip]

    def geo_field(self, name: str) -> Callable[[str], str | None]:
        def get(ip: str) -> str | None:
            if ipf.parse_ip(ip) is None:
                return None
            info = self.info(ip)
            return "" if info is None else str(getattr(info, name) or "")

        return get

    def latlon(self, ip: str) -> str | None:
        info = self.info(ip)
        if info is None or info.lat is None or info.lon is None:
            return None
        return f"{info.lat},{info.lon}"

    def scalar_udfs(self) -> dict[str, tuple[Callable[..., Any], list[Any], str]]:
        """name -> (python function of scalars, argument types, return type)."""
        text = "VARCHAR"
        return {
            "ip_to_domain": (ipf.ip_to_domain, [text], text),
            "ip_to_country": (self.geo_field("country"), [text], text),
            "ip_to_country_en": (self.geo_field("country_code"), [text], text),
            "ip_to_country_code": (self.geo_field("country_code"), [text], text),
            "ip_to_province": (self.geo_field("province"), [text], text),
            "ip_to_province_en": (self.geo_field("province_en"), [text], text),
            "ip_to_city": (self.geo_field("city"), [text], text),
            "ip_to_city_en": (self.geo_field("city_en"), [text], text),
            "ip_to_provider": (self.geo_field("isp"), [text], text),
            "ip_to_provider_en": (self.geo_field("isp"), [text], text),
            "ip_to_geo": (self.latlon, [text], text),
            "ip_to_city_geo": (self.latlon, [text], text),
            "ip_prefix": (ipf.ip_prefix, [text, "BIGINT"], text),
            "is_subnet_of": (ipf.is_subnet_of, [text, text], "BOOLEAN"),
            "is_prefix_subnet_of": (ipf.is_prefix_subnet_of, [text, text], "BOOLEAN"),
            "ip_subnet_min": (ipf.ip_subnet_min, [text], text),
            "ip_subnet_max": (ipf.ip_subnet_max, [text], text),
            "ip_subnet_range": (_subnet_range, [text], "VARCHAR[]"),
            "security_check_ip": (self.security_check_ip, [text], "BIGINT"),
        }

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        """Register every function on a connection (its cursors share them)."""
        for name, (fn, args, ret) in self.scalar_udfs().items():
            con.create_function(
                name,
                vectorised(fn, len(args), ret),
                args,
                ret,
                type=PythonUDFType.ARROW,
                null_handling=FunctionNullHandling.SPECIAL,
                side_effects=False,
            )


def _subnet_range(cidr: str) -> list[str] | None:
    lo, hi = ipf.ip_subnet_min(cidr), ipf.ip_subnet_max(cidr)
    return None if lo is None or hi is None else [lo, hi]


_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
    "VARCHAR[]": pa.list_(pa.string()),
}


def vectorised(
    fn: Callable[..., Any], arity: int = 1, returns: str = "VARCHAR"
) -> Callable[..., Any]:
    """Wrap a scalar function as an Arrow UDF; NULL in any argument gives NULL.

    DuckDB checks the Python signature against the declared argument types, so the wrapper
    has exactly `arity` parameters.
    """

    arrow_type = _ARROW_TYPES[returns]

    def run(*cols: Any) -> Any:
        lists = [c.to_pylist() for c in cols]
        out = [
            None if any(v is None for v in row) else fn(*row) for row in zip(*lists, strict=True)
        ]
        return pa.array(out, type=arrow_type)

    if arity == 1:
        return lambda a: run(a)
    if arity == 2:
        return lambda a, b: run(a, b)
    return lambda a, b, c: run(a, b, c)
