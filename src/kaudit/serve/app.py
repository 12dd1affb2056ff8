"""The `kaudit serve` ASGI app, built by `create_app(config)`.

One process holds the store: the webhook and the followers write through the single `Writer`
(group commits, acknowledged after the commit); API reads run in the thread pool on cursors of
their own. Ingest credentials (webhook) and API tokens (viewer/admin) are different kinds of
credential: neither opens the other's door. `/healthz`, `/readyz` and `/docs` are open; every
`/api/…` call needs a token, and `/metrics` too unless `metrics_need_token: false`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from kaudit.alert.store import AlertStore
from kaudit.detect.model import Rule
from kaudit.errors import ConfigError, QueryError, StoreError, UserError
from kaudit.query.to_sql import selection_filter
from kaudit.query.values import json_value
from kaudit.serve import metrics
from kaudit.serve.auth import Principal, TokenStore, bearer, may, tokens_path
from kaudit.serve.config import ServeConfig
from kaudit.serve.detection import GAP_RULE, Detector
from kaudit.serve.health import Health
from kaudit.serve.writer import Overloaded, WriteJob, Writer, arrival
from kaudit.sources import checkpoint
from kaudit.sources.follow import Follower, Lines, expand
from kaudit.sources.journal import (
    CHECKPOINT_KEY,
    Journal,
    JournalFull,
    JournalReader,
    Run,
    prepare_dir,
)
from kaudit.sources.journal import records as journal_records
from kaudit.sources.webhook import WebhookRefusal, decode_eventlist
from kaudit.store.duckdb import DuckDBStore

log = logging.getLogger("kaudit.serve")
SERVER_FILE = "serve.json"  # next to the DB while a server holds it: url, pid, local token
LOCAL_TOKEN_NAME = "local-cli"


READ_WAIT_S = 2.0


@dataclass
class Runtime:
    """What one running server holds; started and stopped by the app's lifespan."""

    config: ServeConfig
    store: DuckDBStore | None = None
    writer: Writer | None = None
    journal: Journal | None = None  # the webhook's (webhook.journal)
    journal_reader: JournalReader | None = None
    health: Health = field(init=False)
    tokens: TokenStore = field(init=False)
    ack: metrics.Histogram = field(default_factory=metrics.Histogram)
    followers: list[Follower] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    started_at: float = field(default_factory=time.time)
    write_server_file: bool = True
    detector: Detector | None = None
    rules: list[Rule] | None = None  # loaded by create_app (a bad rule file refuses start-up)
    alerts: AlertStore | None = None
    alert_lock: threading.Lock = field(default_factory=threading.Lock)
    # set once detection runs (or failed to start, logged): /readyz waits for it, ingestion not
    detect_ready: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.health = Health(self.config.stalled_after)
        self.tokens = TokenStore(tokens_path(self.config.data_dir))

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.config
        if self.store is None:  # (`serve` opens it before listening)
            self.store = DuckDBStore.open(cfg.db)
        self.register_functions()
        self.writer = Writer(
            self.store, self.health, cfg.writer.max_group_events, cfg.writer.queue_events
        )
        self.alerts = AlertStore(self.store)
        if not cfg.alerts.enabled:
            self.detect_ready.set()
        else:
            # Loading and compiling the rules takes about a second: do it beside the writer and
            # followers so ingestion starts at once; the detector starts from this mark.
            from kaudit.detect.engine import batch_marker

            mark = batch_marker(self.store)
            self.threads.append(
                threading.Thread(target=self._start_detector, args=(mark,), name="detect-init",
                                 daemon=True)
            )  # fmt: skip
        self.writer.start()
        if cfg.webhook.journal:
            self._start_journal()
        for fc in cfg.follow:
            paths = expand(fc.path)
            if not paths:
                log.warning("follow: %s matches no file yet", fc.path)
            for live in paths:
                source = f"file:{live}"
                self.health.register(fc.cluster, source)
                f = Follower(
                    live,
                    fc.cluster,
                    self._sink(fc.cluster, source),
                    self._load_checkpoint,
                    poll_interval=fc.poll_interval,
                    start_at=fc.start_at,
                    max_event_size=fc.max_event_size,
                    redact=fc.redact,
                )
                t = threading.Thread(
                    target=f.run, args=(self.stop_event,), name=f"follow:{live}", daemon=True
                )
                self.followers.append(f)
                self.threads.append(t)
        if cfg.retention is not None:
            self.threads.append(
                threading.Thread(target=self._retention, name="retention", daemon=True)
            )
        for t in self.threads:
            t.start()
        if self.write_server_file:
            self._write_server_file()
        log.info(
            "kaudit serve ready",
            extra={"url": cfg.url, "db": cfg.db, "followers": len(self.followers)},
        )

    def _start_journal(self) -> None:
        assert self.writer is not None and self.store is not None
        cfg = self.config
        where = (
            Path(tempfile.mkdtemp(prefix="kaudit-journal-"))
            if cfg.db == ":memory:"
            else journal_dir(cfg)
        )
        self.journal = Journal(where, max_pending_bytes=cfg.webhook.journal_max)
        writer = self.writer

        def submit(run: Run, cp: checkpoint.Checkpoint) -> Any:
            job = WriteJob(run.cluster, "webhook", "webhook", texts=[], lines=[], redacted=[],
                           rejects=run.rejects, checkpoint=cp, blocks=[run.events])  # fmt: skip
            return writer.submit(job)

        self.journal_reader = JournalReader(
            self.journal,
            submit,
            checkpoint.load(self.store, CHECKPOINT_KEY),
            # a whole group waiting while the last one commits (both are views of journal
            # bytes, ~1.2 KB an event): groups of ~17-21k events instead of ~13k at 80k/s
            max_events=2 * cfg.writer.max_group_events,
        )
        self.journal_reader.start()

    def _start_detector(self, mark: int) -> None:
        assert self.store is not None and self.alerts is not None and self.writer is not None
        try:
            det = build_detector(self.config, self.store, self.alerts, self.health,
                                 self.alert_lock, mark, self.rules)  # fmt: skip
        except Exception as exc:
            log.error("detection not started", extra={"error": str(exc)})
            self.detect_ready.set()
            return
        if not self.stop_event.is_set():
            self.detector = det
            self.writer.on_commit = det.committed
            det.start()
        self.detect_ready.set()

    def stop(self) -> None:
        """Stop the followers, store everything acknowledged or read, close the store."""
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=30)
        if self.journal is not None and self.journal_reader is not None:
            self.journal.close()  # the server takes no more requests: what was acknowledged
            self.journal_reader.stop()  # is stored now, or at the next start
        if self.writer is not None:
            self.writer.close()
        if self.detector is not None:
            self.detector.stop()  # after the writer: every commit has been looked at
            # before the store closes: what the channels have not sent by the deadline is
            # recorded on its alerts as a delivery failure
            drain = self.config.alerts.drain_timeout
            left = self.detector.notifier.close(drain)
            if left:
                log.warning("alert messages not delivered at shutdown",
                            extra={"messages": left, "drain_timeout": drain})  # fmt: skip
        if self.store is not None:
            self.store.close()
        if self.write_server_file:
            self._remove_server_file()
        log.info("kaudit serve stopped")

    def _retention(self, interval: float = 3600.0) -> None:
        """Apply `retention` at start and then every `interval` seconds until stopped."""
        while True:
            try:
                self.prune_expired()
            except Overloaded:
                return  # shutting down
            except StoreError as exc:
                log.error("retention failed", extra={"error": str(exc)})
            if self.stop_event.wait(interval):
                return

    def prune_expired(self) -> int:
        """Delete events older than `retention`, on the writer thread between group commits."""
        assert self.config.retention is not None and self.writer is not None
        cutoff = datetime.now(UTC) - timedelta(seconds=self.config.retention)
        deleted = int(self.writer.exclusive(lambda s: s.prune(cutoff)).result())
        log.info("retention", extra={"deleted": deleted, "before": cutoff.isoformat()})
        return deleted

    def _load_checkpoint(self, key: str) -> checkpoint.Checkpoint | None:
        assert self.store is not None
        return checkpoint.load(self.store, key)

    def _sink(self, cluster: str, source: str) -> Callable[..., Any]:
        def sink(lines: Lines, cp: checkpoint.Checkpoint, nbytes: int) -> Any:
            assert self.writer is not None
            job = WriteJob(
                cluster,
                source,
                cp.name,
                lines.texts,
                lines.lines,
                lines.redacted,
                nbytes,
                lines.rejects,
                cp,
            )
            arrival(self.health, job)
            return self.writer.submit(job)

        return sink

    # --- the server file: how local CLI commands find and reach this server ----------------
    def _server_file(self) -> Path:
        return self.config.data_dir / SERVER_FILE

    def _write_server_file(self) -> None:
        for cred in self.tokens.list():
            if cred.name == LOCAL_TOKEN_NAME:
                self.tokens.revoke(cred.id)
        token, _ = self.tokens.create("api", "admin", LOCAL_TOKEN_NAME)
        tls = self.config.tls
        body = {
            "url": self.config.url,
            "pid": os.getpid(),
            "token": token,
            "ca": str(Path(tls.cert).resolve()) if tls.cert else None,
            "db": str(Path(self.config.db).resolve()),
        }
        path = self._server_file()
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps(body, option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)

    def _remove_server_file(self) -> None:
        with contextlib.suppress(OSError):
            self._server_file().unlink()
        for cred in self.tokens.list():
            if cred.name == LOCAL_TOKEN_NAME:
                self.tokens.revoke(cred.id)

    def alert_metrics(self) -> tuple[dict[tuple[str, str, str], int], dict[str, Any]]:
        """Stored alerts per (rule, severity, status), and the detector's counters."""
        stored: dict[tuple[str, str, str], int] = {}
        if self.store is not None and self.alerts is not None:
            cur = self.store.reader()
            try:
                rows = cur.execute(
                    "SELECT rule, severity, status, count(*) FROM alerts GROUP BY ALL"
                ).fetchall()
            finally:
                cur.close()
            stored = {(str(a), str(b), str(c)): int(n) for a, b, c, n in rows}
        d = self.detector
        if d is None:
            return stored, {}
        st = d.stats
        return stored, {
            "notified": dict(st.notified),
            "failures": dict(d.notifier.failures),
            "delivery": d.notifier.delivery_stats(),
            "channels": sorted(d.notifier.channels),
            "counters": {
                "streaming_runs_total": st.streaming_runs,
                "streaming_rows_total": st.streaming_rows,
                "streaming_seconds_total": round(st.streaming_seconds, 6),
                "scheduled_rounds_total": st.scheduled_runs,
                "scheduled_seconds_total": round(st.scheduled_seconds, 6),
                "errors_total": st.errors,
            },
        }

    def register_functions(self) -> None:
        """The query functions with `kaudit intel add`'s lists, once and before any other
        thread queries: registering another set later drops these while a query may be
        calling them (SIGSEGV). Kept if already registered (`serve` does it before listening,
        so that a bad intel file stops it with one line)."""
        from kaudit.query.run import default_functions, prepared

        assert self.store is not None
        prepared(self.store, lambda: default_functions(self.config.data_dir / "intel"))

    # --- reads -----------------------------------------------------------------------------
    def reader_store(self) -> DuckDBStore:
        """The store for an API read. A read sees every event acknowledged before it: the
        journal's reader is usually a few milliseconds behind; wait for it (at most
        READ_WAIT_S, then answer with what is stored)."""
        if self.store is None:
            raise HTTPException(503, "the store is not open")
        if self.journal_reader is not None:
            self.journal_reader.caught_up(READ_WAIT_S)
        return self.store


