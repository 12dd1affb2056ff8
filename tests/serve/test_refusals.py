"""What the server refuses: the right status, the reason, nothing partial stored; API auth;
mTLS ingest; webhook-config; the CLI through the server while it holds the store."""

from __future__ import annotations

import http.client
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from kaudit.sample.generate import generate

from .conftest import START, Server, eventlist, run_cli


def test_refusals_store_nothing_and_api_needs_tokens(make_server: Any) -> None:
    server: Server = make_server(
        {"webhook": {"max_body_size": "256KiB", "max_event_size": "16KiB"}}
    )
    ingest = server.tokens.create("ingest", "ingest", "t", "prod")[0]
    viewer = server.tokens.create("api", "viewer", "v")[0]
    admin = server.tokens.create("api", "admin", "a")[0]
    server.start()
    events = list(generate(100, 5, START))
    good = eventlist(events[:50])
    big_event = dict(events[0], requestObject={"blob": "x" * 20_000})
    cases = [
        ("no credential", None, good, 401, "unauthenticated"),
        ("wrong token", "kat_00000000_wrong", good, 401, "unauthenticated"),
        ("API token is no ingest credential", admin, good, 401, "unauthenticated"),
        ("body over the limit", ingest, eventlist(events * 3), 413, "body_too_large"),
        ("event over the limit", ingest, eventlist([*events[:10], big_event]), 413,
         "event_too_large"),
        ("malformed JSON", ingest, good[:-7], 400, "invalid_json"),
        ("wrong kind", ingest, orjson.dumps({"kind": "Pod", "items": events}), 400,
         "wrong_kind"),
        ("a single event", ingest, orjson.dumps(events[0]), 400, "wrong_kind"),
        ("items not an array", ingest,
         orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": {}}),
         400, "bad_eventlist"),
        ("an item that is not an object", ingest, eventlist([*events[:5], 7]), 400,
         "not_an_object"),
    ]  # fmt: skip
    for name, token, body, status, reason in cases:
        got, answer = server.request("POST", "/audit/webhook", body, token)
        assert got == status, name
        assert orjson.loads(answer)["reason"] == reason, name

    # the API: no token 401, ingest token 401, viewer may read but not prune
    assert server.request("GET", "/api/stats")[0] == 401
    assert server.request("GET", "/api/stats", token=ingest)[0] == 403
    assert server.request("GET", "/metrics")[0] == 401
    q = orjson.dumps({"query": "*"})
    assert server.request("POST", "/api/query", q)[0] == 401
    assert server.request("GET", "/api/export")[0] == 401
    assert server.request("GET", "/api/events/prod/x")[0] == 401
    prune = orjson.dumps({"older_than": "3650d"})
    assert server.request("POST", "/api/prune", prune, viewer)[0] == 403
    assert server.request("GET", "/healthz")[0] == 200

    status, body = server.request("GET", "/api/stats", token=viewer)
    stats = orjson.loads(body)
    assert stats["store"]["events"] == 0  # nothing of any refused body was stored
    refused = {(r["cluster"], r["reason"]): r["requests"] for r in stats["refused"]}
    assert refused[("-", "unauthenticated")] == 3
    assert refused[("prod", "body_too_large")] == 1
    assert refused[("prod", "event_too_large")] == 1

    # then a good batch is stored and readable through every read endpoint
    assert server.request("POST", "/audit/webhook", good, ingest)[0] == 200
    assert server.request("POST", "/audit/webhook", good, ingest)[0] == 200  # a retry
    status, body = server.request(
        "POST", "/api/query", orjson.dumps({"query": "* | select count(1) as n"}), viewer
    )
    assert status == 200
    assert orjson.loads(body)["rows"] == [[50]]
    status, body = server.request("POST", "/api/query", orjson.dumps({"query": "a |"}), viewer)
    assert status == 400
    audit_id = events[0]["auditID"]
    status, body = server.request("GET", f"/api/events/prod/{audit_id}", token=viewer)
    assert status == 200
    assert {e["auditID"] for e in orjson.loads(body)} == {audit_id}
    status, body = server.request("GET", "/api/export?cluster=prod", token=viewer)
    assert [orjson.loads(line) for line in body.splitlines()] == sorted(
        events[:50], key=lambda e: (e["stageTimestamp"], e["auditID"], e["stage"])
    )
    status, body = server.request("GET", "/metrics", token=viewer)
    text = body.decode()
    assert 'kaudit_events_stored_total{cluster="prod",source="webhook"} 50' in text
    assert 'kaudit_events_duplicate_total{cluster="prod",source="webhook"} 50' in text
    assert 'kaudit_webhook_refused_total{cluster="prod",reason="invalid_json"} 1' in text
    assert "kaudit_webhook_ack_seconds_count 2" in text
    status, body = server.request("GET", "/openapi.json")
    paths = orjson.loads(body)["paths"]
    for p in ("/audit/webhook", "/k8s-audit", "/api/query", "/api/stats", "/api/export"):
        assert p in paths
    server.stop()


