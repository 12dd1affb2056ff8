"""What kaudit's detections need the audit policy to log.

One row per detection id: the requests it reads (as probe requests), the lowest level at which
its input is in the event, and the stage it reads. `policy lint` evaluates the probes to name the
detections a policy blinds; `policy simulate` counts the recorded events each would lose. The
detection package reuses this table, so ids here are the detection ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaudit.policy.model import RequestAttributes, level_rank

# Probe identities: a person and an in-cluster workload. Policies usually quiet system
# components by name; these two stand for the callers a detection is about.
HUMAN = ("alice@example.com", ("developers", "system:authenticated"))
WORKLOAD = (
    "system:serviceaccount:default:app",
    ("system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"),
)


def probe(
    verb: str,
    resource: str,
    subresource: str = "",
    *,
    group: str = "",
    namespace: str = "default",
    name: str = "x",
    who: tuple[str, tuple[str, ...]] | None = HUMAN,
) -> RequestAttributes:
    """A resource request as RequestInfo derives it (create has no name, lists neither)."""
    if verb in ("create", "list", "watch", "deletecollection") and not subresource:
        name = ""
    version = "v1"
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    ns = f"/namespaces/{namespace}" if namespace else ""
    tail = "/".join(p for p in (resource, name, subresource) if p)
    return RequestAttributes(
        user=who[0] if who else None,
        groups=who[1] if who else (),
        verb=verb,
        resource_request=True,
        namespace=namespace,
        api_group=group,
        api_version=version,
        resource=resource,
        subresource=subresource,
        name=name,
        path=f"{base}{ns}/{tail}",
    )


@dataclass(frozen=True, slots=True)
class DetectionNeed:
    """Detection `detection` reads `probes` at `min_level` or above, in stage `stage`."""

    detection: str
    what: str
    min_level: str
    verbs: tuple[str, ...]
    group: str
    resources: tuple[str, ...]  # "resource" or "resource/subresource"
    namespaced: bool = True
    stage: str = "ResponseComplete"
    unauthenticated: bool = False

    def probes(self) -> list[RequestAttributes]:
        out: list[RequestAttributes] = []
        callers: tuple[tuple[str, tuple[str, ...]] | None, ...] = (
            (None,) if self.unauthenticated else (HUMAN, WORKLOAD)
        )
        for combined in self.resources:
            resource, _, sub = combined.partition("/")
            for verb in self.verbs:
                for who in callers:
                    out.append(
                        probe(
                            verb,
                            resource,
                            sub,
                            group=self.group,
                            namespace="default" if self.namespaced else "",
                            who=who,
                        )
                    )
        return out

    def reads(self, attrs: RequestAttributes) -> bool:
        """Whether a (recorded) request is input of this detection."""
        if not attrs.resource_request or attrs.api_group != self.group:
            return False
        if self.unauthenticated and attrs.user is not None:
            return False
        combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        return combined in self.resources and attrs.verb in self.verbs

    def satisfied_by(self, level: str) -> bool:
        return level_rank(level) >= level_rank(self.min_level)


_WRITE = ("create", "update", "patch")
_STREAM = ("create", "get")  # SPDY arrives as create, WebSocket as get (§5.1)

DETECTION_NEEDS: tuple[DetectionNeed, ...] = (
    DetectionNeed("exec-into-container", "kubectl exec: pod, container, command (in requestURI)",
                  "Metadata", _STREAM, "", ("pods/exec",)),
    DetectionNeed("attach-to-container", "kubectl attach to a running container",
                  "Metadata", _STREAM, "", ("pods/attach",)),
    DetectionNeed("port-forward", "kubectl port-forward into a pod",
                  "Metadata", _STREAM, "", ("pods/portforward",)),
    DetectionNeed("privileged-pod", "pod spec with privileged containers (requestObject)",
                  "Request", ("create",), "", ("pods",)),
    DetectionNeed("host-namespace-pod", "pod spec with hostNetwork/hostPID/hostIPC",
                  "Request", ("create",), "", ("pods",)),
    DetectionNeed("sensitive-hostpath-mount", "pod spec mounting /, /etc, docker.sock ...",
                  "Request", ("create",), "", ("pods",)),
    DetectionNeed("privileged-workload", "privileged pod templates in workloads",
                  "Request", _WRITE, "apps", ("deployments", "daemonsets", "statefulsets")),
    DetectionNeed("rbac-cluster-admin-binding", "a binding to cluster-admin (roleRef)",
                  "Request", _WRITE, "rbac.authorization.k8s.io",
                  ("clusterrolebindings", "rolebindings")),
    DetectionNeed("rbac-wildcard-role", "roles granting * verbs or resources (rules)",
                  "Request", _WRITE, "rbac.authorization.k8s.io", ("clusterroles", "roles")),
    DetectionNeed("secret-enumeration", "many distinct secrets read by one identity",
                  "Metadata", ("get", "list", "watch"), "", ("secrets",)),
    DetectionNeed("webhook-config-change", "admission webhook added or changed (webhooks[])",
                  "Request", (*_WRITE, "delete"), "admissionregistration.k8s.io",
                  ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"),
                  namespaced=False),
    DetectionNeed("csr-approval", "a certificate signing request approved",
                  "Metadata", ("update", "patch"), "certificates.k8s.io",
                  ("certificatesigningrequests/approval",), namespaced=False),
    DetectionNeed("sa-token-request", "a service-account token minted (TokenRequest)",
                  "Metadata", ("create",), "", ("serviceaccounts/token",)),
    DetectionNeed("node-registration", "a Node created, and by whom (not its own kubelet?)",
                  "Metadata", ("create",), "", ("nodes",), namespaced=False),
    DetectionNeed("failed-authentication", "401s: one ResponseStarted event without user (§5.4)",
                  "Metadata", ("get", "list", "create"), "", ("secrets", "pods"),
                  stage="ResponseStarted", unauthenticated=True),
)  # fmt: skip
