"""The product brief's queries A and B, run unchanged on generated data and checked row by row
against expectations computed here in plain Python (not through SQL)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kaudit.query.brief import QUERY_A, QUERY_B
from kaudit.query.run import run_query
from kaudit.sample.generate import generate
from kaudit.store.duckdb import DuckDBStore

from .conftest import FAKE_GEO, event, fake_functions, open_store

START = datetime(2026, 1, 5, tzinfo=UTC)
TZ = "Asia/Shanghai"


def extra_events() -> list[dict[str, Any]]:
    """Branches the generator may not reach: kubernetes-admin through a RoleBinding, several
    source IPs, a public IP hammering with 403s, a proxy IP on the bad list."""
    exec_uri = "/api/v1/namespaces/prod/pods/web-1/exec?command=id&container=web&stdout=true"
    out = [
        event(
            1,
            verb="create",
            user="kubernetes-admin",
            subresource="exec",
            stage="ResponseStarted",
            code=101,
            uri=exec_uri,
            ips=("47.100.1.2",),
            reason='RBAC: allowed by RoleBinding "ops/prod" of ClusterRole "admin" to User "alice"',
            t=int(START.timestamp()) + 100,
        ),
        event(
            2,
            verb="create",
            user="kubernetes-admin",
            subresource="exec",
            stage="ResponseStarted",
            code=101,
            uri=exec_uri,
            ips=("8.8.4.4", "10.0.0.9"),
            t=int(START.timestamp()) + 200,
        ),
        event(
            3,
            verb="create",
            user="kubernetes-admin",
            subresource="exec",
            stage="ResponseStarted",
            code=101,
            uri="/api/v1/namespaces/prod/pods/web-1/exec",
            reason='RBAC: allowed by RoleBinding "x" to User "dev-ops"',
            t=int(START.timestamp()) + 300,
        ),
    ]
    base = int(START.timestamp()) + 400
    for i in range(14):
        out.append(event(10 + i, ips=("8.8.4.4",), code=403 if i < 11 else 200, t=base + i))
    for i in range(12):
        out.append(event(40 + i, ips=("185.220.101.7",), code=401, t=base + 50 + i))
    return out


@pytest.fixture(scope="module")
def data() -> Iterator[tuple[DuckDBStore, list[dict[str, Any]]]]:
    events = list(generate(20_000, seed=11, start=START)) + extra_events()
    store = open_store(events)
    yield store, events
    store.close()


def _time(ev: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(ev["stageTimestamp"].replace("Z", "+00:00")).timestamp())


def _ip(ev: dict[str, Any]) -> str | None:
    ips = ev.get("sourceIPs")
    if ips is None:
        return None
    if len(ips) == 1:
        return str(ips[0])
    return json.dumps(ips, separators=(",", ":"))


def _code(ev: dict[str, Any]) -> int | None:
    return (ev.get("responseStatus") or {}).get("code")


def expected_a(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    rows = []
    for ev in events:
        ref = ev.get("objectRef") or {}
        if not (
            ev.get("verb", "").lower() == "create"
            and (ref.get("subresource") or "").lower() == "exec"
            and ev.get("stage", "").lower() == "responsestarted"
        ):
            continue
        uri = ev["requestURI"]
        user = (ev.get("user") or {}).get("username")
        reason = (ev.get("annotations") or {}).get("authorization.k8s.io/reason")
        m_res = re.search(r"([^?]*)/exec?.*", uri)
        m_cmd = re.search(r"\?(.*)", uri)
        if user is not None and user != "kubernetes-admin":
            account = user
        elif user == "kubernetes-admin" and reason and "RoleBinding" in reason:
            m = re.search(r' to User "(\w+)"', reason)
            account = m.group(1) if m else None
        else:
            account = "kubernetes-admin"
        local = datetime.fromtimestamp(_time(ev), ZoneInfo(TZ))
        rows.append(
            (
                ev["auditID"],
                local.strftime("%Y-%m-%d %H:%M:%S"),
                m_res.group(1) if m_res else None,
                m_cmd.group(1) if m_cmd else None,
                _code(ev),
                account,
                _ip(ev),
            )
        )
    return rows


def _domain(ip: str | None) -> str | None:
    import ipaddress

    if ip is None:
        return None
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return "invalid"
    private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8"]
    private += ["169.254.0.0/16", "::1/128", "fc00::/7", "fe80::/10"]
    nets = [ipaddress.ip_network(n) for n in private]
    return "intranet" if any(addr.version == n.version and addr in n for n in nets) else "internet"


def expected_b(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    groups: dict[str | None, list[int]] = {}
    for ev in events:
        g = groups.setdefault(_ip(ev), [0, 0, 0])
        code = _code(ev)
        g[0] += 1
        g[1] += 0 if code is not None and code < 400 else 1  # NULL code falls into ELSE 1
        g[2] += 1 if code == 403 else 0
    rows = []
    for ip, (total, fails, forbidden) in groups.items():
        domain = _domain(ip)
        if domain is None or domain == "intranet":
            continue
        rate = round(fails * 100.0 / total, 2)
        if not (total > 10 and rate > 50):
            continue
        geo = FAKE_GEO.get(ip or "")
        valid = domain != "invalid"
        bad = "yes" if ip is not None and ip.startswith("185.220.101.") else "no"

        def g(attr: str, geo: Any = geo, valid: bool = valid) -> str | None:
            return (getattr(geo, attr) if geo else "") if valid else None

        rows.append(
            (ip, total, rate, forbidden, bad, g("country"), g("province"), g("city"), g("isp"))
        )
    rows.sort(key=lambda r: -r[1])
    return rows[:100]


def test_query_a_row_by_row(data: tuple[DuckDBStore, list[dict[str, Any]]]) -> None:
    store, events = data
    res = run_query(store, QUERY_A, tz=TZ, functions=fake_functions())
    assert res.columns == ("事件ID", "操作时间", "资源", "命令", "状态码", "操作账号", "源地址")
    want = expected_a(events)
    assert len(want) >= 5  # the generator's exec attacks plus the extra events
    assert sorted(res.rows, key=lambda r: r[0]) == sorted(want, key=lambda r: r[0])
    by_id = {r[0]: r for r in res.rows}
    assert by_id["id-00001"][5] == "alice"  # kubernetes-admin through a RoleBinding
    assert by_id["id-00003"][5] is None  # `\w+` cannot match "dev-ops": NULL, as in SLS
    assert by_id["id-00003"][3] is None  # no '?': regexp_extract is NULL, not ''
    assert by_id["id-00002"][6] == '["8.8.4.4","10.0.0.9"]'  # several IPs: the JSON text


def test_query_b_row_by_row(data: tuple[DuckDBStore, list[dict[str, Any]]]) -> None:
    store, events = data
    res = run_query(store, QUERY_B, functions=fake_functions())
    assert res.columns == (
        "源地址",
        "访问次数",
        "失败率%",
        "非法访问次数",
        "是否高危IP",
        "国家",
        "省",
        "市",
        "运营商",
    )
    want = expected_b(events)
    assert len(want) >= 3
    got = [(r[0], r[1], float(r[2]), *r[3:]) for r in res.rows]
    assert [r[1] for r in got] == sorted((r[1] for r in got), reverse=True)
    assert sorted(got, key=lambda r: str(r[0])) == sorted(want, key=lambda r: str(r[0]))
    by_ip = {r[0]: r for r in got}
    assert by_ip["8.8.4.4"][4] == "no" and by_ip["8.8.4.4"][5] == "美国"
    assert by_ip["185.220.101.7"][4] == "yes"


def test_query_b_with_the_bundled_data(data: tuple[DuckDBStore, list[dict[str, Any]]]) -> None:
    """The default ip2region + IPFire data: a Tor exit is high-risk, Google is in the US."""
    from kaudit.query.run import default_functions

    store, _ = data
    res = run_query(store, QUERY_B, functions=default_functions())
    by_ip = {r[0]: r for r in res.rows}
    assert by_ip["185.220.101.7"][4] == "yes"
    assert by_ip["8.8.4.4"][4] == "no"
    assert by_ip["8.8.4.4"][5] == "美国"
