"""Every function on the allow-list runs on DuckDB with SLS (Presto) semantics."""

from __future__ import annotations

from typing import Any

import pytest

from kaudit.query.run import run_query
from kaudit.query.sls import FUNCTIONS

from .conftest import event

# One call per allowed function, with the value SLS would return on the row below.
CALLS: dict[str, tuple[str, Any]] = {
    "count": ("count(1)", 1),
    "sum": ('sum("responseStatus.code")', 403),
    "avg": ('avg("responseStatus.code")', 403.0),
    "min": ("min(verb)", "get"),
    "max": ("max(verb)", "get"),
    "count_if": ("count_if(verb = 'get')", 1),
    "approx_distinct": ("approx_distinct(verb)", 1),
    "arbitrary": ("arbitrary(verb)", "get"),
    "histogram": ("histogram(verb)", {"get": 1}),
    "approx_percentile": ('approx_percentile("responseStatus.code", 0.5)', 403),
    "max_by": ('max_by(verb, "responseStatus.code")', "get"),
    "min_by": ('min_by(verb, "responseStatus.code")', "get"),
    "bool_and": ("bool_and(verb = 'get')", True),
    "bool_or": ("bool_or(verb = 'x')", False),
    "stddev": ('stddev("responseStatus.code")', None),
    "variance": ('variance("responseStatus.code")', None),
    "array_agg": ("array_agg(verb)", ["get"]),
    "row_number": ("row_number() over (order by verb)", 1),
    "rank": ("rank() over (order by verb)", 1),
    "dense_rank": ("dense_rank() over (order by verb)", 1),
    "lag": ("lag(verb) over (order by verb)", None),
    "lead": ("lead(verb) over (order by verb)", None),
    "coalesce": ("coalesce(\"objectRef.subresource\", 'none')", "none"),
    "if": ("if(verb = 'get', 'r', 'w')", "r"),
    "nullif": ("nullif(verb, 'get')", None),
    "greatest": ("greatest(1, 5, 3)", 5),
    "least": ("least(1, 5, 3)", 1),
    "cast": ('cast("responseStatus.code" as varchar)', "403"),
    "try_cast": ("try_cast(verb as bigint)", None),
    "lower": ("lower('AbC')", "abc"),
    "upper": ("upper(verb)", "GET"),
    "length": ("length(verb)", 3),
    "substr": ("substr(verb, 2, 1)", "e"),
    "substring": ("substring(verb, 2)", "et"),
    "concat": ("concat(verb, '-', 'x')", "get-x"),
    "trim": ("trim('  a ')", "a"),
    "ltrim": ("ltrim('  a')", "a"),
    "rtrim": ("rtrim('a  ')", "a"),
    "replace": ("replace(verb, 'g', 'f')", "fet"),
    "strpos": ("strpos(verb, 't')", 3),
    "split_part": ("split_part('a/b/c', '/', 2)", "b"),
    "reverse": ("reverse(verb)", "teg"),
    "lpad": ("lpad(verb, 5, '*')", "**get"),
    "rpad": ("rpad(verb, 5, '*')", "get**"),
    "starts_with": ("starts_with(verb, 'ge')", True),
    "regexp_extract": ("regexp_extract(verb, 'x(.)', 1)", None),
    "regexp_extract_all": ("regexp_extract_all('a1b2', '[0-9]')", ["1", "2"]),
    "regexp_like": ("regexp_like(verb, '^g')", True),
    "regexp_replace": ("regexp_replace(verb, 'e', 'o')", "got"),
    "abs": ("abs(-2)", 2),
    "round": ("round(2.345, 2)", 2.35),
    "floor": ("floor(2.7)", 2),
    "ceil": ("ceil(2.1)", 3),
    "ceiling": ("ceiling(2.1)", 3),
    "sqrt": ("sqrt(16)", 4.0),
    "power": ("power(2, 3)", 8.0),
    "pow": ("pow(2, 3)", 8.0),
    "ln": ("ln(1)", 0.0),
    "log10": ("log10(100)", 2.0),
    "mod": ("mod(7, 3)", 1),
    "date_format": (
        "date_format(from_unixtime(__time__), '%Y-%m-%d %H:%i:%s')",
        "2023-11-15 06:13:21",
    ),
    "from_unixtime": ("date_format(from_unixtime(0), '%H:%i')", "08:00"),
    "to_unixtime": (
        "to_unixtime(date_parse('2023-11-14 22:13:21', '%Y-%m-%d %H:%i:%s'))",
        1700000001.0,
    ),
    "date_trunc": ("date_trunc('minute', __time__)", 1699999980),
    "date_parse": ("date_format(date_parse('2023-11-14 22:13', '%Y-%m-%d %H:%i'), '%i')", "13"),
    "now": ("now() is not null", True),
    "time_series": ("", None),  # needs GROUP BY: see the golden files fn_time_series*
    "json_array_length": ("json_array_length(sourceIPs)", 2),
    "json_array_get": ("json_array_get(sourceIPs, 1)", "10.0.0.3"),
    "json_format": ("json_format(json_array_get(sourceIPs, 0))", "8.8.4.4"),
    "json_extract": ("json_extract(requestObject, '$.spec.replicas')", "3"),
    "json_extract_scalar": ("json_extract_scalar(requestObject, '$.kind')", "Deployment"),
    "cardinality": ("cardinality(array_agg(verb))", 1),
    "array_join": ("array_join(regexp_extract_all('a1b2', '[0-9]'), '+')", "1+2"),
    "url_decode": ("url_decode('a%20b')", "a b"),
    "url_encode": ("url_encode('a b')", "a%20b"),
    "url_extract_parameter": ("url_extract_parameter(\"requestURI\", 'command')", "ls -l"),
    "url_extract_host": (
        "url_extract_host('https://k8s.example.com:6443/api?x=1#f')",
        "k8s.example.com",
    ),
    "url_extract_path": ("url_extract_path('https://k8s.example.com:6443/api?x=1#f')", "/api"),
    "url_extract_query": ("url_extract_query('https://k8s.example.com:6443/api?x=1#f')", "x=1"),
    "url_extract_protocol": ("url_extract_protocol('https://k8s.example.com/')", "https"),
    "url_extract_port": ("url_extract_port('https://k8s.example.com:6443/')", "6443"),
    "url_extract_fragment": ("url_extract_fragment('https://k8s.example.com/a#frag')", "frag"),
    "ip_to_domain": ("ip_to_domain('192.168.3.4')", "intranet"),
    "ip_to_country": ("ip_to_country('8.8.4.4')", "美国"),
    "ip_to_country_code": ("ip_to_country_code('47.100.1.2')", "CN"),
    "ip_to_province": ("ip_to_province('47.100.1.2')", "上海"),
    "ip_to_city": ("ip_to_city('47.100.1.2')", "上海市"),
    "ip_to_provider": ("ip_to_provider('47.100.1.2')", "阿里云"),
    "ip_to_geo": ("ip_to_geo('47.100.1.2')", None),
    "ip_to_city_geo": ("ip_to_city_geo('8.8.4.4')", None),
    "ip_prefix": ("ip_prefix('10.1.2.3', 8)", "10.0.0.0/8"),
    "is_subnet_of": ("is_subnet_of('10.0.0.0/8', '11.0.0.1')", False),
    "is_prefix_subnet_of": ("is_prefix_subnet_of('10.0.0.0/16', '10.0.0.0/8')", False),
    "ip_subnet_min": ("ip_subnet_min('192.168.1.0/24')", "192.168.1.0"),
    "ip_subnet_max": ("ip_subnet_max('192.168.1.0/24')", "192.168.1.255"),
    "ip_subnet_range": ("ip_subnet_range('192.168.1.0/31')", ["192.168.1.0", "192.168.1.1"]),
    "security_check_ip": ("security_check_ip('8.8.4.4')", 0),
}


