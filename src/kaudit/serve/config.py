"""`kaudit serve` settings: one YAML file, every key documented, defaults that work alone.

`load_config(path)` parses the file into a frozen `ServeConfig`; a missing file argument gives
the defaults (the store at `./kaudit-data/kaudit.duckdb`, plain HTTP on 127.0.0.1:8700, no
followers). Unknown keys and wrong types are `ConfigError`s that name the key and the file.
`EXAMPLE_CONFIG` is the documented file `kaudit serve --print-config` prints; a test checks that
it names every setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from kaudit.errors import ConfigError, Location
from kaudit.units import parse_duration, parse_size

DEFAULT_DB = "./kaudit-data/kaudit.duckdb"


@dataclass(frozen=True, slots=True)
class TlsConfig:
    cert: str | None = None  # server certificate (PEM); None serves plain HTTP
    key: str | None = None  # its private key
    client_ca: str | None = None  # CA whose client certificates are accepted (mTLS ingest)


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    paths: tuple[str, ...] = ("/audit/webhook", "/k8s-audit")
    # spec k8s-audit §9.5: with truncation the worst body is ~max-size × max-event-size (~40 MB)
    max_body_size: int = 64 * 1024 * 1024
    max_event_size: int = 8 * 1024 * 1024
    redact: bool = True
    # client certificate subject CN -> cluster; an unlisted CN from client_ca is its own cluster
    client_cert_clusters: dict[str, str] = field(default_factory=dict)
    # Acknowledge once the events are fsynced to the journal (kaudit.sources.journal), not once
    # the store has committed them: the apiserver never waits on the database.
    journal: bool = True
    journal_max: int = 512 * 1024 * 1024  # bytes not yet stored before the webhook answers 503


@dataclass(frozen=True, slots=True)
class WriterConfig:
    # Group commit: concurrent batches waiting for the writer are stored in one transaction.
    max_group_events: int = 20_000
    queue_events: int = 200_000  # beyond this the webhook answers 503 (the apiserver retries)


@dataclass(frozen=True, slots=True)
class FollowConfig:
    path: str  # the live file the apiserver writes (--audit-log-path), or a glob of them
    cluster: str = "default"
    poll_interval: float = 0.25  # seconds between looks at the file
    start_at: str = "beginning"  # beginning: read what exists (and rotated backups); end: new only
    max_event_size: int = 8 * 1024 * 1024
    redact: bool = True


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """Live detection: which rules run and where their alerts go (issue 6)."""

    enabled: bool = True  # run the rules in serve
    builtin_rules: bool = True  # the rules shipped with kaudit (kaudit rules list)
    rules_dir: tuple[str, ...] = ()  # extra rule files or directories (YAML)
    disabled: tuple[str, ...] = ()  # rule ids not to run
    lang: str = "zh"  # language of alert titles (zh or en)
    # name -> {type: webhook|dingtalk|wecom|feishu|slack|email|alertmanager|syslog|console, ...}
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    routes: tuple[dict[str, Any], ...] = ()  # none: every alert to every channel
    throttle_messages: int = 20  # per channel per throttle_window; the rest is held back
    throttle_window: int = 60  # seconds
    retries: int = 3  # per message, backoff doubling from 0.5 s
    queue_messages: int = 1000  # per channel; beyond, a message is refused (on the alert)
    drain_timeout: float = 10.0  # seconds at shutdown to deliver what is queued
    schedule_tick: float = 1.0  # seconds between looks for due scheduled windows and gaps


@dataclass(frozen=True, slots=True)
class ServeConfig:
    db: str = DEFAULT_DB
    host: str = "127.0.0.1"
    port: int = 8700
    public_url: str | None = None  # URL clients use (webhook-config default), else from host/port
    tls: TlsConfig = field(default_factory=TlsConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    writer: WriterConfig = field(default_factory=WriterConfig)
    follow: tuple[FollowConfig, ...] = ()
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    stalled_after: float = 300.0  # seconds of silence after which a cluster or file is stalled
    retention: int | None = None  # seconds; older events are deleted (hourly), None keeps all
    tz: str | None = None  # display time zone of queries (IANA name); None: the machine's
    metrics_need_token: bool = True  # /metrics needs a viewer token (Prometheus: bearer_token)
    log_level: str = "info"
    config_path: str | None = None

    @property
    def data_dir(self) -> Path:
        return Path(self.db).parent

    @property
    def url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls.cert else "http"
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{scheme}://{host}:{self.port}"


EXAMPLE_CONFIG = """\
# kaudit serve configuration. Every key is optional; the values shown are the defaults.
db: ./kaudit-data/kaudit.duckdb  # the DuckDB store; API tokens live next to it
host: 127.0.0.1                  # listen address (0.0.0.0 to accept other machines)
port: 8700                       # listen port (webhook, API, /metrics, /healthz, /readyz)
public_url: null                 # URL others reach kaudit at (default: from host, port, tls)
stalled_after: 300               # seconds of silence after which a cluster/file is "stalled"
tz: null                         # display time zone of queries, e.g. Asia/Shanghai
                                 # (kaudit query uses it too); null: the machine's zone