def load_rules(cfg: ServeConfig) -> list[Rule]:
    """The rules serve runs: the built-in ones, then every file of `rules_dir`, minus
    `disabled`.

    A `rules_dir` file that does not load, a rule of it that does not compile, or one that
    takes a built-in rule's id raises `RuleError` naming `file:line`, and `kaudit serve`
    refuses to start: a SIEM that runs without a rule its user wrote, and says so only in a
    log, is worse than one that does not start."""
    from kaudit.detect.compile import compile_rule
    from kaudit.detect.load import builtin_rules, load_paths
    from kaudit.detect.model import RuleError
    from kaudit.errors import KauditError

    ac = cfg.alerts
    builtin = builtin_rules() if ac.builtin_rules else []
    builtin_ids = {r.id for r in builtin}
    dirs = [Path(p) for p in ac.rules_dir]
    own = load_paths(dirs)  # raises at the first error, with its file:line:col
    for d in dirs:
        if d.is_dir() and not [*d.glob("*.yaml"), *d.glob("*.yml")]:
            log.warning("rules_dir holds no rule (*.yaml, *.yml)", extra={"rules_dir": str(d)})
    for r in own:
        if r.id in builtin_ids:
            raise RuleError(
                f"rule id {r.id!r} is taken by a built-in rule: give this rule another id "
                "(and list the built-in in alerts.disabled to replace it)",
                r.location,
            )
        if not r.enabled or r.id in ac.disabled:
            continue
        try:
            compile_rule(r)
        except KauditError as exc:
            # one line: the compiler's message carries the query and a caret below it
            first = exc.message.splitlines()[0] if exc.message else type(exc).__name__
            raise RuleError(first, exc.location or r.location) from None
    rules = [r for r in [*builtin, *own] if r.id not in ac.disabled]
    unknown = sorted(set(ac.disabled) - builtin_ids - {r.id for r in own})
    if unknown:
        log.warning("alerts.disabled names no rule", extra={"ids": unknown})
    return rules