def test_mtls_client_certificate_names_the_cluster(
    make_server: Any, certs: Path, tmp_path: Path
) -> None:
    server: Server = make_server(
        {
            "tls": {
                "cert": str(certs / "server.pem"),
                "key": str(certs / "server-key.pem"),
                "client_ca": str(certs / "ca.pem"),
            },
            "webhook": {"client_cert_clusters": {"edge-7": "edge"}},
        }
    )
    out = tmp_path / "webhook.kubeconfig"
    res = run_cli(
        "webhook-config", "--config", str(server.config_path), "--cluster", "edge-7",
        "--client-cert", str(certs), "--out", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    kubeconfig = yaml.safe_load(out.read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == (
        f"https://127.0.0.1:{server.port}/audit/webhook"
    )
    assert "certificate-authority-data" in kubeconfig["clusters"][0]["cluster"]
    user = kubeconfig["users"][0]["user"]
    import base64

    (tmp_path / "c.pem").write_bytes(base64.b64decode(user["client-certificate-data"]))
    (tmp_path / "c.key").write_bytes(base64.b64decode(user["client-key-data"]))
    server.start()
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    ctx.load_cert_chain(str(tmp_path / "c.pem"), str(tmp_path / "c.key"))
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=30)
    conn.request("POST", "/audit/webhook", eventlist(list(generate(20, 8, START))))
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    conn.close()
    # without a client certificate and without a token: refused
    assert server.request("POST", "/audit/webhook", eventlist([]))[0] == 401
    server.stop()
    assert {k[0] for k in server.stored_keys()} == {"edge"}


def test_token_webhook_config_and_cli_through_the_server(make_server: Any, tmp_path: Path) -> None:
    server: Server = make_server({})
    out = tmp_path / "wh.yaml"
    res = run_cli("webhook-config", "--config", str(server.config_path), "--cluster", "dev",
                  "--out", str(out))  # fmt: skip
    assert res.returncode == 0, res.stderr
    token = yaml.safe_load(out.read_text())["users"][0]["user"]["token"]
    server.start()
    assert (
        server.request("POST", "/k8s-audit", eventlist(list(generate(30, 9, START))), token)[0]
        == 200
    )
    # the DB file is locked by the server: stats/export/prune go through its API
    from kaudit.serve.client import remote_for

    client = remote_for(server.db)
    assert client is not None
    assert client.stats()["store"]["events"] == 30
    assert len(list(client.export(cluster="dev"))) == 30
    assert client.query("* | select count(1) as n")["rows"] == [[30]]
    assert client.prune("3650d")["deleted"] == 0
    # the core CLI commands fall back to the server's API on the locked file
    cli = [sys.executable, "-c", "from kaudit.cli.main import main; main()"]
    res = subprocess.run(
        [*cli, "stats", "--db", str(server.db), "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert orjson.loads(res.stdout)["events"] == 30
    res = subprocess.run(
        [*cli, "export", "--db", str(server.db), "--cluster", "dev"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert len(res.stdout.splitlines()) == 30, res.stderr
    res = subprocess.run(
        [*cli, "query", "--db", str(server.db), "--format", "json", "--tz", "UTC",
         "verb:* | select count(1) as n, min(date_format(from_unixtime(__time__), '%Y')) as y"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert orjson.loads(res.stdout) == [{"n": 30, "y": str(START.year)}]
    listing = run_cli("token", "list", "--config", str(server.config_path))
    assert "ingest" in listing.stdout and "dev" in listing.stdout
    server.stop()
    assert remote_for(server.db) is None  # the server file is gone with the server


def test_serve_refuses_a_bad_config(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("port: 80\nwebhok: {}\n")
    res = subprocess.run(
        [sys.executable, "-m", "kaudit.serve", "serve", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert res.returncode == 1
    assert "unknown setting webhok" in res.stderr
    assert "Traceback" not in res.stderr


def test_serve_on_a_store_another_process_holds_says_so_in_one_line(tmp_path: Path) -> None:
    from kaudit.store.duckdb import DuckDBStore

    db = tmp_path / "data" / "kaudit.duckdb"
    with DuckDBStore.open(db):  # as a running `kaudit ingest` would
        res = run_cli("serve", "--db", str(db), "--port", "0")
    assert res.returncode == 1
    assert "in use by another kaudit process" in res.stderr
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("geo.mmdb", b"junk\n", "geo.mmdb: cannot open the geo database"),
        ("ours.txt", b"not-an-ip\n", "ours.txt:1:1: not an IP address or CIDR"),
    ],
)
def test_serve_with_an_intel_file_it_cannot_read_says_which_in_one_line(
    tmp_path: Path, name: str, content: bytes, says: str
) -> None:
    """The query functions (with `kaudit intel add`'s files) are loaded before listening."""
    intel = tmp_path / "data" / "intel"
    intel.mkdir(parents=True)
    (intel / name).write_bytes(content)
    res = run_cli("serve", "--db", str(tmp_path / "data" / "kaudit.duckdb"), "--port", "0")
    assert res.returncode == 1
    assert says in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
