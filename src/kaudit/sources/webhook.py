"""The audit-webhook body: an `EventList` from kube-apiserver, into event texts for the store.

spec k8s-audit §8.2/§9.5: the body is `{"kind":"EventList","apiVersion":"audit.k8s.io/v1",
"items":[Event…]}` (v1beta1 from old apiservers); items need not carry kind/apiVersion and
unknown fields are kept. A body is taken whole or refused whole — a refused batch is retried by
the apiserver, so storing part of it would only be stored again — with the HTTP status the
receiver answers: 400 for what no retry will fix, 413 for limits. Secret values are replaced
exactly as `kaudit ingest` does (`kaudit.event.redact`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from kaudit.errors import DecodeError
from kaudit.event.redact import may_hold_secret, redact_event

API_VERSIONS = ("audit.k8s.io/v1", "audit.k8s.io/v1beta1", "audit.k8s.io/v1alpha1")


class WebhookRefusal(DecodeError):
    """A body the receiver refuses: `status` is the HTTP answer, `reason` a short code."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(reason, message)
        self.status = status


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
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WebhookRefusal(400, "invalid_json", f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, Mapping):
        raise WebhookRefusal(400, "wrong_kind", "expected an EventList object")
    kind, version = doc.get("kind"), doc.get("apiVersion")
    if kind != "EventList":
        raise WebhookRefusal(400, "wrong_kind", f"expected kind EventList, got {kind!r}")
    if version not in API_VERSIONS:
        raise WebhookRefusal(
            400, "wrong_api_version", f"expected apiVersion audit.k8s.io/v1, got {version!r}"
        )
    items = doc.get("items")
    if items is None:
        items = []  # Go encodes an empty slice field with omitempty-less `null`
    if not isinstance(items, list):
        raise WebhookRefusal(400, "bad_eventlist", "items must be an array of events")
    out = DecodedBatch(nbytes=len(body))
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise WebhookRefusal(
                400, "not_an_object", f"items[{i}]: expected an event object, got {item!r:.40}"
            )
        raw = orjson.dumps(item)
        flagged = False
        if redact and may_hold_secret(raw):
            new, flagged = redact_event(item)
            if flagged:
                raw = orjson.dumps(new)
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