retention: null                  # delete events older than this, e.g. 7d (checked hourly;
                                 # `kaudit prune` uses it too); null keeps everything
metrics_need_token: true         # /metrics asks for a viewer token (Prometheus bearer_token)
log_level: info                  # debug, info, warning, error (JSON lines on stderr)
tls:
  cert: null                     # server certificate PEM (kaudit certs create); null = HTTP
  key: null                      # its private key
  client_ca: null                # accept client certificates signed by this CA (mTLS ingest)
webhook:
  paths: [/audit/webhook, /k8s-audit]  # POST an EventList here (/k8s-audit: Falco's path)
  max_body_size: 64MiB           # larger bodies get 413 (spec: ~40 MB worst case)
  max_event_size: 8MiB           # a batch holding a larger event gets 413
  redact: true                   # replace Secret values, like kaudit ingest
  client_cert_clusters: {}       # client certificate CN -> cluster (default: the CN itself)
  journal: true                  # ack once fsynced to <data dir>/journal (false: once stored)
  journal_max: 512MiB            # journal not yet stored before the webhook answers 503
writer:
  max_group_events: 20000        # at most this many events per group commit
  queue_events: 200000           # events waiting for the writer before webhook answers 503
follow: []                       # log files to follow, e.g.
#  - path: /var/log/kubernetes/audit/audit.log   # --audit-log-path (a glob is allowed)
#    cluster: prod
#    poll_interval: 0.25         # seconds
#    start_at: beginning         # beginning (with rotated backups) or end
#    max_event_size: 8MiB
#    redact: true
alerts:                          # live detection (docs/detect.md)
  enabled: true                  # run the rules on what is stored
  builtin_rules: true            # kaudit's rules (kaudit rules list)
  rules_dir: []                  # extra rule files or directories, e.g. [/etc/kaudit/rules]
  disabled: []                   # rule ids not to run
  lang: zh                       # alert titles: zh or en
  throttle_messages: 20          # at most this many messages per channel per window;
  throttle_window: 60            #   what is held back is reported in the next message
  retries: 3                     # delivery attempts after the first, backoff from 0.5 s
  queue_messages: 1000           # each channel sends on its own thread from a queue this
                                 #   long; a message refused when it is full, or still
  drain_timeout: 10s             #   queued this long after shutdown begins, is recorded as
                                 #   a delivery error on its alerts and in /metrics
  schedule_tick: 1.0             # seconds between scheduler looks (due windows, late rows,
                                 #   stalled sources -> audit-events-stopped)
  channels: {}                   # name -> settings; alerts go nowhere but the alerts table
                                 # until a channel is configured. Every type takes lang (zh,
                                 # en), title and text (${field} templates); e.g.
#    console: {type: console}    # one readable line per alert on stderr
#    hook:
#      type: webhook             # generic: POST JSON to url
#      url: https://soc.example/kaudit
#      headers: {X-Token: secret}
#      body: null                # JSON template with ${field}s; null: the alert records
#    dingtalk: {type: dingtalk, url: "https://oapi.dingtalk.com/robot/send?access_token=...",
#               secret: SEC...}  # secret: the robot's signing secret (optional)
#    wecom: {type: wecom, url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=..."}
#    feishu: {type: feishu, url: "https://open.feishu.cn/open-apis/bot/v2/hook/...",
#             secret: null}     # type lark is the same
#    slack: {type: slack, url: "https://hooks.slack.com/services/..."}
#    mail: {type: email, host: smtp.example, port: 587, sender: kaudit@example,
#           to: [soc@example], username: null, password: null, starttls: true, timeout: 10}
#    am: {type: alertmanager, url: "http://alertmanager:9093"}
#    siem: {type: syslog, host: 10.0.0.5, port: 514, protocol: udp, format: rfc5424,
#           timeout: 5}         # protocol udp or tcp; format rfc5424 or cef
  routes: []                     # first match order; none: every alert to every channel, e.g.
