"""Turns one simulated request into its audit events, stage by stage (spec §6), in time order.

Every stage event is pushed on a heap keyed by its `stageTimestamp`; the generator pops them in
order, so the output is sorted even though a watch's `ResponseComplete` comes minutes after it
was scheduled and attack bursts interleave with normal traffic.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from typing import Any

from kaudit.sample.cluster import Identity
from kaudit.sample.ids import MicroTime, uuid4
from kaudit.sample.objects import OK, SWITCHING

API_VERSION = "audit.k8s.io/v1"
Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Tag:
    """Marks the events of an injected attack, for the ground truth."""

    kind: str
    campaign: int
    detail: str


# heap entry: (stageTimestamp µs, sequence, event, tag or None)
Entry = tuple[int, int, Event, "Tag | None"]


class Emitter:
    """Builds events and keeps them in a time-ordered heap until the generator takes them."""

    __slots__ = ("heap", "rng", "seq", "ts")

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.heap: list[Entry] = []
        self.seq = 0
        self.ts = MicroTime()

    def _push(self, us: int, ev: Event, tag: Tag | None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (us, self.seq, ev, tag))

    def request(
        self,
        t: int,
        who: Identity,
        verb: str,
        uri: str,
        objref: dict[str, Any] | None,
        level: str,
        *,
        status: dict[str, Any] = OK,
        ann: dict[str, str] | None = None,
        objref_done: dict[str, Any] | None = None,
        req_obj: Any = None,
        resp_obj: Any = None,
        latency: int = 0,
        stream: int = 0,
        tag: Tag | None = None,
    ) -> str:
        """Emits RequestReceived, [ResponseStarted,] ResponseComplete of one request.

        `objref_done` is the objectRef after the handler filled in name/uid/resourceVersion from
        the body (spec §7); `stream` > 0 makes the request long-running: ResponseStarted at
        `latency`, ResponseComplete `stream` µs later. Returns the auditID.
        """
        aid = uuid4(self.rng)
        ts = self.ts
        t0 = ts(t)
        user = who.user
        ips = who.ips
        agent = who.agent
        if latency <= 0:
            latency = 600 + int(self.rng.random() * 9000)
        if ann is None:
            ann = who.ann
        # RequestReceived: before authorization, so no annotations, no response, no bodies.
        ev: Event = {
            "kind": "Event",
            "apiVersion": API_VERSION,
            "level": level,
            "auditID": aid,
            "stage": "RequestReceived",
            "requestURI": uri,
            "verb": verb,
            "user": user,
            "sourceIPs": ips,
            "userAgent": agent,
        }
        if objref is not None:
            ev["objectRef"] = objref
        ev["requestReceivedTimestamp"] = t0
        ev["stageTimestamp"] = t0
        self._push(t, ev, tag)
        done = objref_done if objref_done is not None else objref
        t1 = t + latency
        if stream > 0:
            started = SWITCHING if status["code"] == 101 else OK
            self._push(
                t1,
                self._event(
                    level,
                    aid,
                    "ResponseStarted",
                    uri,
                    verb,
                    user,
                    ips,
                    agent,
                    done,
                    started,
                    None,
                    None,
                    t0,
                    ts(t1),
                    ann,
                ),
                tag,
            )
            t1 += stream
        if level == "Metadata":
            req_obj = resp_obj = None
        elif level == "Request":
            resp_obj = None
        self._push(
            t1,
            self._event(
                level,
                aid,
                "ResponseComplete",
                uri,
                verb,
                user,
                ips,
                agent,
                done,
                status,
                req_obj,
                resp_obj,
                t0,
                ts(t1),
                ann,
            ),
            tag,
        )
        return aid

    @staticmethod
    def _event(
        level: str,
        aid: str,
        stage: str,
        uri: str,
        verb: str,
        user: dict[str, Any],
        ips: list[str],
        agent: str,
        objref: dict[str, Any] | None,
        status: dict[str, Any],
        req_obj: Any,
        resp_obj: Any,
        t0: str,
        t1: str,
        ann: dict[str, str],
    ) -> Event:
        # Field order of k8s.io/apiserver/pkg/apis/audit/v1.Event, as the log backend writes it.
        ev: Event = {
            "kind": "Event",
            "apiVersion": API_VERSION,
            "level": level,
            "auditID": aid,
            "stage": stage,
            "requestURI": uri,
            "verb": verb,
            "user": user,
            "sourceIPs": ips,
            "userAgent": agent,
        }
        if objref is not None:
            ev["objectRef"] = objref
        ev["responseStatus"] = status
        if req_obj is not None:
            ev["requestObject"] = req_obj
        if resp_obj is not None:
            ev["responseObject"] = resp_obj
        ev["requestReceivedTimestamp"] = t0
        ev["stageTimestamp"] = t1
        if ann:
            ev["annotations"] = ann
        return ev

    def failed_authn(
        self,
        t: int,
        ips: list[str],
        agent: str,
        verb: str,
        uri: str,
        objref: dict[str, Any] | None,
        status: dict[str, Any],
        tag: Tag | None,
    ) -> str:
        """A 401: one ResponseStarted event with an empty user and no annotations (spec §5.4)."""
        aid = uuid4(self.rng)
        t0 = self.ts(t)
        t1 = t + 150 + int(self.rng.random() * 900)
        ev: Event = {
            "kind": "Event",
            "apiVersion": API_VERSION,
            "level": "Metadata",
            "auditID": aid,
            "stage": "ResponseStarted",
            "requestURI": uri,
            "verb": verb,
            "user": {},
            "sourceIPs": ips,
            "userAgent": agent,
        }
        if objref is not None:
            ev["objectRef"] = objref
        ev["responseStatus"] = status
        ev["requestReceivedTimestamp"] = t0
        ev["stageTimestamp"] = self.ts(t1)
        self._push(t1, ev, tag)
        return aid