@pytest.fixture(scope="module")
def store() -> Any:
    from .conftest import open_store

    s = open_store(
        [
            event(
                1,
                code=403,
                ips=("8.8.4.4", "10.0.0.3"),
                uri="/api/v1/namespaces/a/pods/p/exec?command=ls%20-l&container=c",
                request_object={"kind": "Deployment", "spec": {"replicas": 3}},
            )
        ]
    )
    yield s
    s.close()


def test_every_allowed_function_has_a_case() -> None:
    assert set(CALLS) == set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(n for n, (call, _) in CALLS.items() if call))
def test_function_runs_with_sls_semantics(name: str, store: Any) -> None:
    call, want = CALLS[name]
    res = run_query(store, f"* | select {call} as v", tz="Asia/Shanghai")
    got = res.rows[0][0]
    if isinstance(want, float):
        assert float(got) == pytest.approx(want)
    elif name == "json_extract":
        assert str(got) == want
    else:
        assert got == want


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "Asia/Kolkata", "UTC", "America/New_York"])
@pytest.mark.parametrize("unit", ["minute", "hour", "day"])
def test_date_trunc_on_unix_seconds_is_local(store: Any, tz: str, unit: str) -> None:
    """Whole-hour zones take an arithmetic fast path; the result must not depend on it."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from .conftest import T0

    res = run_query(store, f"* | select date_trunc('{unit}', __time__) as v", tz=tz)
    local = datetime.fromtimestamp(T0 + 1, ZoneInfo(tz))
    fields = {"minute": {"second": 0}, "hour": {"second": 0, "minute": 0}}
    trunc = local.replace(microsecond=0, **fields.get(unit, {"second": 0, "minute": 0, "hour": 0}))
    assert res.rows[0][0] == int(trunc.timestamp())


def test_prepared_keeps_the_registered_functions_and_registers_only_when_there_are_none(
    store_factory: Any,
) -> None:
    """Detection asks for the functions with `prepared`: replacing a registered set frees the
    callables a query on another cursor may be running (the process died with SIGSEGV)."""
    from kaudit.query.run import prepare, prepared

    from .conftest import fake_functions

    def must_not_load() -> Any:
        raise AssertionError("registered functions were replaced")

    s = store_factory([event(1)])  # registers the fake set
    registered = prepare(s)
    assert prepared(s, must_not_load) is registered
    assert run_query(s, "* | select security_check_ip('185.220.101.7') as v").rows == [(1,)]

    bare = store_factory([event(2)], fake=False)
    made = fake_functions()
    assert prepared(bare, lambda: made) is made
    assert prepared(bare, must_not_load) is made
