"""Azure AKS audit logs from diagnostic settings: unwrap each record's `properties.log`.

A diagnostic setting on the cluster sends the categories `kube-audit` (every audit event) and
`kube-audit-admin` (the same without get/list events) to a storage account or an Event Hub:

- one record `{"time": …, "resourceId": ".../managedClusters/<name>", "category": "kube-audit",
  "operationName": …, "properties": {"log": "<event json>", "stream": …, "pod": …}}`;
- the storage-blob / Event Hub body `{"records": [record, …]}`.

Records of other categories (kube-apiserver, guard, cluster-autoscaler, Azure activity log …)
are not audit events and are rejected with reason `not_k8s_audit`. The wrapper is transport
and not kept; the event inside `properties.log` is returned unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kaudit.errors import DecodeError
from kaudit.event.formats._common import as_event, load_json_text

AUDIT_CATEGORIES = frozenset({"kube-audit", "kube-audit-admin"})
_RECORD_KEYS = frozenset({"properties", "operationName", "resourceId", "time"})
# Azure upper-cases resource ids in diagnostic logs; match the provider path in any case.
_CLUSTER_RE = re.compile(r"/managedclusters/([^/]+)/?$", re.IGNORECASE)


def _is_record(obj: object) -> bool:
    return (
        isinstance(obj, Mapping)
        and isinstance(obj.get("category"), str)
        and any(key in obj for key in _RECORD_KEYS)
    )


def looks_like_aks(obj: object) -> bool:
    """True for an Azure diagnostic record (any category) or a `{"records": […]}` body."""
    if not isinstance(obj, Mapping):
        return False
    records = obj.get("records")
    if isinstance(records, list) and "category" not in obj:
        return not records or _is_record(records[0])
    return _is_record(obj)


def aks_records(obj: Mapping[str, Any]) -> list[Any]:
    """Split a `{"records": […]}` body into single records (a record gives itself).

    Use with `aks_record_to_event` to reject one bad record while keeping the others.
    """
    if not isinstance(obj, Mapping):
        raise DecodeError("bad_aks_record", f"expected an object, got {type(obj).__name__}")
    if "records" in obj and "category" not in obj:
        records = obj["records"]
        if not isinstance(records, list):
            raise DecodeError("bad_aks_record", "records is not a list")
        return list(records)
    if "category" in obj:
        return [obj]
    raise DecodeError("bad_aks_record", "no category or records: not an Azure diagnostic record")


def aks_record_to_event(record: Any) -> dict[str, Any]:
    """One diagnostic record to the audit event in `properties.log`."""
    if not isinstance(record, Mapping):
        raise DecodeError("bad_aks_record", f"expected an object, got {type(record).__name__}")
    category = record.get("category")
    if category not in AUDIT_CATEGORIES:
        raise DecodeError(
            "not_k8s_audit", f"category {category!r} is not kube-audit or kube-audit-admin"
        )
    properties = record.get("properties")
    if isinstance(properties, str):
        # Some Event Hub consumers deliver properties as JSON text.
        properties = load_json_text(properties, "bad_aks_record", "properties")
    if not isinstance(properties, Mapping) or "log" not in properties:
        raise DecodeError("bad_aks_record", "kube-audit record has no properties.log")
    inner = load_json_text(properties["log"], "bad_aks_log", "properties.log")
    return as_event(inner, "bad_aks_log", "properties.log")


def unwrap_aks(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every audit event in a record or a records body; the first bad one raises DecodeError."""
    return [aks_record_to_event(r) for r in aks_records(record)]


def aks_cluster_name(record: Mapping[str, Any]) -> str | None:
    """The cluster name at the end of `resourceId` (as written, often upper-cased by Azure)."""
    resource_id = record.get("resourceId") if isinstance(record, Mapping) else None
    if not isinstance(resource_id, str):
        return None
    match = _CLUSTER_RE.search(resource_id)
    return match.group(1) if match else None
