"""Replaying recorded events under a candidate policy (`policy simulate` and `policy diff`).

Events are first reduced to *groups*: events with the same request attributes, recorded level and
stage, with their count and byte sums (whole event, request body, response body, managedFields
inside each body). Over the store this reduction is one SQL GROUP BY, so the policy is evaluated
once per distinct request in Python and sizes are summed by the database. Over files it is a
Python dict. The new size of an event is its recorded size minus what its new level does not log
(spec k8s-audit §7): `requestObject` below Request, `responseObject` below RequestResponse, and
`metadata.managedFields` when the new decision omits them. A level above the recorded one cannot
add bodies that were never recorded: such events keep their size and are counted as `raised`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from kaudit.errors import InputError, Location
from kaudit.event.batch import Reject
from kaudit.event.decode import iter_raw_events
from kaudit.policy.model import LEVELS, Decision, Policy, RequestAttributes, level_rank
from kaudit.policy.needs import DETECTION_NEEDS, DetectionNeed
from kaudit.policy.requestinfo import _list_verb_and_name, attributes_from_event
from kaudit.store.base import CompiledQuery, QueryResult

_REQ_KEY = len('"requestObject":') + 1  # the key and one comma leave with the body
_RESP_KEY = len('"responseObject":') + 1
_MF_KEY = len('"managedFields":') + 1


@dataclass(frozen=True, slots=True)
class EventGroup:
    """Recorded events sharing request attributes, recorded level and stage."""

    attrs: RequestAttributes
    level: str
    stage: str
    count: int
    bytes: int
    request_bytes: int = 0  # sum of len(requestObject JSON)
    response_bytes: int = 0
    request_mf_bytes: int = 0  # sum of len(requestObject.metadata.managedFields JSON)
    response_mf_bytes: int = 0

    def size_under(self, d: Decision) -> int:
        """Summed bytes of these events when logged under decision `d` (0 when not logged)."""
        if d.level == "None" or self.stage in d.omit_stages:
            return 0
        size = self.bytes
        new = level_rank(d.level)
        keep_req = new >= level_rank("Request") and self.request_bytes
        keep_resp = new >= level_rank("RequestResponse") and self.response_bytes
        if self.request_bytes and not keep_req:
            size -= self.request_bytes + _REQ_KEY * self.count
        if self.response_bytes and not keep_resp:
            size -= self.response_bytes + _RESP_KEY * self.count
        if d.omit_managed_fields:
            if keep_req and self.request_mf_bytes:
                size -= self.request_mf_bytes + _MF_KEY * self.count
            if keep_resp and self.response_mf_bytes:
                size -= self.response_mf_bytes + _MF_KEY * self.count
        return max(size, 0)


class GroupSource(Protocol):
    """Where recorded events come from, already grouped for `policy`."""

    def groups(self, policy: Policy) -> Iterator[EventGroup]: ...


class _Executes(Protocol):
    def execute(self, query: CompiledQuery) -> QueryResult: ...


def _needs(policies: Sequence[Policy]) -> tuple[bool, bool, bool, bool]:
    """Which attributes any of `policies` reads: users, groups, names, paths."""
    users = groups = names = paths = False
    for p in policies:
        for r in p.rules:
            users |= bool(r.users)
            groups |= bool(r.user_groups)
            names |= any(gr.resource_names for gr in r.resources)
            paths |= bool(r.non_resource_urls)
    return users, groups, names, paths


@dataclass
class StoreGroups:
    """Groups computed by the store in one GROUP BY (the fast path for `--db`).

    Only the attributes some policy reads are grouped on (groups, names and paths only when a
    rule uses them), so a typical policy sees a few thousand distinct requests per million
    events. `also` lists other policies (diff) whose attributes must be kept too.
    """

    store: _Executes
    where_sql: str | None = None
    params: tuple[Any, ...] = ()
    also: tuple[Policy, ...] = ()

    def sql(self, policy: Policy) -> str:
        _, groups, names, paths = _needs((policy, *self.also))
        mf = any(
            p.omit_managed_fields or any(r.omit_managed_fields for r in p.rules)
            for p in (policy, *self.also)
        )
        rr = '("objectRef.resource" IS NOT NULL)'
        body = "level IN ('Request', 'RequestResponse')"
        name = (
            f"""CASE WHEN NOT {rr} THEN NULL
                 WHEN verb IN ('list', 'watch') THEN CASE
                      WHEN contains(requestURI, 'fieldSelector=') THEN 'uri:' || requestURI
                      ELSE '' END
                 WHEN verb = 'create' AND coalesce("objectRef.subresource", '') = '' THEN ''
                 ELSE "objectRef.name" END"""
            if names
            else "NULL"
        )
        path = f"CASE WHEN {rr} THEN NULL ELSE split_part(requestURI, '?', 1) END"
        # the username is always kept: subject rules need it, and reports name the caller
        user = '"user.username"'
        req = f"CASE WHEN {body} THEN coalesce(length(CAST(requestObject AS VARCHAR)), 0) END"
        resp = (
            "CASE WHEN level = 'RequestResponse' "
            "THEN coalesce(length(CAST(responseObject AS VARCHAR)), 0) END"
        )

        def mf_len(col: str) -> str:
            if not mf:
                return "0"
            return (
                f"CASE WHEN {body} THEN coalesce(length(CAST(json_extract({col}, "
                "'$.metadata.managedFields') AS VARCHAR)), 0) END"
            )

        where = f"WHERE {self.where_sql}" if self.where_sql else ""
        return f"""
            SELECT {user} AS u,
                   {'CAST("user.groups" AS VARCHAR)' if groups else "NULL"} AS g,
                   verb, {rr} AS rr,
                   "objectRef.namespace" AS ns, "objectRef.apiGroup" AS grp,
                   "objectRef.resource" AS res, "objectRef.subresource" AS sub,
                   {name} AS nm, {path if paths else "NULL"} AS p,
                   level, stage, count(*) AS n, sum(size) AS b,
                   sum({req}) AS rq, sum({resp}) AS rs,
                   sum({mf_len("requestObject")}) AS rqm, sum({mf_len("responseObject")}) AS rsm
            FROM events {where}
            GROUP BY ALL"""

    def groups(self, policy: Policy) -> Iterator[EventGroup]:
        result = self.store.execute(CompiledQuery(self.sql(policy), self.params))
        for (
            u,
            g,
            verb,
            rr,
            ns,
            grp,
            res,
            sub,
            nm,
            p,
            level,
            stage,
            n,
            b,
            rq,
            rs,
            rqm,
            rsm,
        ) in result.rows:
            user = u or None
            groups = tuple(orjson.loads(g)) if (g and user) else ()
            name = nm or ""
            if name.startswith("uri:"):
                # only lists/watches with a field selector carry their query here (§5.1)
                name = _selector_name(name[4:].partition("?")[2])
            attrs = RequestAttributes(
                user=user,
                groups=groups,
                verb=verb or "",
                resource_request=bool(rr),
                namespace=ns or "",
                api_group=grp or "",
                resource=res or "",
                subresource=sub or "",
                name=name,
                path=p or "",
            )
            yield EventGroup(
                attrs,
                level or "",
                stage or "",
                int(n),
                int(b or 0),
                int(rq or 0),
                int(rs or 0),
                int(rqm or 0),
                int(rsm or 0),
            )


@functools.lru_cache(maxsize=65536)
def _selector_name(query: str) -> str:
    return _list_verb_and_name(query)[1]


def _json_len(value: Any) -> int:
    return 0 if value is None else len(orjson.dumps(value))


def read_event_files(paths: Iterable[str | Path]) -> Iterator[tuple[dict[str, Any], int]]:
    """Events and their sizes from files in any format `kaudit ingest` reads.

    A record that is not an event is an error here: a simulation must not quietly leave
    traffic out.
    """
    rejects: list[Reject] = []
    yield from iter_raw_events([str(p) for p in paths], rejects=rejects)
    if rejects:
        r = rejects[0]
        raise InputError(
            f"{r.reason}: {r.message} ({len(rejects)} record(s) not read; see kaudit ingest)",
            Location(r.source, r.line),
        )


@dataclass
class FileGroups:
    """Groups built in Python from event files (`--events`)."""

    paths: tuple[str, ...]
    _cache: list[EventGroup] | None = None

    def groups(self, policy: Policy) -> Iterator[EventGroup]:
        if self._cache is None:
            acc: dict[tuple[RequestAttributes, str, str], list[int]] = {}
            for ev, size in read_event_files(self.paths):
                attrs = attributes_from_event(ev)
                key = (attrs, str(ev.get("level") or ""), str(ev.get("stage") or ""))
                req, resp = ev.get("requestObject"), ev.get("responseObject")
                sums = acc.setdefault(key, [0, 0, 0, 0, 0, 0])
                sums[0] += 1
                sums[1] += size
                sums[2] += _json_len(req)
                sums[3] += _json_len(resp)
                for i, body in ((4, req), (5, resp)):
                    meta = body.get("metadata") if isinstance(body, dict) else None
                    if isinstance(meta, dict):
                        sums[i] += _json_len(meta.get("managedFields"))
            self._cache = [EventGroup(a, lv, st, *s) for (a, lv, st), s in acc.items()]
        yield from self._cache


@dataclass
class Tally:
    events: int = 0
    bytes: int = 0

    def add(self, events: int, size: int) -> None:
        self.events += events
        self.bytes += size

    def to_dict(self) -> dict[str, int]:
        return {"events": self.events, "bytes": self.bytes}


@dataclass
class Row:
    """Recorded vs kept for one rule or one level; dropped is the difference."""

    key: str
    recorded: Tally = field(default_factory=Tally)
    kept: Tally = field(default_factory=Tally)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "recorded": self.recorded.to_dict(),
            "kept": self.kept.to_dict(),
            "dropped": {
                "events": self.recorded.events - self.kept.events,
                "bytes": self.recorded.bytes - self.kept.bytes,
            },
        }


@dataclass
class DetectionLoss:
    """Recorded events a detection reads, and how many it would still get."""

    detection: str
    min_level: str
    recorded: int = 0
    kept: int = 0

    @property
    def lost(self) -> int:
        return self.recorded - self.kept


@dataclass
class SimulationReport:
    """What a candidate policy would have kept of the recorded events."""

    total: Row = field(default_factory=lambda: Row("total"))
    by_rule: dict[str, Row] = field(default_factory=dict)
    by_level: dict[str, Row] = field(default_factory=dict)
    detections: list[DetectionLoss] = field(default_factory=list)
    raised: int = 0  # events whose new level is above the recorded one (size under-estimated)
    distinct_requests: int = 0
    groups: int = 0
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total.to_dict(),
            "by_rule": [r.to_dict() for r in self.by_rule.values()],
            "by_level": [r.to_dict() for r in self.by_level.values()],
            "detections": [
                {
                    "detection": d.detection,
                    "min_level": d.min_level,
                    "recorded": d.recorded,
                    "kept": d.kept,
                    "lost": d.lost,
                }
                for d in self.detections
            ],
            "raised_level_events": self.raised,
            "distinct_requests": self.distinct_requests,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def _rule_key(index: int | None, policy: Policy) -> str:
    if index is None:
        return "no rule (None)"
    return f"rule {index} ({policy.rules[index].level})"


def simulate(policy: Policy, source: GroupSource) -> SimulationReport:
    """Replay the recorded events of `source` under `policy`."""
    start = time.perf_counter()
    report = SimulationReport()
    for i in range(len(policy.rules)):
        report.by_rule[_rule_key(i, policy)] = Row(_rule_key(i, policy))
    report.by_rule[_rule_key(None, policy)] = Row(_rule_key(None, policy))
    for lv in LEVELS:
        report.by_level[lv] = Row(lv)
    losses = [DetectionLoss(n.detection, n.min_level) for n in DETECTION_NEEDS]
    rule_rows = [report.by_rule[_rule_key(i, policy)] for i in range(len(policy.rules))]
    no_rule = report.by_rule[_rule_key(None, policy)]
    decide = policy.evaluate
    # per distinct request: decision, its rows, and the detections that read it
    Entry = tuple[Decision, Row, Row, list[tuple[DetectionNeed, DetectionLoss]]]
    cache: dict[RequestAttributes, Entry] = {}
    for grp in source.groups(policy):
        report.groups += 1
        entry = cache.get(grp.attrs)
        if entry is None:
            d = decide(grp.attrs)
            entry = cache[grp.attrs] = (
                d,
                no_rule if d.rule_index is None else rule_rows[d.rule_index],
                report.by_level[d.level if d.level in report.by_level else "None"],
                [
                    (need, loss)
                    for need, loss in zip(DETECTION_NEEDS, losses, strict=True)
                    if need.reads(grp.attrs)
                ],
            )
        d, row, lrow, readers = entry
        kept_bytes = grp.size_under(d)
        kept_events = grp.count if d.logs_stage(grp.stage) else 0
        report.total.recorded.add(grp.count, grp.bytes)
        report.total.kept.add(kept_events, kept_bytes)
        row.recorded.add(grp.count, grp.bytes)
        row.kept.add(kept_events, kept_bytes)
        lrow.recorded.add(grp.count, grp.bytes)
        lrow.kept.add(kept_events, kept_bytes)
        if kept_events and level_rank(d.level) > level_rank(grp.level):
            report.raised += grp.count
        for need, loss in readers:
            if grp.stage == need.stage and need.satisfied_by(grp.level):
                loss.recorded += grp.count
                if kept_events and need.satisfied_by(d.level):
                    loss.kept += grp.count
    report.detections = [loss for loss in losses if loss.recorded]
    report.distinct_requests = len(cache)
    report.elapsed_s = time.perf_counter() - start
    return report


@dataclass
class DiffGroup:
    """Requests whose decision changes the same way, with the most frequent shapes."""

    old: Decision
    new: Decision
    events: int = 0
    shapes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def dec(d: Decision) -> dict[str, Any]:
            return {
                "level": d.level,
                "omit_stages": sorted(d.omit_stages),
                "rule_index": d.rule_index,
            }

        top = sorted(self.shapes.items(), key=lambda kv: -kv[1])[:10]
        return {
            "old": dec(self.old),
            "new": dec(self.new),
            "events": self.events,
            "requests": [{"request": k, "events": v} for k, v in top],
        }


def shape(a: RequestAttributes) -> str:
    """A short human description of a request: `get pods/log`, `post /healthz`."""
    if not a.resource_request:
        return f"{a.verb} {a.path}"
    res = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    grp = f"{a.api_group}/" if a.api_group else ""
    who = f" by {a.user}" if a.user else (" (no user)" if a.user is None else "")
    return f"{a.verb} {grp}{res}{who}"


def diff(old: Policy, new: Policy, source: GroupSource) -> list[DiffGroup]:
    """The recorded requests whose level or omitted stages differ between two policies."""
    out: dict[tuple[str, frozenset[str], int | None, str, frozenset[str], int | None], DiffGroup]
    out = {}
    for grp in source.groups(old):
        a, b = old.evaluate(grp.attrs), new.evaluate(grp.attrs)
        if (a.level, a.omit_stages) == (b.level, b.omit_stages):
            continue
        key = (a.level, a.omit_stages, a.rule_index, b.level, b.omit_stages, b.rule_index)
        dg = out.setdefault(key, DiffGroup(a, b))
        dg.events += grp.count
        s = shape(grp.attrs)
        dg.shapes[s] = dg.shapes.get(s, 0) + grp.count
    return sorted(out.values(), key=lambda g: -g.events)


@dataclass
class ProbeGroups:
    """Synthetic requests (the detections' probes and common noise) when no events are given."""

    def groups(self, policy: Policy) -> Iterator[EventGroup]:
        seen: set[RequestAttributes] = set()
        probes = [p for need in DETECTION_NEEDS for p in need.probes()]
        probes += [
            RequestAttributes(verb="get", path=p, user="system:anonymous",
                              groups=("system:unauthenticated",))
            for p in ("/healthz", "/livez", "/readyz", "/metrics", "/version", "/api", "/apis")
        ]  # fmt: skip
        from kaudit.policy.needs import probe

        probes += [
            probe("watch", "endpoints", who=("system:kube-proxy", ("system:authenticated",))),
            probe("get", "nodes", namespace="", who=("system:node:n1", ("system:nodes",))),
            probe("update", "leases", group="coordination.k8s.io", namespace="kube-node-lease"),
            probe("create", "events", namespace="default"),
            probe("list", "pods", namespace=""),
            probe("delete", "namespaces", name="prod", namespace="prod"),
        ]
        for p in probes:
            if p not in seen:
                seen.add(p)
                yield EventGroup(p, "Metadata", "ResponseComplete", 1, 0)
