"""Dedup, re-alert delay, silences, routing, throttle and digests, driven by a fake clock."""

from __future__ import annotations

from kaudit.alert.channels import FakeChannel
from kaudit.alert.model import FakeClock, Silence, fingerprint
from kaudit.alert.noise import Route, Throttle, apply_hits, plan_messages, route
from kaudit.alert.pipeline import Notifier
from kaudit.alert.store import AlertStore
from kaudit.detect.engine import Hit
from kaudit.detect.load import builtin_rules
from kaudit.store.duckdb import DuckDBStore

RULES = {r.id: r for r in builtin_rules()}
EXEC = RULES["exec-into-container"]  # realert 1h


def hit(ids: tuple[str, ...], key: tuple[str, ...] = ("k",), user: str = "alice") -> Hit:
    return Hit(EXEC.id, key, {"操作账号": user}, ids, 100, 100, len(ids))


def test_dedup_and_realert_delay() -> None:
    clock = FakeClock()
    u1 = apply_hits([hit(("a",))], RULES, {}, [], clock.now())
    assert [(u.notify, u.reason) for u in u1] == [(True, "new")]
    known = {u1[0].alert.fingerprint: u1[0].alert}
    clock.advance(60)
    u2 = apply_hits([hit(("b",))], RULES, known, [], clock.now())
    assert [(u.notify, u.reason) for u in u2] == [(False, "deduped")]
    assert u2[0].alert.count == 2 and u2[0].alert.event_ids == ("a", "b")
    # the same event again (overlapping windows, replays) does not even count
    u3 = apply_hits([hit(("b",))], RULES, {u2[0].alert.fingerprint: u2[0].alert}, [], clock.now())
    assert u3[0].alert.count == 2
    clock.advance(3600)
    u4 = apply_hits([hit(("c",))], RULES, {u2[0].alert.fingerprint: u2[0].alert}, [], clock.now())
    assert [(u.notify, u.reason) for u in u4] == [(True, "realert")]


def test_silence_with_expiry() -> None:
    clock = FakeClock()
    s = Silence("s1", EXEC.id, (("操作账号", "ci-*"),), int(clock.now()) + 7200)
    u = apply_hits([hit(("a",), user="ci-bot")], RULES, {}, [s], clock.now())
    assert u[0].alert.status == "silenced" and not u[0].notify
    other = apply_hits([hit(("b",), ("k2",), user="alice")], RULES, {}, [s], clock.now())
    assert other[0].notify
    clock.advance(7200)
    later = apply_hits([hit(("c",), ("k3",), user="ci-bot")], RULES, {}, [s], clock.now())
    assert later[0].notify and later[0].alert.status == "firing"


def test_routing_by_severity_and_labels() -> None:
    a = apply_hits([hit(("a",))], RULES, {}, [], 0)[0].alert  # medium, label brief=7.1
    routes = [
        Route(("pager",), min_severity="high"),
        Route(("ding",), labels=(("brief", "7.1"),)),
        Route(("mail", "ding"), min_severity="low"),
    ]
    assert route(a, routes) == ["ding", "mail"]
    assert route(a, [Route(("x",), stop=True), Route(("y",))]) == ["x"]


def test_throttle_reports_what_it_held_back_and_digests() -> None:
    clock = FakeClock()
    alerts = [
        apply_hits([hit((f"e{i}",), (f"k{i}",))], RULES, {}, [], 0)[0].alert for i in range(8)
    ]
    th = Throttle(limit=1, per_s=60)
    # 8 alerts > 5: one digest message for the rule
    out = plan_messages(alerts, [Route(("c",))], th, clock.now())
    assert len(out) == 1 and len(out[0][1].alerts) == 8
    out2 = plan_messages(alerts[:2], [Route(("c",))], th, clock.now())
    assert out2 == [] and len(th.held["c"]) == 2
    clock.advance(61)
    out3 = plan_messages(alerts[2:3], [Route(("c",))], th, clock.now())
    assert len(out3) == 1 and len(out3[0][1].held_back) == 2


def test_notifier_stores_alerts_and_delivery_failures() -> None:
    store = DuckDBStore.open(":memory:")
    clock = FakeClock()
    ok, bad = FakeChannel("ok"), FakeChannel("bad", fail_times=99)
    n = Notifier(AlertStore(store), RULES, {"ok": ok, "bad": bad},
                 [Route(("ok", "bad"))], clock, retries=1, backoff_s=0)  # fmt: skip
    n.handle([hit(("a",))])
    n.handle([hit(("b",))])  # deduped: stored count 2, not sent again
    assert n.flush(5)  # deliveries run on the channels' own threads
    assert len(ok.sent) == 1
    fp = fingerprint(EXEC.id, ("k",))
    a = AlertStore(store).get([fp])[fp]
    assert a.count == 2 and a.status == "firing" and a.event_ids == ("a", "b")
    assert a.delivery_errors == ("bad: fake failure",) and n.failures == {"bad": 1}
    assert store.reader().execute("SELECT count(*) FROM alerts").fetchone() == (1,)
    AlertStore(store).set_status(fp[:6], "acknowledged")
    assert AlertStore(store).list_alerts(status="acknowledged")[0].fingerprint == fp