#    - channels: [dingtalk]
#      min_severity: high        # info, low, medium, high, critical
#      labels: {brief: "7.1"}    # every label must match
#      rules: []                 # only these rule ids (empty: any)
#      stop: false               # true: later routes are not looked at
"""

_LEVELS = ("debug", "info", "warning", "error")


def _size(value: Any, key: str, loc: Location) -> int:
    try:
        return parse_size(value)
    except ValueError:
        raise ConfigError(f"{key}: not a size: {value!r} (e.g. 8MiB, 512KiB)", loc) from None


def _typed(value: Any, kind: type, key: str, loc: Location) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}", loc)
    return value


def _seconds(value: Any, key: str, loc: Location) -> float:
    """A number of seconds (0 allowed) or a duration such as `10s`, `2m`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError(f"{key}: must not be negative", loc)
        return float(value)
    try:
        return float(parse_duration(str(value)))
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}", loc) from None


def _mapping(value: Any, key: str, loc: Location) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping", loc)
    return value


def _check_keys(data: dict[str, Any], cls: type, prefix: str, loc: Location) -> None:
    known = {f.name for f in fields(cls)} - {"config_path"}
    for k in data:
        if k not in known:
            raise ConfigError(
                f"unknown setting {prefix}{k} (known: {', '.join(sorted(known))})", loc
            )


def _tls(data: dict[str, Any], loc: Location) -> TlsConfig:
    _check_keys(data, TlsConfig, "tls.", loc)
    vals = {k: (None if v is None else str(v)) for k, v in data.items()}
    cfg = TlsConfig(**vals)
    if bool(cfg.cert) != bool(cfg.key):
        raise ConfigError("tls: give both cert and key", loc)
    if cfg.client_ca and not cfg.cert:
        raise ConfigError("tls.client_ca needs tls.cert and tls.key (mTLS needs TLS)", loc)
    return cfg


def _webhook(data: dict[str, Any], loc: Location) -> WebhookConfig:
    _check_keys(data, WebhookConfig, "webhook.", loc)
    out: dict[str, Any] = {}
    if "paths" in data:
        paths = data["paths"]
        if not isinstance(paths, list) or not all(
            isinstance(p, str) and p.startswith("/") for p in paths
        ):
            raise ConfigError("webhook.paths: expected a list of paths starting with /", loc)
        out["paths"] = tuple(paths)
    for k in ("max_body_size", "max_event_size", "journal_max"):
        if k in data:
            out[k] = _size(data[k], f"webhook.{k}", loc)
    for k in ("redact", "journal"):
        if k in data:
            out[k] = _typed(data[k], bool, f"webhook.{k}", loc)
    if "client_cert_clusters" in data:
        m = _mapping(data["client_cert_clusters"], "webhook.client_cert_clusters", loc)
        out["client_cert_clusters"] = {str(k): str(v) for k, v in m.items()}
    return WebhookConfig(**out)


def _writer(data: dict[str, Any], loc: Location) -> WriterConfig:
    _check_keys(data, WriterConfig, "writer.", loc)
    out = {k: _typed(v, int, f"writer.{k}", loc) for k, v in data.items()}
    for k, v in out.items():
        if v <= 0:
            raise ConfigError(f"writer.{k}: must be positive", loc)
    return WriterConfig(**out)


