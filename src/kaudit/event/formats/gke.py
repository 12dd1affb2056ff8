"""GKE audit logs from Cloud Logging (`k8s.io` Cloud Audit Log entries) to audit.k8s.io/v1 events.

GKE does not expose the apiserver's audit events; it writes a Cloud Logging `LogEntry` whose
`protoPayload` is a `google.cloud.audit.AuditLog` with `serviceName: k8s.io`. kaudit maps it
back to the v1 fields (docs/formats.md lists what cannot be recovered):

| v1 field | from |
|---|---|
| auditID | `operation.id` (GKE sets it to the apiserver's audit ID), else `insertId` |
| verb | last segment of `protoPayload.methodName` (`io.k8s.core.v1.pods.exec.create`) |
| objectRef | `protoPayload.resourceName` (`core/v1/namespaces/default/pods/nginx/exec`) |
| requestURI | rebuilt from resourceName and verb (reconstructed, no query string) |
| user.username | `authenticationInfo.principalEmail` |
| sourceIPs, userAgent | `requestMetadata.callerIp`, `callerSuppliedUserAgent` |
| responseStatus | a Kubernetes `Status` in `response`, else `status.code` (google.rpc → HTTP) |
| requestObject, responseObject | `request`, `response` without their `@type` |
| annotations | the entry's `labels` (GKE writes the audit annotations there) |
| stage | `operation.first`/`last` (reconstructed) |
| level | from the bodies present (reconstructed, a lower bound) |
| timestamps | `requestMetadata.requestAttributes.time`, `timestamp`, `receiveTimestamp` |

Every converted event is marked `kaudit.io/source-format: gke`, and `kaudit.io/reconstructed`
names the fields kaudit inferred rather than copied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kaudit.errors import DecodeError
from kaudit.event.formats._common import RECONSTRUCTED_KEY, SOURCE_FORMAT_KEY, micro_time

AUDIT_LOG_TYPE = "type.googleapis.com/google.cloud.audit.AuditLog"
DECISION_KEY = "authorization.k8s.io/decision"

# google.rpc.Code → HTTP status, as in google/rpc/code.proto's "HTTP Mapping" comments.
RPC_TO_HTTP: dict[int, int] = {
    0: 200,  # OK
    1: 499,  # CANCELLED
    2: 500,  # UNKNOWN
    3: 400,  # INVALID_ARGUMENT
    4: 504,  # DEADLINE_EXCEEDED
    5: 404,  # NOT_FOUND
    6: 409,  # ALREADY_EXISTS
    7: 403,  # PERMISSION_DENIED
    8: 429,  # RESOURCE_EXHAUSTED
    9: 400,  # FAILED_PRECONDITION
    10: 409,  # ABORTED (GKE uses it for "already exists" conflicts)
    11: 400,  # OUT_OF_RANGE
    12: 501,  # UNIMPLEMENTED
    13: 500,  # INTERNAL
    14: 503,  # UNAVAILABLE
    15: 500,  # DATA_LOSS
    16: 401,  # UNAUTHENTICATED
}
# kube-apiserver answers a successful protocol upgrade with 101 (spec §6).
_STREAMING_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})
_HTTP_VERBS = frozenset({"get", "post", "put", "patch", "delete", "head", "options"})
_VERSION_RE = re.compile(r"v\d+(?:(?:alpha|beta)\d+)?")
# Built-in groups whose names have no ".k8s.io" suffix ("core" is GKE's name for "").
_UNSUFFIXED_GROUPS = frozenset({"core", "apps", "batch", "autoscaling", "policy", "extensions"})
_STATUS_FIELDS = ("metadata", "status", "message", "reason", "details", "code")


def _type_of(obj: Mapping[str, Any]) -> Any:
    # Panther renames "@type" to "at_sign_type"; accept both spellings.
    return obj.get("@type", obj.get("at_sign_type"))


def looks_like_gke(obj: object) -> bool:
    """True for a Cloud Logging LogEntry shape (any service; `gke_to_v1` checks for k8s.io)."""
    if not isinstance(obj, Mapping):
        return False
    if isinstance(obj.get("protoPayload"), Mapping):
        return True
    operation = obj.get("operation")
    if isinstance(operation, Mapping) and "producer" in operation:
        return True
    log_name = obj.get("logName")
    return isinstance(log_name, str) and "/logs/" in log_name


def gke_cluster_name(entry: Mapping[str, Any]) -> str | None:
    """`resource.labels.cluster_name` of a GKE entry, if present."""
    resource = entry.get("resource") if isinstance(entry, Mapping) else None
    labels = resource.get("labels") if isinstance(resource, Mapping) else None
    name = labels.get("cluster_name") if isinstance(labels, Mapping) else None
    return name if isinstance(name, str) and name else None


def _flag(operation: Mapping[str, Any], key: str) -> bool:
    value = operation.get(key)
    # Some pipelines (Wazuh, Pub/Sub → JSON) turn the booleans into strings.
    return value is True or value == "true"


def _stage(entry: Mapping[str, Any]) -> str:
    """A long-running request has a `first` entry when it starts and a `last` when it ends."""
    operation = entry.get("operation")
    if (
        isinstance(operation, Mapping)
        and _flag(operation, "first")
        and not _flag(operation, "last")
    ):
        return "ResponseStarted"
    return "ResponseComplete"


def _object_ref(resource_name: str) -> tuple[dict[str, Any], list[str]] | None:
    """`group/version/[namespaces/ns/]resource[/name[/subresource]]` → objectRef, path parts.

    Follows kube-apiserver's RequestInfo rules (spec §5.1): a namespace's own `status` and
    `finalize` are subresources of the Namespace object.
    """
    parts = [p for p in resource_name.split("/") if p]
    if len(parts) < 3:
        return None
    group, version, rest = parts[0], parts[1], parts[2:]
    namespace = None
    current = rest
    if rest[0] == "namespaces" and len(rest) >= 2:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            current = rest[2:]
    ref: dict[str, Any] = {"resource": current[0]}
    if namespace:
        ref["namespace"] = namespace
    if len(current) > 1:
        ref["name"] = current[1]
    if group != "core":  # v1 omits the core group ("")
        ref["apiGroup"] = group
    ref["apiVersion"] = version
    if len(current) > 2:
        ref["subresource"] = current[2]
    return ref, rest


def _request_uri(group: str | None, version: str, rest: list[str], verb: str, ref: Any) -> str:
    prefix = f"/api/{version}" if group is None else f"/apis/{group}/{version}"
    parts = list(rest)
    if verb == "create" and "name" in ref and "subresource" not in ref:
        # A create is a POST to the collection; the name came from the body.
        parts = parts[:-1]
    uri = "/".join([prefix, *parts])
    return f"{uri}?watch=true" if verb == "watch" else uri


def _response_status(
    payload: Mapping[str, Any], verb: str, subresource: str | None
) -> tuple[dict[str, Any], bool]:
    """The responseStatus and whether it was inferred from the google.rpc status."""
    response = payload.get("response")
    if isinstance(response, Mapping):
        kind_is_status = response.get("kind") == "Status" or str(_type_of(response)).endswith(
            ".Status"
        )
        code = response.get("code")
        if kind_is_status and isinstance(code, int) and not isinstance(code, bool):
            return {k: response[k] for k in _STATUS_FIELDS if k in response}, False
    status = payload.get("status")
    rpc_code = status.get("code", 0) if isinstance(status, Mapping) else 0
    if not isinstance(rpc_code, int) or isinstance(rpc_code, bool):
        raise DecodeError(
            "bad_gke_entry", f"protoPayload.status.code is not an integer: {rpc_code!r}"
        )
    result: dict[str, Any] = {"metadata": {}}
    if rpc_code == 0:
        if subresource in _STREAMING_SUBRESOURCES:
            result["code"] = 101
        elif verb == "create" and subresource is None:
            result["code"] = 201
        else:
            result["code"] = 200
        return result, True
    result["status"] = "Failure"
    message = status.get("message") if isinstance(status, Mapping) else None
    if isinstance(message, str) and message:
        result["message"] = message
    result["code"] = RPC_TO_HTTP.get(rpc_code, 500)
    return result, True


def _decision(payload: Mapping[str, Any]) -> str | None:
    """allow/forbid from explicit `granted` booleans; None when no entry says either way."""
    infos = payload.get("authorizationInfo")
    if not isinstance(infos, list):
        return None
    granted = [i.get("granted") for i in infos if isinstance(i, Mapping)]
    if not granted or not all(isinstance(g, bool) for g in granted):
        # proto3 JSON drops false booleans, so a missing `granted` proves nothing.
        return None
    return "allow" if all(granted) else "forbid"


def _first_authz_resource(payload: Mapping[str, Any]) -> str | None:
    infos = payload.get("authorizationInfo")
    if isinstance(infos, list) and infos and isinstance(infos[0], Mapping):
        resource = infos[0].get("resource")
        return resource if isinstance(resource, str) and resource else None
    return None


def _ref_from_method(method: str) -> tuple[dict[str, Any], list[str]] | None:
    """objectRef from `io.k8s.<reversed group>.<version>.<resource>[.<sub>].<verb>`.

    Only for entries without resourceName; the method has no namespace and no name.
    """
    if not method.startswith("io.k8s."):
        return None
    segments = method.split(".")[2:-1]
    index = next((i for i, s in enumerate(segments) if _VERSION_RE.fullmatch(s)), None)
    if index is None or index == 0 or index + 1 >= len(segments):
        return None
    group_parts = segments[:index]
    if len(group_parts) == 1 and group_parts[0] in _UNSUFFIXED_GROUPS:
        group = group_parts[0]
    else:
        # io.k8s.authorization.rbac → rbac.authorization.k8s.io
        group = ".".join([*reversed(group_parts), "k8s", "io"])
    resource = segments[index + 1]
    ref: dict[str, Any] = {"resource": resource}
    if group != "core":
        ref["apiGroup"] = group
    ref["apiVersion"] = segments[index]
    if index + 2 < len(segments):
        ref["subresource"] = segments[index + 2]
    return ref, [resource]


def _without_type(body: Any) -> Any:
    if isinstance(body, Mapping):
        return {k: v for k, v in body.items() if k not in ("@type", "at_sign_type")}
    return body


def _check_k8s(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    payload = entry.get("protoPayload")
    if not isinstance(payload, Mapping):
        raise DecodeError("not_k8s_audit", "no protoPayload: not a Cloud Audit Log entry")
    payload_type = _type_of(payload)
    if payload_type is not None and payload_type != AUDIT_LOG_TYPE:
        raise DecodeError("not_k8s_audit", f"protoPayload is {payload_type!r}, not an AuditLog")
    service = payload.get("serviceName")
    method = payload.get("methodName")
    if service is not None and service != "k8s.io":
        raise DecodeError("not_k8s_audit", f"serviceName {service!r} is not k8s.io")
    if service is None and not (isinstance(method, str) and method.startswith("io.k8s.")):
        raise DecodeError("not_k8s_audit", "neither serviceName k8s.io nor an io.k8s.* method")
    return payload


def gke_to_v1(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One GKE `k8s.io` LogEntry to a v1 event dict; DecodeError for other services or bad data."""
    if not isinstance(entry, Mapping):
        raise DecodeError("bad_gke_entry", f"expected an object, got {type(entry).__name__}")
    payload = _check_k8s(entry)
    method = payload.get("methodName")
    if not isinstance(method, str) or not method.strip("."):
        raise DecodeError("bad_gke_entry", "protoPayload.methodName is missing")
    reconstructed = ["level", "stage"]
    verb = method.rsplit(".", 1)[-1]

    resource_name = payload.get("resourceName")
    from_name = isinstance(resource_name, str) and bool(resource_name)
    if not from_name:
        # Entries without resourceName: authorizationInfo has the same form, else the method.
        resource_name = _first_authz_resource(payload)
    parsed = None
    if resource_name is not None and not resource_name.startswith("/"):
        parsed = _object_ref(resource_name)
    elif resource_name is None:
        parsed = _ref_from_method(method)
    if parsed is not None and not from_name:
        reconstructed.append("objectRef")
    ref: dict[str, Any] | None = None
    if parsed is not None:
        ref, rest = parsed
        group = ref.get("apiGroup")
        uri = _request_uri(group, ref["apiVersion"], rest, verb, ref)
    else:
        # A non-resource request (`/readyz`, `io.k8s.readyz`): the verb is the HTTP method.
        if resource_name is not None and resource_name.startswith("/"):
            uri = resource_name
        else:
            uri = "/" + method.removeprefix("io.k8s.").replace(".", "/")
        if verb not in _HTTP_VERBS:
            verb = "get"
            reconstructed.append("verb")
    reconstructed.append("requestURI")

    event: dict[str, Any] = {"kind": "Event", "apiVersion": "audit.k8s.io/v1"}
    request, response = payload.get("request"), payload.get("response")
    event["level"] = (
        "RequestResponse"
        if response is not None
        else "Request"
        if request is not None
        else "Metadata"
    )
    operation = entry.get("operation")
    audit_id = operation.get("id") if isinstance(operation, Mapping) else None
    if not isinstance(audit_id, str) or not audit_id:
        audit_id = entry.get("insertId")
    if isinstance(audit_id, str) and audit_id:
        event["auditID"] = audit_id
    event["stage"] = _stage(entry)
    event["requestURI"] = uri
    event["verb"] = verb

    authn = payload.get("authenticationInfo")
    principal = authn.get("principalEmail") if isinstance(authn, Mapping) else None
    event["user"] = {"username": principal} if isinstance(principal, str) and principal else {}
    meta = payload.get("requestMetadata")
    meta = meta if isinstance(meta, Mapping) else {}
    caller_ip = meta.get("callerIp", meta.get("callerIP"))  # Panther spells it callerIP
    if isinstance(caller_ip, str) and caller_ip:
        event["sourceIPs"] = [caller_ip]
    agent = meta.get("callerSuppliedUserAgent")
    if isinstance(agent, str) and agent:
        event["userAgent"] = agent
    if ref is not None:
        event["objectRef"] = ref

    subresource = ref.get("subresource") if ref is not None else None
    status, inferred = _response_status(payload, verb, subresource)
    event["responseStatus"] = status
    if inferred:
        reconstructed.append("responseStatus")
    if request is not None:
        event["requestObject"] = _without_type(request)
    if response is not None:
        event["responseObject"] = _without_type(response)

    attributes = meta.get("requestAttributes")
    request_time = attributes.get("time") if isinstance(attributes, Mapping) else None
    entry_time = entry.get("timestamp")
    receive_time = entry.get("receiveTimestamp")
    stage_time = next((t for t in (entry_time, receive_time) if isinstance(t, str) and t), None)
    received = next((t for t in (request_time, stage_time) if isinstance(t, str) and t), None)
    if received is not None:
        event["requestReceivedTimestamp"] = micro_time(received)
    if stage_time is not None:
        event["stageTimestamp"] = micro_time(stage_time)

    annotations: dict[str, Any] = {}
    labels = entry.get("labels")
    if isinstance(labels, Mapping):
        annotations.update((k, v) for k, v in labels.items() if isinstance(v, str))
    if DECISION_KEY not in annotations:
        decision = _decision(payload)
        if decision is not None:
            annotations[DECISION_KEY] = decision
            reconstructed.append(DECISION_KEY)
    annotations[SOURCE_FORMAT_KEY] = "gke"
    annotations[RECONSTRUCTED_KEY] = ",".join(reconstructed)
    event["annotations"] = annotations
    return event
