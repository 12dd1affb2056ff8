"""Deliveries off the detection path: a worker thread and a bounded queue per channel, tested
with real loopback HTTP receivers (one of them answering after 3 s)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kaudit.alert.channels import Channel, FakeChannel, WebhookChannel, deliver
from kaudit.alert.model import FakeClock, fingerprint
from kaudit.alert.noise import Message, Route, Throttle, apply_hits
from kaudit.alert.outbox import Outbox
from kaudit.alert.pipeline import Notifier
from kaudit.alert.store import AlertStore
from kaudit.detect.engine import Hit
from kaudit.detect.load import builtin_rules
from kaudit.serve.metrics import render_alerts
from kaudit.store.duckdb import DuckDBStore
from loopback import Receiver

RULES = {r.id: r for r in builtin_rules()}
EXEC = RULES["exec-into-container"]


@pytest.fixture
def receivers() -> Iterator[Callable[[float], Receiver]]:
    made: list[Receiver] = []

    def make(delay: float = 0.0) -> Receiver:
        made.append(Receiver(delay))
        return made[-1]

    yield make
    for r in made:
        r.close()


def hit(n: int) -> Hit:
    """A new alert per n (exec-into-container dedups by auditID)."""
    return Hit(EXEC.id, (f"id-{n}",), {"事件ID": f"id-{n}"}, (f"id-{n}",), 100, 100, 1)


def fp(n: int) -> str:
    return fingerprint(EXEC.id, (f"id-{n}",))


def notifier(channels: dict[str, Channel], **kw: Any) -> Notifier:
    store = DuckDBStore.open(":memory:")
    return Notifier(AlertStore(store), RULES, channels, [Route(tuple(channels))], FakeClock(),
                    Throttle(1000, 60), retries=0, **kw)  # fmt: skip


def errors(n: Notifier, i: int) -> tuple[str, ...]:
    return n.alerts.get([fp(i)])[fp(i)].delivery_errors


def wait(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def test_a_slow_channel_delays_neither_handle_nor_another_channel(
    receivers: Callable[[float], Receiver],
) -> None:
    slow, fast = receivers(3.0), receivers(0.0)
    n = notifier(
        {"slow": WebhookChannel("slow", slow.url), "fast": WebhookChannel("fast", fast.url)}
    )
    t0 = time.monotonic()
    for i in range(3):
        n.handle([hit(i)])
    # delivered in line this would take 9 s (three messages to a server answering in 3 s)
    assert time.monotonic() - t0 < 0.5
    assert wait(lambda: len(fast.arrived) == 3, 1.0), fast.arrived
    assert fast.arrived[-1][0] - t0 < 1.0
    assert fast.alert_ids() == ["id-0", "id-1", "id-2"]  # in order
    assert slow.answered == 0 and len(slow.arrived) == 1  # still on its first message
    # the alerts are stored before handle returns, whatever the channels do
    assert set(n.alerts.get(fp(i) for i in range(3))) == {fp(0), fp(1), fp(2)}
    assert n.delivery_stats()["fast"].delivered == 3
    assert n.delivery_stats()["slow"].queued == 3
    assert n.close(0) == 3


def test_a_full_queue_is_recorded_on_the_alert_and_in_metrics(
    receivers: Callable[[float], Receiver],
) -> None:
    slow = receivers(3.0)
    n = notifier({"slow": WebhookChannel("slow", slow.url)}, queue_size=1)
    n.handle([hit(0)])
    assert wait(lambda: len(slow.arrived) == 1, 2.0)  # the worker is sending message 0
    n.handle([hit(1)])  # queued: the one free place
    t0 = time.monotonic()
    n.handle([hit(2)])  # refused at once, not waited for
    assert time.monotonic() - t0 < 0.5
    assert errors(n, 1) == ()
    (err,) = errors(n, 2)
    assert err.startswith("slow: not sent: delivery queue full (1 messages waiting")
    assert n.failures == {"slow": 1}
    st = n.delivery_stats()["slow"]
    assert (st.queued, st.queue_full, st.delivered) == (2, 1, 0)
    detect = {"notified": {}, "failures": n.failures, "channels": ["slow"],
              "delivery": n.delivery_stats(), "counters": {}}  # fmt: skip
    text = render_alerts({}, detect)
    assert 'kaudit_alert_delivery_failures_total{channel="slow"} 1\n' in text
    assert 'kaudit_alert_delivery_queue_full_total{channel="slow"} 1\n' in text
    assert 'kaudit_alert_delivery_queue_messages{channel="slow"} 2\n' in text
    assert "# TYPE kaudit_alert_delivery_queue_messages gauge" in text
    # shutdown with a short drain: what is left is recorded, not waited for
    t0 = time.monotonic()
    assert n.close(0.2) == 2
    assert time.monotonic() - t0 < 1.0
    assert errors(n, 0) == (
        "slow: still being sent when kaudit stopped (drain_timeout 0.2s); outcome unknown",
    )
    assert errors(n, 1) == ("slow: not sent: kaudit stopped before delivery (drain_timeout 0.2s)",)
    assert n.failures == {"slow": 3}


def test_shutdown_drains_what_is_queued(receivers: Callable[[float], Receiver]) -> None:
    rx = receivers(0.2)
    n = notifier({"hook": WebhookChannel("hook", rx.url)})
    for i in range(5):
        n.handle([hit(i)])
    t0 = time.monotonic()
    assert n.close(10) == 0
    assert 0.8 < time.monotonic() - t0 < 5  # waited for the five deliveries, no longer
    assert rx.answered == 5 and rx.alert_ids() == [f"id-{i}" for i in range(5)]
    assert all(errors(n, i) == () for i in range(5)) and n.failures == {}
    # after close nothing is queued any more, and that too is on the alert
    n.handle([hit(9)])
    assert errors(n, 9) == ("hook: not sent: kaudit is shutting down",)


def test_retries_stop_when_the_drain_time_is_over() -> None:
    down = FakeChannel("down", fail_times=99)
    n = notifier({"down": down}, backoff_s=30.0)
    n.retries = 5
    n.handle([hit(0)])
    assert wait(lambda: down.fail_times == 98, 2.0)  # first attempt failed, now backing off
    t0 = time.monotonic()
    assert n.close(0.1) == 1
    assert time.monotonic() - t0 < 1.0  # not 30 s of backoff
    assert errors(n, 0)[0].endswith("outcome unknown")
    assert down.fail_times == 98  # no retry after the deadline


def test_failed_delivery_after_retries_is_recorded_by_the_worker() -> None:
    bad, ok = FakeChannel("bad", fail_times=99), FakeChannel("ok")
    n = notifier({"bad": bad, "ok": ok}, backoff_s=0.0)
    n.retries = 2
    n.handle([hit(0)])
    assert n.flush(5)
    assert errors(n, 0) == ("bad: fake failure",) and bad.fail_times == 96
    assert len(ok.sent) == 1 and n.failures == {"bad": 1}
    assert n.delivery_stats()["bad"].failed == 1


def test_deliver_stops_retrying_when_sleep_says_so() -> None:
    ch = FakeChannel("c", fail_times=9)
    err = deliver(ch, Message(()), 5, 1.0, lambda s: True)
    assert err == "c: fake failure (retries stopped: kaudit is shutting down)"
    assert ch.fail_times == 8  # one attempt only
    slept: list[float] = []
    assert deliver(FakeChannel("c", fail_times=2), Message(()), 3, 1.0, slept.append) is None
    assert slept == [1.0, 2.0]


def test_outbox_keeps_each_channels_order_and_isolates_channels() -> None:
    got: list[tuple[str, int]] = []
    gate = threading.Event()
    lock = threading.Lock()

    def send(ch: Channel, m: Message, abort: threading.Event) -> str | None:
        if ch.name == "stuck":
            gate.wait(5)
        with lock:
            got.append((ch.name, m.held_back[0].count if m.held_back else -1))
        return None

    done: list[tuple[str, str | None]] = []
    chans: dict[str, Channel] = {"a": FakeChannel("a"), "stuck": FakeChannel("stuck")}
    box = Outbox(chans, send, lambda c, m, e: done.append((c, e)), size=10)
    a = apply_hits([hit(0)], RULES, {}, [], 0)[0].alert
    for i in range(4):
        m = Message((a,), (dataclasses.replace(a, count=i),))
        assert box.put("a", m) and box.put("stuck", m)
    assert not box.put("nope", Message((a,)))  # no such channel: refused, not queued
    assert wait(lambda: len(got) == 4, 2.0)
    assert got == [("a", 0), ("a", 1), ("a", 2), ("a", 3)]  # "stuck" held nobody up
    gate.set()
    assert box.flush(5)
    assert [x for x in got if x[0] == "stuck"] == [("stuck", i) for i in range(4)]
    assert len(done) == 8 and all(e is None for _, e in done)
    assert box.close(1) == []
