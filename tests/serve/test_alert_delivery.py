"""`kaudit serve` with a channel that answers after 8 s beside a fast one: the fast channel gets
the alerts at once, the slow channel's overflow is on the alerts and in /metrics, and a stop
waits `drain_timeout` for the queues, then records what is left."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson

from kaudit.store.duckdb import DuckDBStore
from loopback import Receiver

from .conftest import Server, eventlist, send_with_retry


def _exec(n: int) -> dict[str, Any]:
    # now: old event times would make the scheduler re-run past windows ("late rows")
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "stage": "ResponseStarted", "auditID": f"00000000-0000-0000-0000-0000000000{n:02d}",
        "verb": "create",
        "requestURI": f"/api/v1/namespaces/prod/pods/web-{n}/exec?command=id&container=web",
        "user": {"username": "mallory"}, "sourceIPs": ["47.100.1.2"],
        "objectRef": {"resource": "pods", "namespace": "prod", "name": f"web-{n}",
                      "subresource": "exec"},
        "responseStatus": {"code": 101},
        "requestReceivedTimestamp": ts, "stageTimestamp": ts,
    }  # fmt: skip


def _wait(cond: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


def test_slow_channel_overflow_metrics_and_drain_on_stop(make_server: Any) -> None:
    slow, fast = Receiver(8.0), Receiver(0.0)
    server: Server = make_server(
        {
            "alerts": {
                "channels": {
                    "slow": {"type": "webhook", "url": slow.url},
                    "fast": {"type": "webhook", "url": fast.url},
                },
                "retries": 0,
                "queue_messages": 1,
                "drain_timeout": "1s",
                "throttle_messages": 1000,
            }
        }
    )
    ingest = server.tokens.create("ingest", "ingest", "t", "prod")[0]
    viewer = server.tokens.create("api", "viewer", "v")[0]
    server.start()
    events = [_exec(i) for i in range(4)]  # four requests: four alerts
    ids = [e["auditID"] for e in events]
    for n, e in enumerate(events):
        send_with_retry(server, "/audit/webhook", eventlist([e]), ingest)
        acked = time.monotonic()
        # each alert reaches the fast channel at once, while the slow one is still on its
        # first message (8 s): a queue of one message cannot overflow the fast channel
        assert _wait(lambda n=n: set(fast.alert_ids()) == set(ids[: n + 1]), 5), fast.alert_ids()
        assert max(t for t, _ in fast.arrived) - acked < 2.0
    assert slow.answered == 0

    status, body = server.request("GET", "/api/alerts?limit=100", token=viewer)
    assert status == 200
    alerts = {a["fields"]["事件ID"]: a for a in orjson.loads(body)["alerts"]}
    assert set(alerts) == set(ids)
    full = [a for a in alerts.values() if any("queue full" in e for e in a["delivery_errors"])]
    # the first message is being sent, the second waits: the third and fourth did not fit
    assert {a["fields"]["事件ID"] for a in full} == set(ids[2:]), alerts
    assert all(e.startswith("slow: ") for a in full for e in a["delivery_errors"])
    status, body = server.request("GET", "/metrics", token=viewer)
    text = body.decode()
    assert 'kaudit_alert_delivery_queue_full_total{channel="slow"} 2\n' in text
    assert 'kaudit_alert_delivery_queue_full_total{channel="fast"} 0\n' in text
    assert 'kaudit_alert_delivery_failures_total{channel="slow"} 2\n' in text
    assert 'kaudit_alert_delivery_failures_total{channel="fast"} 0' in text
    assert 'kaudit_alert_delivered_total{channel="fast"} 4' in text
    assert 'kaudit_alert_delivery_queue_messages{channel="slow"} 2' in text

    # stop: one second for the slow channel, then what is left is recorded on its alerts
    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 10
    with DuckDBStore.open(server.db, read_only=True) as store:
        rows = store.reader().execute("SELECT delivery_errors FROM alerts").fetchall()
    per_alert = [orjson.loads(r) for (r,) in rows]
    errs = sorted(e for x in per_alert for e in x)
    # every message the slow channel did not deliver is on its alert, once
    assert errs == [
        "slow: not sent: delivery queue full (1 messages waiting; the channel is slower than "
        "the alerts)",
    ] * 2 + [
        "slow: not sent: kaudit stopped before delivery (drain_timeout 1s)",
        "slow: still being sent when kaudit stopped (drain_timeout 1s); outcome unknown",
    ], errs