def build_detector(
    cfg: ServeConfig,
    store: DuckDBStore,
    alerts: AlertStore,
    health: Health,
    lock: threading.Lock,
    first_mark: int | None = None,
    rules: list[Rule] | None = None,
) -> Detector:
    """The detector of `rules` (default: `load_rules(cfg)`), with the channels and routes of
    `alerts:`; the notifier shares `lock` with the API's alert writes."""
    from kaudit.alert.model import SystemClock
    from kaudit.alert.noise import Throttle
    from kaudit.alert.pipeline import Notifier, channel_from_config, routes_from_config

    ac = cfg.alerts
    if rules is None:
        rules = load_rules(cfg)
    channels = {n: channel_from_config(n, spec) for n, spec in ac.channels.items()}
    by_id = {r.id: r for r in rules}
    by_id[GAP_RULE.id] = GAP_RULE
    notifier = Notifier(
        alerts,
        by_id,
        channels,
        routes_from_config(list(ac.routes), channels),
        SystemClock(),
        Throttle(ac.throttle_messages, ac.throttle_window),
        ac.lang,
        ac.retries,
        queue_size=ac.queue_messages,
        lock=lock,
    )
    log.info(
        "detection",
        extra={"rules": len(rules), "channels": sorted(channels), "disabled": list(ac.disabled)},
    )
    return Detector(
        store, rules, notifier, health, tick_s=ac.schedule_tick, lock=lock, first_mark=first_mark
    )


