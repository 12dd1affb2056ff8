"""Guess an input's format from its first record or line.

`sniff` answers one of `FORMATS`; the caller then reads the whole input that way (or the user
forces a format). Checks go from the most specific wrapper to the plain event, because a
wrapper never looks like an event but a careless event check could accept a wrapper.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from kaudit.errors import DecodeError
from kaudit.event.formats._common import looks_like_event
from kaudit.event.formats.aks import looks_like_aks
from kaudit.event.formats.eks import looks_like_eks
from kaudit.event.formats.gke import looks_like_gke
from kaudit.event.formats.legacy import looks_like_legacy

FORMATS = ("v1", "eventlist", "eks", "aks", "gke", "legacy")


def _looks_like_event_list(obj: Mapping[str, Any]) -> bool:
    if obj.get("kind") == "EventList":
        return True
    version = obj.get("apiVersion")
    return (
        isinstance(obj.get("items"), list)
        and isinstance(version, str)
        and version.startswith("audit.k8s.io/")
    )


def _sniff_object(obj: Any) -> str:
    if isinstance(obj, list):
        if not obj:
            raise DecodeError("empty", "an empty JSON array has no format")
        return _sniff_object(obj[0])
    if not isinstance(obj, Mapping):
        raise DecodeError(
            "unknown_format", f"a JSON {type(obj).__name__} is not an audit event or record"
        )
    if _looks_like_event_list(obj):
        return "eventlist"
    if looks_like_gke(obj):
        return "gke"
    if looks_like_aks(obj):
        return "aks"
    if looks_like_eks(obj):
        return "eks"
    if looks_like_event(obj):
        return "v1"
    raise DecodeError("unknown_format", "not an audit event, EventList, EKS, AKS or GKE record")


def sniff(first: Any) -> str:
    """The format of `first`: a parsed JSON value, or one raw line (str or bytes).

    `"v1"` covers native events of every version (v1, v1beta1, v1alpha1, or no apiVersion as in
    Falco's fixtures). A JSON array is judged by its first element. A line that is a CloudWatch
    S3-export line (`<time> {…}`) answers `"eks"`. Raises DecodeError("unknown_format" or
    "empty") when nothing fits.
    """
    if isinstance(first, bytes | bytearray):
        first = bytes(first).decode("utf-8", "replace")
    if isinstance(first, str):
        text = first.strip().lstrip("\ufeff")
        if not text:
            raise DecodeError("empty", "an empty line has no format")
        if text[0] in "{[":
            try:
                return _sniff_object(orjson.loads(text))
            except orjson.JSONDecodeError as exc:
                raise DecodeError("unknown_format", f"starts like JSON but is not: {exc}") from None
        if looks_like_legacy(text):
            return "legacy"
        if looks_like_eks(text):
            return "eks"
        raise DecodeError("unknown_format", f"not JSON and not a legacy audit line: {text[:60]!r}")
    return _sniff_object(first)
