"""The webhook end to end: TLS, two clusters, concurrent senders that retry, SIGKILL, restart."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from kaudit.sample.generate import generate

from .conftest import Server, event_key, eventlist, send_with_retry


def test_concurrent_senders_survive_sigkill_and_store_each_event_once(
    make_server: Any, certs: Path
) -> None:
    server: Server = make_server(
        {"tls": {"cert": str(certs / "server.pem"), "key": str(certs / "server-key.pem")}}
    )
    tokens = {
        "prod": server.tokens.create("ingest", "ingest", "t", "prod")[0],
        "staging": server.tokens.create("ingest", "ingest", "t", "staging")[0],
    }
    events = {
        "prod": list(generate(6000, 11, None)),
        "staging": list(generate(4000, 12, None)),
    }
    batches: list[tuple[str, bytes]] = []
    for cluster, evs in events.items():
        for i in range(0, len(evs), 400):  # --audit-webhook-batch-max-size default
            batches.append((cluster, eventlist(evs[i : i + 400])))
    batches.sort(key=lambda b: hash(b[1]))  # interleave the clusters
    server.start()

    acked = 0
    lock = threading.Lock()
    retried = 0

    def send(item: tuple[str, bytes]) -> None:
        nonlocal acked, retried
        cluster, body = item
        path = "/audit/webhook" if cluster == "prod" else "/k8s-audit"
        attempts = send_with_retry(server, path, body, tokens[cluster])
        with lock:
            acked += 1
            retried += attempts > 1

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(send, b) for b in batches]
        # SIGKILL once a third of the batches are acknowledged, while the rest are in flight
        deadline = time.monotonic() + 30
        while acked < len(batches) // 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()
        time.sleep(0.5)  # senders see refused connections and back off
        server.start()
        for f in futures:
            f.result()
    assert retried > 0  # the kill really hit requests in flight

    status, body = server.request("GET", "/api/stats", token=_admin(server))
    assert status == 200
    stats = orjson.loads(body)
    assert {c["cluster"]: c["events"] for c in stats["store"]["clusters"]} == {
        "prod": len({event_key("prod", e) for e in events["prod"]}),
        "staging": len({event_key("staging", e) for e in events["staging"]}),
    }
    server.stop()

    stored = server.stored_keys()
    expected = {event_key(c, e) for c, evs in events.items() for e in evs}
    assert len(stored) == len(set(stored))  # each once
    assert set(stored) == expected  # exactly what was sent, with the right cluster


def _admin(server: Server) -> str:
    return server.tokens.create("api", "admin", "test")[0]
