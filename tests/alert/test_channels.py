"""Channels against real loopback servers: HTTP receivers that check payloads and the
DingTalk/Feishu signatures, aiosmtpd for SMTP, a UDP socket for syslog."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from kaudit.alert.channels import (
    AlertmanagerChannel,
    DingTalkChannel,
    EmailChannel,
    FakeChannel,
    FeishuChannel,
    SlackChannel,
    SyslogChannel,
    Texts,
    WebhookChannel,
    WeComChannel,
    deliver,
)
from kaudit.alert.model import Alert
from kaudit.alert.noise import Message

ALERT = Alert(
    "abcd1234abcd1234", "exec-into-container", "容器内执行命令", "medium", "firing", 1,
    1767225600, 1767225600, None, ("id-1",),
    {"事件ID": "id-1", "操作账号": "alice", "命令": "sh -c id", "源地址": "47.100.1.2"},
    ("id-1",), {"brief": "7.1"}, ("T1609",),
)  # fmt: skip


class Receiver:
    def __init__(self, reply: bytes = b'{"errcode":0}', status: int = 200) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *a: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def rx() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_webhook_template_and_headers(rx: Receiver) -> None:
    ch = WebhookChannel("hook", rx.url + "/in", {"who": "${操作账号}", "cmd": "${命令}",
                        "n": ["${count}"]}, {"X-Token": "t0"})  # fmt: skip
    ch.send(Message((ALERT,)))
    path, headers, body = rx.requests[0]
    assert path == "/in" and headers["X-Token"] == "t0"
    assert headers["Content-Type"].startswith("application/json")
    assert body == {"who": "alice", "cmd": "sh -c id", "n": ["1"]}


def test_dingtalk_signature(rx: Receiver) -> None:
    ch = DingTalkChannel("ding", rx.url + "/robot/send?access_token=x", "SECxyz",
                         clock=lambda: 1700000000.123)  # fmt: skip
    ch.send(Message((ALERT,)))
    path, _, body = rx.requests[0]
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    ts = q["timestamp"][0]
    assert ts == "1700000000123" and q["access_token"] == ["x"]
    # DingTalk: base64(HMAC-SHA256(secret, ts + "\n" + secret)), url-encoded in the query
    want = base64.b64encode(
        hmac.new(b"SECxyz", f"{ts}\nSECxyz".encode(), hashlib.sha256).digest()
    ).decode()
    assert q["sign"][0] == want
    assert body["msgtype"] == "markdown" and "alice" in body["markdown"]["text"]


def test_feishu_signature(rx: Receiver) -> None:
    ch = FeishuChannel("lark", rx.url + "/hook", "s3cret", clock=lambda: 1700000000.9)
    ch.send(Message((ALERT,)))
    _, _, body = rx.requests[0]
    assert body["timestamp"] == "1700000000"
    want = base64.b64encode(hmac.new(b"1700000000\ns3cret", b"", hashlib.sha256).digest())
    assert body["sign"] == want.decode()
    assert "容器内执行命令" in body["content"]["text"]


def test_wecom_slack_alertmanager(rx: Receiver) -> None:
    WeComChannel("wecom", rx.url + "/wecom").send(Message((ALERT,)))
    SlackChannel("slack", rx.url + "/slack").send(Message((ALERT,)))
    AlertmanagerChannel("am", rx.url).send(Message((ALERT,)))
    (_p1, _, b1), (_p2, _, b2), (p3, _, b3) = rx.requests
    assert b1["msgtype"] == "markdown" and "alice" in b1["markdown"]["content"]
    assert "Rule: exec-into-container" in b2["text"]
    assert p3 == "/api/v2/alerts"
    assert b3[0]["labels"]["alertname"] == "exec-into-container"
    assert b3[0]["labels"]["severity"] == "medium" and b3[0]["startsAt"] == "2026-01-01T00:00:00Z"


def test_rejected_robot_reply_is_a_failure_and_retried() -> None:
    r = Receiver(b'{"errcode":310000,"errmsg":"sign not match"}')
    try:
        slept: list[float] = []
        err = deliver(DingTalkChannel("ding", r.url, "x"), Message((ALERT,)), 2, 0.1, slept.append)
        assert err is not None and "310000" in err
        assert len(r.requests) == 3 and slept == [0.1, 0.2]
    finally:
        r.close()


def test_retry_then_success() -> None:
    fake = FakeChannel(fail_times=2)
    assert deliver(fake, Message((ALERT,)), 3, 0, lambda s: None) is None
    assert len(fake.sent) == 1


def test_unreachable_http_is_reported() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    err = deliver(SlackChannel("slack", f"http://127.0.0.1:{port}/"), Message((ALERT,)), 0)
    assert err is not None and err.startswith("slack:")


def test_email_over_smtp_with_auth() -> None:
    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 OK"

    logins: list[tuple[bytes, bytes]] = []

    def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"pw")

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    # STARTTLS needs a certificate; the loopback test checks login and delivery without it
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=auth,
                     auth_require_tls=False)  # fmt: skip
    ctl.start()
    try:
        ch = EmailChannel("mail", "127.0.0.1", port, "kaudit@example.com", ("sec@example.com",),
                          "sec", "pw", starttls=False, texts=Texts("en"))  # fmt: skip
        ch.send(Message((ALERT,)))
    finally:
        ctl.stop()
    assert logins == [(b"sec", b"pw")]
    env = received[0]
    assert env.mail_from == "kaudit@example.com" and env.rcpt_tos == ["sec@example.com"]
    text = env.content.decode()
    assert "Subject: [medium] " in text and "alice" in text


def test_syslog_udp_rfc5424_and_cef() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    port = sock.getsockname()[1]
    try:
        SyslogChannel("sys", "127.0.0.1", port).send(Message((ALERT,)))
        line = sock.recv(65535).decode()
        assert line.startswith("<36>1 2026-01-01T00:00:00Z ")  # local4 (4*8) + warning (4)
        assert 'rule="exec-into-container"' in line and "kaudit" in line
        SyslogChannel("sys", "127.0.0.1", port, format="cef").send(Message((ALERT,)))
        c = sock.recv(65535).decode()
        assert c.startswith("CEF:0|kaudit|kaudit|0.1|exec-into-container|")
        assert "suser=alice" in c and "src=47.100.1.2" in c
    finally:
        sock.close()