# --- request and response models (they make /docs) -----------------------------------------
class QueryRequest(BaseModel):
    query: str = Field(description="SLS query: `search | SQL`, or a bare search")
    start: int | None = Field(None, alias="from", description="window start, unix seconds")
    end: int | None = Field(None, alias="to", description="window end (exclusive)")
    last: str | None = Field(None, description="window ending now: 15m, 2h, 7d")
    tz: str | None = Field(
        None,
        description="display time zone (IANA); default: the `tz` setting, else the server's",
    )


class SilenceRequest(BaseModel):
    rule: str | None = Field(None, description="only this rule (default: every rule)")
    match: list[str] = Field(
        default_factory=list, description="field:value (display field or label; value* = prefix)"
    )
    duration: str = Field(alias="for", description="how long, e.g. 30m, 2h, 7d")
    comment: str = ""


class PruneRequest(BaseModel):
    older_than: str = Field(description="delete events older than this, e.g. 30d")


def _duration(text: str) -> timedelta:
    from kaudit.cli.core import parse_duration

    return parse_duration(text)


def journal_dir(cfg: ServeConfig) -> Path:
    return cfg.data_dir / "journal"


def _journal_stats(rt: Runtime) -> dict[str, float]:
    j = rt.journal
    if j is None:
        return {}
    return {
        "pending_bytes": j.pending_bytes,
        "appends_total": j.stats.appends,
        "fsyncs_total": j.stats.fsyncs,
        "events_total": j.stats.events,
        "bytes_total": j.stats.bytes,
    }


