"""The audit-webhook body: an `EventList` from kube-apiserver, into event texts for the store.

spec k8s-audit §8.2/§9.5: the body is `{"kind":"EventList","apiVersion":"audit.k8s.io/v1",
"items":[Event…]}` (v1beta1 from old apiservers); items need not carry kind/apiVersion and
unknown fields are kept. A body is taken whole or refused whole — a refused batch is retried by
the apiserver, so storing part of it would only be stored again — with the HTTP status the
receiver answers: 400 for what no retry will fix, 413 for limits. Secret values are replaced
exactly as `kaudit ingest` does (`kaudit.event.redact`).

The body is validated whole by msgspec, which hands back each item's own bytes (`msgspec.Raw`)
without building Python objects for it: the events go on as the apiserver wrote them, like a
line of its log file, and only an event that may hold a Secret is parsed (to redact it).
Building and re-serialising every event was the webhook's largest cost (2.3 ms per 400
events against 0.3 ms), on threads that share one interpreter lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from kaudit.errors import DecodeError
from kaudit.event.redact import may_hold_secret, redact_event

API_VERSIONS = ("audit.k8s.io/v1", "audit.k8s.io/v1beta1", "audit.k8s.io/v1alpha1")


class WebhookRefusal(DecodeError):
    """A body the receiver refuses: `status` is the HTTP answer, `reason` a short code."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(reason, message)
        self.status = status


class _EventList(msgspec.Struct):
    """What is checked of the body itself; the items are kept as text. (`Any` for kind and
    apiVersion: a wrong value gets the refusal below rather than a type error.)"""

    kind: Any = None
    apiVersion: Any = None
    items: list[msgspec.Raw] | None = None  # Go encodes an empty slice as null


_DECODER = msgspec.json.Decoder(_EventList)


@dataclass(slots=True)
class DecodedBatch:
    """The events of one accepted body, serialised one JSON object each (UTF-8 bytes: the
    journal and the store take them as they are)."""

    texts: list[str | bytes] = field(default_factory=list)
    redacted: list[bool] = field(default_factory=list)
    nbytes: int = 0


def decode_eventlist(
    body: bytes, max_event_size: int, redact: bool = True, max_body_size: int | None = None
) -> DecodedBatch:
    """Every event of an EventList body, or a `WebhookRefusal` saying why none is taken."""
    if max_body_size is not None and len(body) > max_body_size:
        raise WebhookRefusal(
            413,
            "body_too_large",
            f"body of {len(body)} bytes is above the limit of {max_body_size} bytes",
        )
    try:  # (msgspec does not look inside the items' strings; orjson, redacting, would)
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookRefusal(
            400, "invalid_json", f"body is not valid UTF-8 (byte {exc.start})"
        ) from None
    try:
        doc = _DECODER.decode(body)
    except msgspec.ValidationError as exc:
        if "$.items" in str(exc):
            raise WebhookRefusal(400, "bad_eventlist", "items must be an array of events") from None
        raise WebhookRefusal(400, "wrong_kind", "expected an EventList object") from None
    except msgspec.DecodeError as exc:
        raise WebhookRefusal(400, "invalid_json", f"body is not valid JSON: {exc}") from None
    if doc.kind != "EventList":
        raise WebhookRefusal(400, "wrong_kind", f"expected kind EventList, got {doc.kind!r}")
    if doc.apiVersion not in API_VERSIONS:
        raise WebhookRefusal(
            400,
            "wrong_api_version",
            f"expected apiVersion audit.k8s.io/v1, got {doc.apiVersion!r}",
        )
    out = DecodedBatch(nbytes=len(body))
    redact = redact and may_hold_secret(body)  # most bodies hold no Secret at all
    indented = b"\n" in body or b"\r" in body
    for i, item in enumerate(doc.items or ()):
        raw = bytes(item)
        if not raw.startswith(b"{"):
            raise WebhookRefusal(
                400, "not_an_object", f"items[{i}]: expected an event object, got {raw!r:.40}"
            )
        flagged = False
        if redact and may_hold_secret(raw):
            new, flagged = redact_event(_parsed(raw, i))
            if flagged:
                raw = orjson.dumps(new)
        if indented and (b"\n" in raw or b"\r" in raw):  # the journal keeps a line per event
            raw = orjson.dumps(_parsed(raw, i))
        if len(raw) > max_event_size:
            raise WebhookRefusal(
                413,
                "event_too_large",
                f"items[{i}] is {len(raw)} bytes, above the event limit of {max_event_size} "
                "bytes (enable the apiserver's --audit-webhook-truncate-enabled, or raise "
                "webhook.max_event_size)",
            )
        out.texts.append(raw)
        out.redacted.append(flagged)
    return out


def _parsed(raw: bytes, i: int) -> Any:
    """An item as Python objects (orjson is stricter than msgspec's look at a `Raw` item: lone
    surrogates, numbers out of a double's range)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise WebhookRefusal(400, "invalid_json", f"items[{i}]: {exc}") from None
