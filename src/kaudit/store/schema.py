"""The events table: SLS-style column names, their types and where each comes from.

Column names follow the flattening that Alibaba's ACK audit logstore uses (spec sls-query §1.6),
so that SLS queries run unchanged: dotted names such as `"user.username"` are single columns,
`sourceIPs` and `"user.groups"` are JSON array text, bodies stay JSON. Every annotation is
reachable as `"annotations.<key>"`: the two hot ones are columns of their own, the rest are read
from the `annotations` JSON object by the query layer (`annotation_key`).

This table is the one definition: the DuckDB DDL, the ingest extraction and the query layer's
column catalogue are all derived from `COLUMNS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The SLS index type of a column: what the search language and type checks see.
SlsType = Literal["text", "long", "double", "json", "timestamp", "bool"]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the events table."""

    name: str  # exact spelling, as SLS users write it
    sql_type: str  # DuckDB type
    sls_type: SlsType
    path: tuple[str, ...] | None  # JSON path in the event, None for derived columns
    doc: str


def _c(name: str, sql_type: str, sls: SlsType, path: str | None, doc: str) -> Column:
    return Column(name, sql_type, sls, tuple(path.split("|")) if path else None, doc)


COLUMNS: tuple[Column, ...] = (
    _c("cluster", "VARCHAR", "text", None, "cluster the event came from (--cluster)"),
    _c("__time__", "BIGINT", "long", None, "unix seconds of stageTimestamp (SLS log time)"),
    _c("auditID", "VARCHAR", "text", "auditID", "request ID shared by all stages"),
    _c("stage", "VARCHAR", "text", "stage", "RequestReceived, ResponseStarted, ..."),
    _c("level", "VARCHAR", "text", "level", "audit level the event was logged at"),
    _c("verb", "VARCHAR", "text", "verb", "kube verb, or lower-case HTTP method"),
    _c("requestURI", "VARCHAR", "text", "requestURI", "path and query as sent"),
    _c("userAgent", "VARCHAR", "text", "userAgent", "client user agent"),
    _c("user.username", "VARCHAR", "text", "user|username", "authenticated user"),
    _c("user.uid", "VARCHAR", "text", "user|uid", "authenticated user's UID"),
    _c("user.groups", "JSON", "json", "user|groups", "groups, as JSON array text"),
    _c(
        "impersonatedUser.username",
        "VARCHAR",
        "text",
        "impersonatedUser|username",
        "impersonated user, when any",
    ),
    _c("sourceIPs", "JSON", "json", "sourceIPs", "client addresses, as JSON array text"),
    _c("objectRef.resource", "VARCHAR", "text", "objectRef|resource", "resource"),
    _c("objectRef.subresource", "VARCHAR", "text", "objectRef|subresource", "subresource"),
    _c("objectRef.namespace", "VARCHAR", "text", "objectRef|namespace", "namespace"),
    _c("objectRef.name", "VARCHAR", "text", "objectRef|name", "object name"),
    _c("objectRef.apiGroup", "VARCHAR", "text", "objectRef|apiGroup", "API group, '' for core"),
    _c("objectRef.apiVersion", "VARCHAR", "text", "objectRef|apiVersion", "API version"),
    _c("responseStatus.code", "INTEGER", "long", "responseStatus|code", "HTTP status code"),
    _c("responseStatus.status", "VARCHAR", "text", "responseStatus|status", "Success/Failure"),
    _c("responseStatus.reason", "VARCHAR", "text", "responseStatus|reason", "Status reason"),
    _c("responseStatus.message", "VARCHAR", "text", "responseStatus|message", "Status message"),
    _c(
        "annotations.authorization.k8s.io/decision",
        "VARCHAR",
        "text",
        "annotations|authorization.k8s.io/decision",
        "allow or forbid",
    ),
    _c(
        "annotations.authorization.k8s.io/reason",
        "VARCHAR",
        "text",
        "annotations|authorization.k8s.io/reason",
        "why the authorizer decided",
    ),
    _c("annotations", "JSON", "json", "annotations", "all annotations, a JSON object"),
    _c("requestObject", "JSON", "json", "requestObject", "request body (Request level and up)"),
    _c("responseObject", "JSON", "json", "responseObject", "response body (RequestResponse)"),
    _c(
        "requestReceivedTimestamp",
        "TIMESTAMP",
        "timestamp",
        "requestReceivedTimestamp",
        "UTC, microseconds",
    ),
    _c("stageTimestamp", "TIMESTAMP", "timestamp", "stageTimestamp", "UTC, microseconds"),
    _c("redacted", "BOOLEAN", "bool", None, "Secret values were replaced at ingest"),
)

COLUMN_BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
# SLS resolves column names case-insensitively (sls-query §1.8).
COLUMN_BY_LOWER: dict[str, Column] = {c.name.lower(): c for c in COLUMNS}

ANNOTATION_PREFIX = "annotations."


def annotation_key(name: str) -> str | None:
    """`"annotations.a.b/c"` -> `"a.b/c"` for an annotation that has no column of its own."""
    if name.lower().startswith(ANNOTATION_PREFIX) and name.lower() not in COLUMN_BY_LOWER:
        return name[len(ANNOTATION_PREFIX) :]
    return None