def _client_cert_cluster(request: Request, cfg: ServeConfig) -> str | None:
    tls = request.scope.get("extensions", {}).get("tls", {})
    cn = tls.get("client_cn") if isinstance(tls, dict) else None
    if not cn:
        return None
    return cfg.webhook.client_cert_clusters.get(cn, cn)


def create_app(config: ServeConfig, runtime: Runtime | None = None) -> FastAPI:
    """The app; its lifespan opens the store, starts the writer and followers, and on
    shutdown stores everything acknowledged before closing."""
    rt = runtime or Runtime(config)
    if config.alerts.enabled and rt.rules is None:
        # now, before the server listens: a bad rule file stops `kaudit serve` with its
        # file:line instead of being logged by a server that runs without the rule
        rt.rules = load_rules(config)
    if config.webhook.journal and config.db != ":memory:":
        prepare_dir(journal_dir(config))  # likewise: an unusable directory, in one line

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(rt.start)
        try:
            yield
        finally:
            await run_in_threadpool(rt.stop)

    app = FastAPI(
        title="kaudit",
        summary="Kubernetes audit webhook receiver, log follower and query API",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.runtime = rt

    def principal(request: Request) -> Principal | None:
        token = bearer(request.headers.get("authorization"))
        return rt.tokens.check(token) if token else None

    def need(role: str) -> Callable[[Request], Principal]:
        def dep(request: Request) -> Principal:
            p = principal(request)
            if p is None:
                raise HTTPException(
                    401,
                    "an API token is needed: kaudit token create --role viewer",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if not may(p, role):
                raise HTTPException(403, f"this token cannot do that (needs role {role})")
            return p

        return dep

    viewer = Depends(need("viewer"))
    admin = Depends(need("admin"))

    # --- webhook ---------------------------------------------------------------------------
    wcfg = config.webhook

    def refuse(status: int, reason: str, message: str, cluster: str | None) -> JSONResponse:
        rt.health.refuse(cluster, reason)
        log.warning(
            "webhook refused", extra={"status": status, "reason": reason, "detail": message}
        )
        return JSONResponse({"reason": reason, "message": message}, status_code=status)

    async def webhook(request: Request) -> Response:
        t0 = time.perf_counter()
        cluster = _client_cert_cluster(request, config)
        if cluster is None:
            p = principal(request)
            if p is None or p.kind != "ingest":
                rt.health.refuse(None, "unauthenticated")
                return JSONResponse(
                    {"reason": "unauthenticated", "message": "an ingest credential is needed"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
            cluster = p.cluster or "default"
        limit = wcfg.max_body_size
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return refuse(
                413, "body_too_large", f"body of {declared} bytes is above {limit}", cluster
            )
        parts: list[bytes] = []
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                return refuse(413, "body_too_large", f"body is above {limit} bytes", cluster)
            parts.append(chunk)
        body = b"".join(parts)
        try:
            decoded = await run_in_threadpool(
                decode_eventlist, body, wcfg.max_event_size, wcfg.redact
            )
        except WebhookRefusal as exc:
            return refuse(exc.status, exc.reason, exc.message, cluster)
        if rt.writer is None:
            return refuse(503, "not_ready", "kaudit is starting", cluster)
        job = WriteJob(
            cluster,
            "webhook",
            "webhook",
            decoded.texts,
            [*range(1, len(decoded.texts) + 1)],
            decoded.redacted,
            decoded.nbytes,
        )
        arrival(rt.health, job)
        if not decoded.texts:
            return JSONResponse({"accepted": 0})
        try:
            if rt.journal is not None:
                data = await run_in_threadpool(
                    journal_records, cluster, decoded.texts, decoded.redacted
                )
                await asyncio.wrap_future(rt.journal.append(data, len(decoded.texts)))
            else:
                await asyncio.wrap_future(rt.writer.submit(job))
        except (Overloaded, JournalFull) as exc:
            rt.health.refuse(cluster, "overloaded")
            return JSONResponse(
                {"reason": "overloaded", "message": str(exc)},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        except StoreError as exc:
            rt.health.refuse(cluster, "store_failed")
            return JSONResponse({"reason": "store_failed", "message": str(exc)}, status_code=503)
        rt.ack.observe(time.perf_counter() - t0)
        return JSONResponse({"accepted": len(decoded.texts)})

    for path in wcfg.paths:
        app.add_api_route(
            path,
            webhook,
            methods=["POST"],
            tags=["ingest"],
            summary="kube-apiserver audit webhook: an EventList (ingest credential)",
        )

    # --- probes and metrics ----------------------------------------------------------------
    @app.get("/healthz", tags=["probes"])
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/readyz", tags=["probes"])
    def readyz() -> JSONResponse:
        ok = (
            rt.writer is not None
            and rt.writer.alive
            and rt.store is not None
            and rt.detect_ready.is_set()
        )
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    def render_metrics() -> PlainTextResponse:
        w = rt.writer
        writer_stats: dict[str, float] = {}
        if w is not None:
            writer_stats = {
                "groups_total": w.stats.groups,
                "jobs_total": w.stats.jobs,
                "events_total": w.stats.events,
                "failures_total": w.stats.failures,
                "commit_seconds_total": round(w.stats.commit_seconds, 6),
                "queued_events": w.queued_events,
            }
        text = metrics.render(
            rt.health.snapshot(),
            rt.health.refused_snapshot(),
            writer_stats,
            rt.ack,
            rt.health.event_times(),
            _journal_stats(rt),
        ) + metrics.render_alerts(*rt.alert_metrics())
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    if config.metrics_need_token:

        @app.get("/metrics", tags=["probes"], response_class=PlainTextResponse)
        def metrics_protected(_: Principal = viewer) -> PlainTextResponse:
            return render_metrics()
    else:

        @app.get("/metrics", tags=["probes"], response_class=PlainTextResponse)
        def metrics_open() -> PlainTextResponse:
            return render_metrics()

    # --- API -------------------------------------------------------------------------------
    @app.post("/api/query", tags=["api"], summary="Run an SLS query (viewer)")
    def api_query(req: QueryRequest, _: Principal = viewer) -> dict[str, Any]:
        from kaudit.query.run import run_query

        store = rt.reader_store()
        start, end = req.start, req.end
        try:
            if req.last:
                if start is not None or end is not None:
                    raise ConfigError("last cannot be combined with from/to")
                end = int(time.time())
                start = end - int(_duration(req.last).total_seconds())
            tz = req.tz or rt.config.tz
            result = run_query(store, req.query, start=start, end=end, tz=tz)
        except UserError as exc:
            raise HTTPException(400, str(exc)) from None
        return {
            "columns": list(result.columns),
            "rows": [[json_value(v) for v in row] for row in result.rows],
            "elapsed_s": round(result.elapsed_s, 6),
        }

    @app.get("/api/events/{cluster}/{audit_id}", tags=["api"], summary="One request's events")
    def api_event(cluster: str, audit_id: str, _: Principal = viewer) -> Response:
        store = rt.reader_store()
        texts = list(store.iter_raw("cluster = ? AND auditID = ?", [cluster, audit_id]))
        if not texts:
            raise HTTPException(404, f"no event with auditID {audit_id} in cluster {cluster}")
        return Response("[" + ",".join(texts) + "]", media_type="application/json")

    @app.get("/api/export", tags=["api"], summary="Stored events as NDJSON (viewer)")
    def api_export(
        where: str | None = None,
        cluster: str | None = None,
        start: int | None = None,
        end: int | None = None,
        _: Principal = viewer,
    ) -> StreamingResponse:
        store = rt.reader_store()
        try:
            sql, params = selection_filter(where, cluster, start, end)
        except QueryError as exc:
            raise HTTPException(400, str(exc)) from None

        def lines() -> Iterator[bytes]:
            for raw in store.iter_raw(sql, params):
                yield (raw + "\n").encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @app.get("/api/stats", tags=["api"], summary="Store counts and ingestion health (viewer)")
    def api_stats(_: Principal = viewer) -> dict[str, Any]:
        store = rt.reader_store()
        return {
            "store": store.stats(),
            "ingestion": rt.health.snapshot(),
            "refused": [
                {"cluster": c, "reason": r, "requests": n}
                for (c, r), n in sorted(rt.health.refused_snapshot().items())
            ],
            "stalled_after_seconds": rt.health.stalled_after,
        }

    @app.post("/api/prune", tags=["api"], summary="Delete old events (admin)")
    async def api_prune(req: PruneRequest, _: Principal = admin) -> dict[str, Any]:
        try:
            cutoff = datetime.now(UTC) - _duration(req.older_than)
        except UserError as exc:
            raise HTTPException(400, str(exc)) from None
        if rt.writer is None:
            raise HTTPException(503, "kaudit is starting")
        deleted = await asyncio.wrap_future(rt.writer.exclusive(lambda s: s.prune(cutoff)))
        return {"deleted": int(deleted), "cutoff": cutoff.isoformat(timespec="seconds")}

    # --- alerts and silences (issue 6) -----------------------------------------------------
    def alert_store() -> AlertStore:
        if rt.alerts is None:
            raise HTTPException(503, "the store is not open")
        return rt.alerts

    @app.get("/api/alerts", tags=["alerts"], summary="Stored alerts, newest first (viewer)")
    def api_alerts(
        status: str | None = None,
        rule: str | None = None,
        limit: int = 100,
        _: Principal = viewer,
    ) -> dict[str, Any]:
        try:
            found = alert_store().list_alerts(status, rule, limit)
        except UserError as exc:
            raise HTTPException(400, str(exc)) from None
        return {"alerts": [json_value(a.as_dict()) for a in found]}

    def find_alert(prefix: str) -> Any:
        try:
            return alert_store().find(prefix)
        except UserError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/api/alerts/{fingerprint}", tags=["alerts"], summary="One alert (viewer)")
    def api_alert(fingerprint: str, _: Principal = viewer) -> dict[str, Any]:
        return dict(json_value(find_alert(fingerprint).as_dict()))

    def set_status(fingerprint: str, status: str) -> dict[str, Any]:
        a = find_alert(fingerprint)
        with rt.alert_lock:
            done = alert_store().set_status(a.fingerprint, status)
        return dict(json_value(done.as_dict()))

    @app.post("/api/alerts/{fingerprint}/ack", tags=["alerts"], summary="Acknowledge (admin)")
    def api_ack(fingerprint: str, _: Principal = admin) -> dict[str, Any]:
        return set_status(fingerprint, "acknowledged")

    @app.post("/api/alerts/{fingerprint}/resolve", tags=["alerts"], summary="Resolve (admin)")
    def api_resolve(fingerprint: str, _: Principal = admin) -> dict[str, Any]:
        return set_status(fingerprint, "resolved")

    def silence_json(s: Any) -> dict[str, Any]:
        return {"id": s.id, "rule": s.rule, "matchers": [list(m) for m in s.matchers],
                "expires": s.expires, "comment": s.comment}  # fmt: skip

    @app.get("/api/silences", tags=["alerts"], summary="Silences in force (viewer)")
    def api_silences(_: Principal = viewer) -> dict[str, Any]:
        return {"silences": [silence_json(s) for s in alert_store().silences(time.time())]}

    @app.post("/api/silences", tags=["alerts"], summary="Add a silence (admin)")
    def api_silence_add(req: SilenceRequest, _: Principal = admin) -> dict[str, Any]:
        pairs = []
        for m in req.match:
            name, sep, value = m.rpartition(":")
            if not sep or not name:
                raise HTTPException(400, f"match {m!r}: use field:value")
            pairs.append((name, value))
        if req.rule is None and not pairs:
            raise HTTPException(400, "a silence needs a rule or a match")
        try:
            expires = int(time.time() + _duration(req.duration).total_seconds())
        except UserError as exc:
            raise HTTPException(400, str(exc)) from None
        with rt.alert_lock:
            s = alert_store().add_silence(req.rule, pairs, expires, req.comment)
        return silence_json(s)

    @app.delete("/api/silences/{silence_id}", tags=["alerts"], summary="Remove (admin)")
    def api_silence_remove(silence_id: str, _: Principal = admin) -> dict[str, Any]:
        try:
            with rt.alert_lock:
                alert_store().remove_silence(silence_id)
        except UserError as exc:
            raise HTTPException(404, str(exc)) from None
        return {"removed": silence_id}

    return app