def _follow(items: Any, loc: Location) -> tuple[FollowConfig, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ConfigError("follow: expected a list of {path, cluster, ...}", loc)
    out: list[FollowConfig] = []
    for i, item in enumerate(items):
        key = f"follow[{i}]"
        data = _mapping(item, key, loc)
        _check_keys(data, FollowConfig, f"{key}.", loc)
        if not isinstance(data.get("path"), str) or not data["path"]:
            raise ConfigError(f"{key}.path: required (the file --audit-log-path names)", loc)
        vals: dict[str, Any] = {"path": data["path"]}
        if "cluster" in data:
            vals["cluster"] = str(data["cluster"])
        if "poll_interval" in data:
            vals["poll_interval"] = _typed(data["poll_interval"], float, f"{key}.poll", loc)
            if vals["poll_interval"] <= 0:
                raise ConfigError(f"{key}.poll_interval: must be positive", loc)
        if "start_at" in data:
            if data["start_at"] not in ("beginning", "end"):
                raise ConfigError(f"{key}.start_at: beginning or end", loc)
            vals["start_at"] = data["start_at"]
        if "max_event_size" in data:
            vals["max_event_size"] = _size(data["max_event_size"], f"{key}.max_event_size", loc)
        if "redact" in data:
            vals["redact"] = _typed(data["redact"], bool, f"{key}.redact", loc)
        out.append(FollowConfig(**vals))
    return tuple(out)


def _alerts(data: dict[str, Any], loc: Location) -> AlertsConfig:
    _check_keys(data, AlertsConfig, "alerts.", loc)
    out: dict[str, Any] = {}
    for k in ("enabled", "builtin_rules"):
        if k in data:
            out[k] = _typed(data[k], bool, f"alerts.{k}", loc)
    for k in ("rules_dir", "disabled"):
        if data.get(k) is not None:
            v = data[k]
            v = [v] if isinstance(v, str) else v
            if not isinstance(v, list):
                raise ConfigError(f"alerts.{k}: expected a list", loc)
            out[k] = tuple(str(x) for x in v)
    if "lang" in data:
        if data["lang"] not in ("zh", "en"):
            raise ConfigError("alerts.lang: zh or en", loc)
        out["lang"] = data["lang"]
    for k in ("throttle_messages", "throttle_window", "retries"):
        if k in data:
            out[k] = _typed(data[k], int, f"alerts.{k}", loc)
            if out[k] < 0:
                raise ConfigError(f"alerts.{k}: must not be negative", loc)
    if "queue_messages" in data:
        out["queue_messages"] = _typed(data["queue_messages"], int, "alerts.queue_messages", loc)
        if out["queue_messages"] < 1:
            raise ConfigError("alerts.queue_messages: must be at least 1", loc)
    if "drain_timeout" in data:
        out["drain_timeout"] = _seconds(data["drain_timeout"], "alerts.drain_timeout", loc)
    if "schedule_tick" in data:
        out["schedule_tick"] = _typed(data["schedule_tick"], float, "alerts.schedule_tick", loc)
        if out["schedule_tick"] <= 0:
            raise ConfigError("alerts.schedule_tick: must be positive", loc)
    chans = _mapping(data.get("channels"), "alerts.channels", loc)
    routes = data.get("routes") or []
    if not isinstance(routes, list):
        raise ConfigError("alerts.routes: expected a list", loc)
    # build once to check every channel and route setting now, with the file named
    from kaudit.alert.pipeline import channel_from_config, routes_from_config

    try:
        built = {str(n): channel_from_config(str(n), spec) for n, spec in chans.items()}
        routes_from_config(routes, built)
    except ConfigError as exc:
        raise ConfigError(exc.message, loc) from None
    out["channels"] = {str(n): dict(spec) for n, spec in chans.items()}
    out["routes"] = tuple(dict(r) for r in routes)
    return AlertsConfig(**out)


def parse_config(text: str, source: str = "<config>") -> ServeConfig:
    """A `ServeConfig` from YAML text; relative paths stay relative to the working directory."""
    loc = Location(source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = Location(source, mark.line + 1, mark.column + 1) if mark else loc
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", where) from None
    data = _mapping(data, "the configuration", loc)
    _check_keys(data, ServeConfig, "", loc)
    vals: dict[str, Any] = {"config_path": None if source == "<config>" else source}
    for k in ("db", "host", "public_url"):
        if k in data and data[k] is not None:
            vals[k] = str(data[k])
    if "port" in data:
        port = _typed(data["port"], int, "port", loc)
        if not 0 <= port < 65536:
            raise ConfigError(f"port: {port} is not a TCP port", loc)
        vals["port"] = port
    if "stalled_after" in data:
        vals["stalled_after"] = _typed(data["stalled_after"], float, "stalled_after", loc)
    if data.get("tz") is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(str(data["tz"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"tz: unknown time zone {data['tz']!r} (e.g. Asia/Shanghai)", loc
            ) from None
        vals["tz"] = str(data["tz"])
    if data.get("retention") is not None:
        try:
            vals["retention"] = parse_duration(str(data["retention"]))
        except ValueError as exc:
            raise ConfigError(f"retention: {exc}", loc) from None
    if "metrics_need_token" in data:
        vals["metrics_need_token"] = _typed(
            data["metrics_need_token"], bool, "metrics_need_token", loc
        )
    if "log_level" in data:
        if data["log_level"] not in _LEVELS:
            raise ConfigError(f"log_level: one of {', '.join(_LEVELS)}", loc)
        vals["log_level"] = data["log_level"]
    vals["tls"] = _tls(_mapping(data.get("tls"), "tls", loc), loc)
    vals["webhook"] = _webhook(_mapping(data.get("webhook"), "webhook", loc), loc)
    vals["writer"] = _writer(_mapping(data.get("writer"), "writer", loc), loc)
    vals["follow"] = _follow(data.get("follow"), loc)
    vals["alerts"] = _alerts(_mapping(data.get("alerts"), "alerts", loc), loc)
    return ServeConfig(**vals)


def load_config(path: str | Path | None) -> ServeConfig:
    """The settings in `path`, or the defaults when `path` is None."""
    if path is None:
        return ServeConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the configuration: {exc.strerror}", Location(str(p))
        ) from None
    return parse_config(text, str(p))
