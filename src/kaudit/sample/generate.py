"""Realistic kube-apiserver audit events, deterministic by seed, with injected attacks.

`generate(n, seed, start)` yields exactly `n` `audit.k8s.io/v1` event dicts in non-decreasing
`stageTimestamp` order; `write_ndjson` writes them as the log backend does (one compact JSON
object per line, Go's HTML-safe escaping of `&`, `<`, `>`), optionally gzip-compressed, and the
ground truth of the injected attacks as JSON lines. Same seed, same `start` and same options
give byte-identical output.

The yielded dicts share nested objects (users, annotations, bodies) with each other: treat them
as read-only and copy before changing.
"""

from __future__ import annotations

import gzip
import heapq
import random
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, cast

import orjson

from kaudit.errors import ConfigError, InputError, Location
from kaudit.sample.attacks import ATTACK_KINDS, DEFAULT_WEIGHTS, Attacks
from kaudit.sample.cluster import build_cluster
from kaudit.sample.emitter import Emitter
from kaudit.sample.traffic import Traffic

DEFAULT_SPAN = timedelta(hours=24)
DEFAULT_ATTACK_RATE = 0.001
"""Probability that a request is the start of an attack campaign (bursts add more events)."""
DEFAULT_NODES = 60

# Mean events per request of the default mix (RequestReceived + ResponseComplete, a third
# stage for watches and streams, single-stage 401s); sets the request rate for the span.
_EVENTS_PER_REQUEST = 2.15
_CHUNK = 2048


@dataclass(frozen=True, slots=True)
class InjectedAttack:
    """Ground truth for one request of an injected attack."""

    kind: str  # one of ATTACK_KINDS
    audit_id: str
    campaign: int  # requests of one burst or session share it
    time: str  # requestReceivedTimestamp
    user: str  # user.username ("" for 401s)
    source_ip: str  # sourceIPs[0]
    detail: str  # kind-specific: pod, binding name, person named by RBAC, source IP...

    def to_json(self) -> dict[str, Any]:
        return {
            "auditID": self.audit_id,
            "kind": self.kind,
            "campaign": self.campaign,
            "time": self.time,
            "user": self.user,
            "sourceIP": self.source_ip,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Summary:
    """What `write_ndjson` wrote."""

    events: int
    bytes: int
    elapsed_s: float
    first: str  # stageTimestamp of the first and last events ("" when none)
    last: str
    by_stage: Mapping[str, int] = field(default_factory=dict)
    by_level: Mapping[str, int] = field(default_factory=dict)
    attacks: Mapping[str, int] = field(default_factory=dict)  # attack requests per kind
    campaigns: int = 0

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0


def _check(
    n: int,
    attack_rate: float,
    attack_weights: Mapping[str, float] | None,
    span: timedelta,
    nodes: int,
) -> dict[str, float]:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"--events must be a whole number >= 0, got {n!r}")
    if not 0.0 <= attack_rate <= 1.0:
        raise ConfigError(f"--attack-rate must be between 0 and 1, got {attack_rate}")
    if span <= timedelta(0):
        raise ConfigError(f"--span must be positive, got {span}")
    if not 1 <= nodes <= 5000:
        raise ConfigError(f"--nodes must be between 1 and 5000, got {nodes}")
    weights = dict(DEFAULT_WEIGHTS)
    for kind, weight in (attack_weights or {}).items():
        if kind not in weights:
            known = ", ".join(ATTACK_KINDS)
            raise ConfigError(f"unknown attack kind {kind!r} (known: {known})")
        if weight < 0:
            raise ConfigError(f"attack weight of {kind} must be >= 0, got {weight}")
        weights[kind] = float(weight)
    return weights


