"""Notification channels behind one seam: `Channel.send(message)`.

Each channel is a small class that renders a `Message` (one alert or a digest) with the `${}`
templates and delivers it; a failure raises `DeliveryError`. `deliver` adds retries with
exponential backoff and returns the last error instead of raising, so the caller can record
it on the alert. `FakeChannel` keeps what it was sent, for tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import smtplib
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol

import orjson

from kaudit.alert.model import Alert
from kaudit.alert.noise import Message
from kaudit.alert.template import DEFAULT_TEXT, DEFAULT_TITLE, render, render_json, variables
from kaudit.detect.model import SLS_SEVERITY
from kaudit.errors import KauditError


class DeliveryError(KauditError):
    """A channel could not deliver a message."""


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> None: ...


@dataclass(slots=True)
class Texts:
    """Title and text templates of a channel (defaults: kaudit's zh or en texts)."""

    lang: str = "zh"
    title: str | None = None
    text: str | None = None

    def title_of(self, m: Message) -> str:
        t = self.title or DEFAULT_TITLE[self.lang]
        first = render(t, variables(m.alerts[0]))
        if m.digest:
            first += (
                f" (+{len(m.alerts) - 1})"
                if self.lang == "en"
                else f"（另 {len(m.alerts) - 1} 条）"
            )
        return first

    def text_of(self, m: Message) -> str:
        t = self.text or DEFAULT_TEXT[self.lang]
        parts = [render(t, variables(a)) for a in m.alerts]
        if m.held_back:
            n = len(m.held_back)
            rules = ", ".join(sorted({a.rule_id for a in m.held_back}))
            parts.append(
                f"限流：另有 {n} 条告警被暂缓（{rules}）"
                if self.lang == "zh"
                else f"Throttled: {n} more alert(s) held back ({rules})"
            )
        return "\n\n".join(parts)


def http_post(
    url: str, body: bytes, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> bytes:
    hdrs = {"Content-Type": "application/json;charset=utf-8", **(headers or {})}
    req = urllib.request.Request(url, data=body, headers=hdrs, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as e:
        raise DeliveryError(f"{url}: HTTP {e.code}") from None
    except (urllib.error.URLError, OSError) as e:
        raise DeliveryError(f"{url}: {getattr(e, 'reason', e)}") from None


def _check_errcode(body: bytes, key: str = "errcode") -> None:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    code = doc.get(key, doc.get("code", 0)) if isinstance(doc, dict) else 0
    if code not in (0, None):
        msg = doc.get("errmsg") or doc.get("msg") or ""
        raise DeliveryError(f"rejected: {key}={code} {msg}".strip())


@dataclass(slots=True)
class WebhookChannel:
    """Generic webhook: a JSON body template (`${}` placeholders) and extra headers. One
    request per message; a digest sends `alerts` as a list."""

    name: str
    url: str
    body: Any = None  # template; None = the alert records themselves
    headers: dict[str, str] = field(default_factory=dict)
    texts: Texts = field(default_factory=Texts)

    def send(self, message: Message) -> None:
        if self.body is None:
            payload: Any = {
                "title": self.texts.title_of(message),
                "text": self.texts.text_of(message),
                "alerts": [a.as_dict() for a in message.alerts],
                "held_back": len(message.held_back),
            }
        else:
            rendered = [render_json(self.body, variables(a)) for a in message.alerts]
            payload = rendered[0] if len(rendered) == 1 else rendered
        http_post(self.url, orjson.dumps(payload, default=str), self.headers)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk robot signature: base64(HMAC-SHA256(secret, "ts\\nsecret")), URL-encoded."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu/Lark bot signature: base64(HMAC-SHA256(key="ts\\nsecret", msg=""))."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


@dataclass(slots=True)
class DingTalkChannel:
    name: str
    url: str
    secret: str | None = None
    texts: Texts = field(default_factory=Texts)
    clock: Callable[[], float] = time.time

    def send(self, message: Message) -> None:
        url = self.url
        if self.secret:
            ts = int(self.clock() * 1000)
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}timestamp={ts}&sign={dingtalk_sign(self.secret, ts)}"
        title = self.texts.title_of(message)
        body = {
            "msgtype": "markdown",
            "markdown": {"title": title, "text": f"### {title}\n\n{self.texts.text_of(message)}"},
        }
        _check_errcode(http_post(url, orjson.dumps(body)))


@dataclass(slots=True)
class WeComChannel:
    name: str
    url: str
    texts: Texts = field(default_factory=Texts)

    def send(self, message: Message) -> None:
        content = f"### {self.texts.title_of(message)}\n{self.texts.text_of(message)}"
        body = {"msgtype": "markdown", "markdown": {"content": content}}
        _check_errcode(http_post(self.url, orjson.dumps(body)))


@dataclass(slots=True)
class FeishuChannel:
    name: str
    url: str
    secret: str | None = None
    texts: Texts = field(default_factory=Texts)
    clock: Callable[[], float] = time.time

    def send(self, message: Message) -> None:
        body: dict[str, Any] = {
            "msg_type": "text",
            "content": {"text": f"{self.texts.title_of(message)}\n{self.texts.text_of(message)}"},
        }
        if self.secret:
            ts = int(self.clock())
            body["timestamp"] = str(ts)
            body["sign"] = feishu_sign(self.secret, ts)
        _check_errcode(http_post(self.url, orjson.dumps(body)), "code")


@dataclass(slots=True)
class SlackChannel:
    name: str
    url: str
    texts: Texts = field(default_factory=lambda: Texts("en"))

    def send(self, message: Message) -> None:
        body = {"text": f"*{self.texts.title_of(message)}*\n{self.texts.text_of(message)}"}
        http_post(self.url, orjson.dumps(body))


@dataclass(slots=True)
class EmailChannel:
    """SMTP with STARTTLS (unless `starttls` is False) and login when a user is given."""

    name: str
    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    texts: Texts = field(default_factory=Texts)
    timeout: float = 10.0

    def send(self, message: Message) -> None:
        msg = EmailMessage()
        msg["Subject"] = self.texts.title_of(message)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg.set_content(self.texts.text_of(message))
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as s:
                if self.starttls:
                    s.starttls()
                if self.username:
                    s.login(self.username, self.password or "")
                s.send_message(msg)
        except (smtplib.SMTPException, OSError) as e:
            raise DeliveryError(f"smtp {self.host}:{self.port}: {e}") from None


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class AlertmanagerChannel:
    """Prometheus Alertmanager API v2: POST /api/v2/alerts with a list of alerts."""

    name: str
    url: str  # base URL, e.g. http://alertmanager:9093
    texts: Texts = field(default_factory=lambda: Texts("en"))

    def send(self, message: Message) -> None:
        items = []
        for a in message.alerts:
            one = Message((a,))
            labels = {
                "alertname": a.rule_id,
                "severity": a.severity,
                "fingerprint": a.fingerprint,
                **{k: str(v) for k, v in a.labels.items()},
            }
            items.append(
                {
                    "labels": labels,
                    "annotations": {
                        "summary": self.texts.title_of(one),
                        "description": self.texts.text_of(one),
                    },
                    "startsAt": _iso(a.first_seen),
                }
            )
        http_post(self.url.rstrip("/") + "/api/v2/alerts", orjson.dumps(items))


_SYSLOG_SEV = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}


def rfc5424(a: Alert, hostname: str, title: str, facility: int = 4) -> bytes:
    """One RFC 5424 line: PRI, version, time, host, app, procid, msgid, structured data."""
    pri = facility * 8 + _SYSLOG_SEV.get(a.severity, 6)

    def esc(v: Any) -> str:
        return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")

    sd = (
        f'[kaudit@32473 rule="{esc(a.rule_id)}" fingerprint="{a.fingerprint}" '
        f'severity="{a.severity}" count="{a.count}"]'
    )
    return f"<{pri}>1 {_iso(a.last_seen)} {hostname} kaudit - {a.rule_id} {sd} {title}".encode()


def cef(a: Alert, title: str) -> bytes:
    """ArcSight CEF: CEF:0|vendor|product|version|signature|name|severity|extension."""

    def h(v: str) -> str:
        return v.replace("\\", "\\\\").replace("|", "\\|")

    def e(v: Any) -> str:
        return str(v).replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n")

    ext = [
        f"rt={a.last_seen * 1000}",
        f"cnt={a.count}",
        f"cs1Label=fingerprint cs1={a.fingerprint}",
    ]
    user = a.fields.get("操作账号") or a.fields.get("user.username")
    src = a.fields.get("源地址")
    if user:
        ext.append(f"suser={e(user)}")
    if src:
        ext.append(f"src={e(src)}")
    sev = SLS_SEVERITY.get(a.severity, 2)
    head = f"CEF:0|kaudit|kaudit|0.1|{h(a.rule_id)}|{h(title)}|{sev}|"
    return (head + " ".join(ext)).encode()


@dataclass(slots=True)
class SyslogChannel:
    """Syslog over UDP or TCP (octet-counted framing, RFC 6587), RFC 5424 or CEF payloads."""

    name: str
    host: str
    port: int
    protocol: str = "udp"
    format: str = "rfc5424"
    texts: Texts = field(default_factory=lambda: Texts("en"))
    timeout: float = 5.0

    def send(self, message: Message) -> None:
        lines = []
        for a in message.alerts:
            title = self.texts.title_of(Message((a,)))
            if self.format == "cef":
                lines.append(cef(a, title))
            else:
                lines.append(rfc5424(a, socket.gethostname(), title))
        try:
            if self.protocol == "tcp":
                with socket.create_connection((self.host, self.port), timeout=self.timeout) as s:
                    for line in lines:
                        s.sendall(str(len(line)).encode() + b" " + line)
            else:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    for line in lines:
                        s.sendto(line, (self.host, self.port))
        except OSError as e:
            raise DeliveryError(f"syslog {self.host}:{self.port}: {e}") from None


@dataclass(slots=True)
class ConsoleChannel:
    """JSON lines on a writer (the default for `kaudit detect` and the demo)."""

    name: str
    write: Callable[[str], Any]

    def send(self, message: Message) -> None:
        for a in message.alerts:
            self.write(orjson.dumps(a.as_dict(), default=str).decode() + "\n")


@dataclass(slots=True)
class FakeChannel:
    name: str = "fake"
    sent: list[Message] = field(default_factory=list)
    fail_times: int = 0

    def send(self, message: Message) -> None:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise DeliveryError("fake failure")
        self.sent.append(message)


def deliver(
    channel: Channel,
    message: Message,
    retries: int = 3,
    backoff_s: float = 0.5,
    sleep: Callable[[float], bool | None] = time.sleep,
) -> str | None:
    """Send with retries (backoff doubling); the last error text, or None when delivered.
    A `sleep` that returns True (an `Event.wait` whose event was set: shutting down) ends the
    retries there."""
    err: str | None = None
    for attempt in range(retries + 1):
        try:
            channel.send(message)
            return None
        except DeliveryError as e:
            err = f"{channel.name}: {e}"
            if attempt < retries and sleep(backoff_s * (2**attempt)):
                return f"{err} (retries stopped: kaudit is shutting down)"
    return err


CHANNEL_TYPES: dict[str, type] = {
    "webhook": WebhookChannel,
    "dingtalk": DingTalkChannel,
    "wecom": WeComChannel,
    "feishu": FeishuChannel,
    "lark": FeishuChannel,
    "slack": SlackChannel,
    "email": EmailChannel,
    "alertmanager": AlertmanagerChannel,
    "syslog": SyslogChannel,
}