def _start_us(start: datetime | None, span: timedelta) -> int:
    if start is None:
        start = datetime.now(UTC) - span  # recent data for demos; pass start for determinism
    elif start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    delta = start - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def generate(
    n: int,
    seed: int,
    start: datetime | None = None,
    *,
    attack_rate: float = DEFAULT_ATTACK_RATE,
    attack_weights: Mapping[str, float] | None = None,
    span: timedelta = DEFAULT_SPAN,
    nodes: int = DEFAULT_NODES,
    truth: list[InjectedAttack] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yields exactly `n` audit events spread over about `span` from `start`, sorted by time.

    `start` defaults to now minus `span` (naive datetimes are UTC); output is deterministic for
    a fixed seed and start. With `attack_rate` > 0 one campaign of every kind whose weight is
    positive is placed across the first 90 % of the span, and further campaigns start at random
    with probability `attack_rate` per request, chosen by `attack_weights` (relative; a weight
    of 0 disables a kind). When `truth` is a list, one `InjectedAttack` per emitted attack
    request is appended to it as the request's first event is yielded.
    """
    weights = _check(n, attack_rate, attack_weights, span, nodes)
    return _run(n, seed, _start_us(start, span), attack_rate, weights, span, nodes, truth)


def _run(
    n: int,
    seed: int,
    t: int,
    attack_rate: float,
    weights: dict[str, float],
    span: timedelta,
    nodes: int,
    truth: list[InjectedAttack] | None,
) -> Iterator[dict[str, Any]]:
    if n == 0:
        return
    rng = random.Random(seed)
    cluster = build_cluster(rng, nodes)
    emitter = Emitter(rng)
    traffic = Traffic(rng, cluster, emitter)
    attacks = Attacks(rng, cluster, emitter, traffic)
    span_us = int(span.total_seconds() * 1_000_000)
    gap_rate = n / (span_us * _EVENTS_PER_REQUEST)  # requests per µs

    kinds = [k for k in ATTACK_KINDS if weights[k] > 0]
    forced: list[tuple[int, str]] = []
    if attack_rate > 0 and kinds:
        forced = [(t + int((i + 0.5) / len(kinds) * 0.9 * span_us), k) for i, k in enumerate(kinds)]
        forced.reverse()  # pop() from the end in time order
    cum: list[float] = []
    total = 0.0
    for k in kinds:
        total += weights[k]
        cum.append(total)

    heap = emitter.heap
    heappop = heapq.heappop
    pick = traffic.pick
    random_ = rng.random
    expovariate = rng.expovariate
    recorded: set[str] = set()
    campaign = 0
    emitted = 0
    while True:
        if forced and t >= forced[-1][0]:
            attacks.play[forced.pop()[1]](t, campaign)
            campaign += 1
        elif attack_rate > 0 and random_() < attack_rate and kinds:
            x = random_() * total
            kind = kinds[-1]
            for k, c in zip(kinds, cum, strict=True):
                if x < c:
                    kind = k
                    break
            attacks.play[kind](t, campaign)
            campaign += 1
        else:
            pick()(t)
        t_next = t + 1 + int(expovariate(gap_rate))
        while heap and heap[0][0] <= t_next:
            _, _, ev, tag = heappop(heap)
            if tag is not None and truth is not None and ev["auditID"] not in recorded:
                recorded.add(ev["auditID"])
                ips = ev.get("sourceIPs") or [""]
                truth.append(
                    InjectedAttack(
                        kind=tag.kind,
                        audit_id=ev["auditID"],
                        campaign=tag.campaign,
                        time=ev["requestReceivedTimestamp"],
                        user=ev["user"].get("username", ""),
                        source_ip=ips[0],
                        detail=tag.detail,
                    )
                )
            yield ev
            emitted += 1
            if emitted >= n:
                return
        t = t_next


def go_escape(data: bytes) -> bytes:
    """Go's encoding/json HTML-safe escaping, which the apiserver's JSON serializer applies.

    In JSON text these bytes can only occur inside strings, so a byte replace is exact.
    """
    if b"&" in data:
        data = data.replace(b"&", b"\\u0026")
    if b"<" in data:
        data = data.replace(b"<", b"\\u003c")
    if b">" in data:
        data = data.replace(b">", b"\\u003e")
    if b"\xe2\x80" in data:
        data = data.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
    return data


def dumps(event: Mapping[str, Any]) -> bytes:
    """One event as the log backend writes it: a compact JSON line with a trailing newline."""
    return go_escape(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))


Target = str | Path | IO[bytes]


def _open(target: Target) -> tuple[IO[bytes], list[IO[bytes]]]:
    """The stream to write to and the streams to close afterwards (none for a caller's stream)."""
    if isinstance(target, str | Path):
        p = Path(target)
        try:
            raw = p.open("wb", buffering=1 << 20)
        except OSError as exc:
            raise InputError(f"cannot write: {exc.strerror or exc}", Location(str(p))) from exc
        if p.name.endswith(".gz"):
            # mtime=0 and no file name in the header: the same events give the same bytes
            gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0)
            return cast(IO[bytes], gz), [cast(IO[bytes], gz), raw]
        return raw, [raw]
    return target, []


def write_ndjson(
    target: Target,
    n: int,
    seed: int,
    start: datetime | None = None,
    *,
    truth_out: Target | None = None,
    attack_rate: float = DEFAULT_ATTACK_RATE,
    attack_weights: Mapping[str, float] | None = None,
    span: timedelta = DEFAULT_SPAN,
    nodes: int = DEFAULT_NODES,
) -> Summary:
    """Writes `n` events to `target` (a path, `.gz` compressed, or a binary stream).

    `truth_out` receives the injected attacks as JSON lines (`InjectedAttack.to_json`).
    """
    truth: list[InjectedAttack] = []
    events = generate(
        n,
        seed,
        start,
        attack_rate=attack_rate,
        attack_weights=attack_weights,
        span=span,
        nodes=nodes,
        truth=truth,
    )
    out, to_close = _open(target)
    began = time.perf_counter()
    stages: Counter[str] = Counter()
    levels: Counter[str] = Counter()
    written = 0
    count = 0
    first = last = ""
    dumps_ = orjson.dumps
    option = orjson.OPT_APPEND_NEWLINE
    try:
        chunk: list[bytes] = []
        for ev in events:
            chunk.append(dumps_(ev, option=option))
            stages[ev["stage"]] += 1
            levels[ev["level"]] += 1
            if not first:
                first = ev["stageTimestamp"]
            last = ev["stageTimestamp"]
            if len(chunk) >= _CHUNK:
                data = go_escape(b"".join(chunk))
                out.write(data)
                written += len(data)
                count += len(chunk)
                chunk = []
        if chunk:
            data = go_escape(b"".join(chunk))
            out.write(data)
            written += len(data)
            count += len(chunk)
        out.flush()
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", Location(str(target))) from exc
    finally:
        for stream in to_close:
            stream.close()
    elapsed = time.perf_counter() - began
    if truth_out is not None:
        tout, tclose = _open(truth_out)
        try:
            tout.write(b"".join(orjson.dumps(a.to_json(), option=option) for a in truth))
            tout.flush()
        finally:
            for stream in tclose:
                stream.close()
    kinds = Counter(a.kind for a in truth)
    return Summary(
        events=count,
        bytes=written,
        elapsed_s=elapsed,
        first=first,
        last=last,
        by_stage=dict(sorted(stages.items())),
        by_level=dict(sorted(levels.items())),
        attacks={k: kinds[k] for k in ATTACK_KINDS if kinds[k]},
        campaigns=len({a.campaign for a in truth}),
    )
