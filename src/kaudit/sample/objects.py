"""Kubernetes object bodies and `Status` responses as they appear in audit events.

Bodies follow what kube-apiserver records (spec §7): `requestObject` is the object as the client
sent it (before defaulting and admission, `creationTimestamp: null`), `responseObject` the stored
object with `uid`, `resourceVersion`, `managedFields` and defaults. Parts that do not change
between events (container specs, field sets) are built once per app and shared: treat every
returned body as read-only.
"""

from __future__ import annotations

import base64
import random
from typing import Any

from kaudit.sample.cluster import App

Body = dict[str, Any]

OK: Body = {"metadata": {}, "code": 200}
CREATED: Body = {"metadata": {}, "code": 201}
SWITCHING: Body = {"metadata": {}, "code": 101}  # protocol upgrade of exec/attach/port-forward


def status(code: int, reason: str, message: str, details: Body | None = None) -> Body:
    """A failure `Status`, copied whole into `responseStatus` (spec §7)."""
    body: Body = {"metadata": {}, "status": "Failure", "message": message, "reason": reason}
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> Body:
    details: Body = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = resource
    return status(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found', details)


def conflict(resource: str, group: str, name: str) -> Body:
    details: Body = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = resource
    return status(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
        details,
    )


def forbidden(user: str, verb: str, resource: str, group: str, namespace: str | None) -> Body:
    # pkg/registry/.../errors.NewForbidden via the authorization filter's message
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return status(
        403,
        "Forbidden",
        f'{_qualified(resource, group)} is forbidden: User "{user}" cannot {verb} resource '
        f'"{resource}" in API group "{group}" {scope}',
        {"kind": resource},
    )


def forbidden_path(user: str, path: str) -> Body:
    return status(
        403,
        "Forbidden",
        f'forbidden: User "{user}" cannot get path "{path}"',
        {},
    )


def success(kind: str, name: str, uid: str, group: str = "") -> Body:
    """The `Status` a delete returns for objects without finalizers."""
    details: Body = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["uid"] = uid
    return {"metadata": {}, "status": "Success", "details": details, "code": 200}


def unauthorized(attempted: str) -> Body:
    # authn_audit.go: Status with only the message and the written code; no status/reason
    return {
        "metadata": {},
        "message": f"Authentication failed, attempted: {attempted}",
        "code": 401,
    }


def b64(rng: random.Random, n: int) -> str:
    return base64.b64encode(rng.randbytes(n)).decode("ascii")


# ---------------------------------------------------------------------------------------------
# Pods

MESHED = ("prod", "payments", "staging")  # namespaces with istio sidecar injection
MESH_ANNOTATION = {
    "mutation.webhook.admission.k8s.io/round_0_index_0": (
        '{"configuration":"istio-sidecar-injector","webhook":"namespace.sidecar-injector.istio.io",'
        '"mutated":true}'
    )
}


def _istio_proxy() -> Body:
    return {
        "name": "istio-proxy",
        "image": "docker.io/istio/proxyv2:1.21.2",
        "args": [
            "proxy",
            "sidecar",
            "--domain",
            "$(POD_NAMESPACE).svc.cluster.local",
            "--proxyLogLevel=warning",
            "--proxyComponentLogLevel=misc:error",
            "--log_output_level=default:info",
        ],
        "ports": [{"name": "http-envoy-prom", "containerPort": 15090, "protocol": "TCP"}],
        "env": [
            {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
            {"name": "CA_ADDR", "value": "istiod.istio-system.svc:15012"},
            {
                "name": "POD_NAME",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
            },
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}},
            },
            {
                "name": "INSTANCE_IP",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}},
            },
            {
                "name": "SERVICE_ACCOUNT",
                "valueFrom": {
                    "fieldRef": {"apiVersion": "v1", "fieldPath": "spec.serviceAccountName"}
                },
            },
            {
                "name": "HOST_IP",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.hostIP"}},
            },
            {
                "name": "ISTIO_CPUSET",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "0"}},
            },
            {"name": "PROXY_CONFIG", "value": "{}\n"},
            {
                "name": "ISTIO_META_POD_PORTS",
                "value": '[\n    {"name":"http","containerPort":8080,"protocol":"TCP"}\n]',
            },
            {"name": "ISTIO_META_APP_CONTAINERS", "value": "app"},
            {
                "name": "GOMEMLIMIT",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "0"}},
            },
            {
                "name": "GOMAXPROCS",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "0"}},
            },
            {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"},
            {
                "name": "ISTIO_META_NODE_NAME",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}},
            },
            {"name": "ISTIO_META_INTERCEPTION_MODE", "value": "REDIRECT"},
            {"name": "ISTIO_META_MESH_ID", "value": "cluster.local"},
            {"name": "TRUST_DOMAIN", "value": "cluster.local"},
        ],
        "resources": {
            "limits": {"cpu": "2", "memory": "1Gi"},
            "requests": {"cpu": "100m", "memory": "128Mi"},
        },
        "volumeMounts": [
            {"name": "workload-socket", "mountPath": "/var/run/secrets/workload-spiffe-uds"},
            {"name": "credential-socket", "mountPath": "/var/run/secrets/credential-uds"},
            {"name": "workload-certs", "mountPath": "/var/run/secrets/workload-spiffe-credentials"},
            {"name": "istiod-ca-cert", "mountPath": "/var/run/secrets/istio"},
            {"name": "istio-data", "mountPath": "/var/lib/istio/data"},
            {"name": "istio-envoy", "mountPath": "/etc/istio/proxy"},
            {"name": "istio-token", "mountPath": "/var/run/secrets/tokens"},
            {"name": "istio-podinfo", "mountPath": "/etc/istio/pod"},
            _token_mount(),
        ],
        "readinessProbe": {
            "httpGet": {"path": "/healthz/ready", "port": 15021, "scheme": "HTTP"},
            "initialDelaySeconds": 1,
            "timeoutSeconds": 3,
            "periodSeconds": 2,
            "successThreshold": 1,
            "failureThreshold": 30,
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "runAsUser": 1337,
            "runAsGroup": 1337,
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
        },
    }


def _fields_v1_container(name: str) -> Body:
    return {
        f'k:{{"name":"{name}"}}': {
            ".": {},
            "f:env": {".": {}, 'k:{"name":"LOG_LEVEL"}': {".": {}, "f:name": {}, "f:value": {}}},
            "f:image": {},
            "f:imagePullPolicy": {},
            "f:livenessProbe": {".": {}, "f:httpGet": {".": {}, "f:path": {}, "f:port": {}}},
            "f:name": {},
            "f:ports": {".": {}, 'k:{"containerPort":8080,"protocol":"TCP"}': {".": {}}},
            "f:readinessProbe": {".": {}, "f:httpGet": {".": {}, "f:path": {}, "f:port": {}}},
            "f:resources": {".": {}, "f:limits": {".": {}, "f:cpu": {}, "f:memory": {}}},
            "f:securityContext": {".": {}, "f:allowPrivilegeEscalation": {}},
            "f:terminationMessagePath": {},
            "f:terminationMessagePolicy": {},
        }
    }


def app_container(app: App, *, privileged: bool = False, mounts: list[Body] | None = None) -> Body:
    security: Body = (
        {"privileged": True}
        if privileged
        else {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
        }
    )
    c: Body = {
        "name": app.name,
        "image": app.image,
        "ports": [{"name": "http", "containerPort": app.port, "protocol": "TCP"}],
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}},
            },
            {
                "name": "DB_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": f"{app.name}-db", "key": "password"}},
            },
        ],
        "resources": {
            "limits": {"cpu": "1", "memory": "512Mi"},
            "requests": {"cpu": "100m", "memory": "128Mi"},
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": app.port, "scheme": "HTTP"},
            "initialDelaySeconds": 10,
            "timeoutSeconds": 1,
            "periodSeconds": 10,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": app.port, "scheme": "HTTP"},
            "timeoutSeconds": 1,
            "periodSeconds": 5,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        "securityContext": security,
    }
    if mounts:
        c["volumeMounts"] = mounts
    return c


class AppBodies:
    """The parts of an app's Pod and Deployment bodies that every event of the app shares."""

    __slots__ = (
        "app",
        "container",
        "fields",
        "injected",
        "labels",
        "request_spec",
        "response_spec",
        "template",
    )

    def __init__(self, app: App) -> None:
        self.app = app
        self.labels = {"app": app.name, "pod-template-hash": app.rs_hash}
        self.container = app_container(app)
        self.request_spec: Body = {
            "containers": [self.container],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": app.name,
            "securityContext": {"runAsUser": 10001, "fsGroup": 10001},
            "schedulerName": "default-scheduler",
        }
        self.injected = app.namespace in MESHED
        self.response_spec = _defaulted_spec(
            self.request_spec, app_container(app, mounts=[_token_mount()]), self.injected
        )
        self.fields = {
            "f:metadata": {
                "f:generateName": {},
                "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}},
                "f:ownerReferences": {".": {}, f'k:{{"uid":"{app.rs_uid}"}}': {}},
            },
            "f:spec": {
                "f:containers": _fields_v1_container(app.name),
                "f:dnsPolicy": {},
                "f:enableServiceLinks": {},
                "f:restartPolicy": {},
                "f:schedulerName": {},
                "f:securityContext": {".": {}, "f:fsGroup": {}, "f:runAsUser": {}},
                "f:serviceAccount": {},
                "f:serviceAccountName": {},
                "f:terminationGracePeriodSeconds": {},
            },
        }
        self.template = {
            "metadata": {"creationTimestamp": None, "labels": {"app": app.name}},
            "spec": self.request_spec,
        }

    def owner(self) -> list[Body]:
        return [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": f"{self.app.name}-{self.app.rs_hash}",
                "uid": self.app.rs_uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]

    def pod_request(self) -> Body:
        return {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "generateName": f"{self.app.name}-{self.app.rs_hash}-",
                "creationTimestamp": None,
                "labels": self.labels,
                "ownerReferences": self.owner(),
            },
            "spec": self.request_spec,
            "status": {},
        }

    def pod_response(self, name: str, uid: str, rv: str, created: str, micro: str) -> Body:
        return {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "generateName": f"{self.app.name}-{self.app.rs_hash}-",
                "namespace": self.app.namespace,
                "uid": uid,
                "resourceVersion": rv,
                "creationTimestamp": created,
                "labels": self.labels,
                "ownerReferences": self.owner(),
                "managedFields": [_managed("kube-controller-manager", "v1", created, self.fields)],
            },
            "spec": self.response_spec,
            "status": {"phase": "Pending", "qosClass": "Burstable"},
        }

    def deployment(
        self, rv: str, created: str, generation: int, replicas: int, restarted: str | None
    ) -> Body:
        template = self.template
        if restarted is not None:
            template = {
                "metadata": {
                    "creationTimestamp": None,
                    "labels": {"app": self.app.name},
                    "annotations": {"kubectl.kubernetes.io/restartedAt": restarted},
                },
                "spec": self.request_spec,
            }
        return {
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {
                "name": self.app.name,
                "namespace": self.app.namespace,
                "uid": self.app.uid,
                "resourceVersion": rv,
                "generation": generation,
                "creationTimestamp": created,
                "labels": {"app": self.app.name, "app.kubernetes.io/managed-by": "argocd"},
                "annotations": {"deployment.kubernetes.io/revision": str(generation)},
                "managedFields": [
                    _managed(
                        "argocd-controller",
                        "apps/v1",
                        created,
                        {
                            "f:spec": {
                                "f:replicas": {},
                                "f:selector": {},
                                "f:template": {"f:spec": self.fields["f:spec"]},
                            }
                        },
                    )
                ],
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": self.app.name}},
                "template": template,
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                },
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
            },
            "status": {
                "observedGeneration": generation - 1,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True",
                        "lastUpdateTime": created,
                        "lastTransitionTime": created,
                        "reason": "MinimumReplicasAvailable",
                        "message": "Deployment has minimum availability.",
                    }
                ],
            },
        }


def _token_mount() -> Body:
    return {
        "name": "kube-api-access",
        "readOnly": True,
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
    }


def _defaulted_spec(spec: Body, container: Body, meshed: bool) -> Body:
    out = dict(spec)
    out["volumes"] = [
        {
            "name": "kube-api-access",
            "projected": {
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {
                                        "apiVersion": "v1",
                                        "fieldPath": "metadata.namespace",
                                    },
                                }
                            ]
                        }
                    },
                ],
                "defaultMode": 420,
            },
        }
    ]
    out["containers"] = [container, _istio_proxy()] if meshed else [container]
    out["serviceAccount"] = spec.get("serviceAccountName", "default")
    out["tolerations"] = [
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ]
    out["priority"] = 0
    out["enableServiceLinks"] = True
    out["preemptionPolicy"] = "PreemptLowerPriority"
    return out


def _managed(
    manager: str, api_version: str, time: str, fields: Body, operation: str = "Update"
) -> Body:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }


def attack_pod(
    name: str,
    namespace: str,
    image: str,
    *,
    privileged: bool,
    host_path: str | None,
    node: str | None,
) -> Body:
    """A pod an attacker creates by hand: privileged and/or with the host's filesystem mounted."""
    container: Body = {"name": "shell", "image": image, "command": ["sleep", "infinity"]}
    spec: Body = {"containers": [container]}
    if privileged:
        container["securityContext"] = {"privileged": True}
        spec["hostPID"] = True
        spec["hostNetwork"] = True
    if host_path is not None:
        container["volumeMounts"] = [{"name": "host", "mountPath": "/host"}]
        spec["volumes"] = [{"name": "host", "hostPath": {"path": host_path, "type": ""}}]
    if node is not None:
        spec["nodeName"] = node
    container["stdin"] = True
    container["tty"] = True
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
        "spec": spec,
        "status": {},
    }


def stored(body: Body, uid: str, rv: str, created: str, manager: str) -> Body:
    """The stored form of a created object: server-set metadata and a managed-fields entry."""
    md = dict(body["metadata"])
    md["uid"] = uid
    md["resourceVersion"] = rv
    md["creationTimestamp"] = created
    md["managedFields"] = [
        _managed(
            manager, str(body["apiVersion"]), created, {"f:metadata": {"f:name": {}}, "f:spec": {}}
        )
    ]
    out = dict(body)
    out["metadata"] = md
    return out


# ---------------------------------------------------------------------------------------------
# RBAC, Secrets, ConfigMaps

RBAC_V1 = "rbac.authorization.k8s.io/v1"


def role(name: str, namespace: str | None, rules: list[Body]) -> Body:
    kind = "Role" if namespace else "ClusterRole"
    md: Body = {"name": name}
    if namespace:
        md["namespace"] = namespace
    md["creationTimestamp"] = None
    return {"kind": kind, "apiVersion": RBAC_V1, "metadata": md, "rules": rules}


def binding(
    name: str, namespace: str | None, role_kind: str, role_name: str, subjects: list[Body]
) -> Body:
    kind = "RoleBinding" if namespace else "ClusterRoleBinding"
    md: Body = {"name": name}
    if namespace:
        md["namespace"] = namespace
    md["creationTimestamp"] = None
    return {
        "kind": kind,
        "apiVersion": RBAC_V1,
        "metadata": md,
        "subjects": subjects,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
    }


def subject_user(name: str) -> Body:
    return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def subject_sa(name: str, namespace: str) -> Body:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def secret(
    rng: random.Random, name: str, namespace: str, keys: tuple[str, ...], *, request: bool
) -> Body:
    md: Body = {"name": name, "namespace": namespace}
    if request:
        md["creationTimestamp"] = None
    return {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": md,
        "data": {k: b64(rng, 12 if k != "tls.key" else 96) for k in keys},
        "type": "kubernetes.io/tls" if "tls.key" in keys else "Opaque",
    }


def secret_list(rng: random.Random, namespace: str | None, names: list[str], rv: str) -> Body:
    items = []
    for name in names:
        s = secret(rng, name, namespace or "default", ("username", "password"), request=False)
        items.append(s)
    for item in items:  # list items carry no kind/apiVersion
        del item["kind"]
        del item["apiVersion"]
    return {
        "kind": "SecretList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": rv},
        "items": items,
    }


def configmap(name: str, namespace: str, data: dict[str, str]) -> Body:
    return {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
        "data": data,
    }


def endpointslice(app: App, name: str, ips: list[str], uid: str, rv: str, created: str) -> Body:
    return {
        "kind": "EndpointSlice",
        "apiVersion": "discovery.k8s.io/v1",
        "metadata": {
            "name": name,
            "generateName": f"{app.name}-",
            "namespace": app.namespace,
            "uid": uid,
            "resourceVersion": rv,
            "generation": 1,
            "creationTimestamp": created,
            "labels": {
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                "kubernetes.io/service-name": app.name,
            },
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "name": app.name,
                    "uid": app.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [ip],
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "targetRef": {"kind": "Pod", "namespace": app.namespace, "name": f"{app.name}-{i}"},
            }
            for i, ip in enumerate(ips)
        ],
        "ports": [{"name": "http", "protocol": "TCP", "port": app.port}],
    }


def replicaset(bodies: AppBodies, rv: str, created: str, replicas: int, ready: int) -> Body:
    app = bodies.app
    return {
        "kind": "ReplicaSet",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": f"{app.name}-{app.rs_hash}",
            "namespace": app.namespace,
            "uid": app.rs_uid,
            "resourceVersion": rv,
            "generation": 1,
            "creationTimestamp": created,
            "labels": bodies.labels,
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": str(replicas),
                "deployment.kubernetes.io/max-replicas": str(replicas + 1),
                "deployment.kubernetes.io/revision": "7",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": app.name,
                    "uid": app.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": bodies.labels},
            "template": bodies.template,
        },
        "status": {
            "replicas": replicas,
            "fullyLabeledReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": 1,
        },
    }


def pod_status_patch(pod_uid: str, container: str, ready: bool, now: str) -> Body:
    """The strategic-merge patch the kubelet sends for `pods/status`."""
    flag = "True" if ready else "False"
    return {
        "metadata": {"uid": pod_uid},
        "status": {
            "$setElementOrder/conditions": [
                {"type": "PodReadyToStartContainers"},
                {"type": "Initialized"},
                {"type": "Ready"},
                {"type": "ContainersReady"},
                {"type": "PodScheduled"},
            ],
            "conditions": [
                {"lastTransitionTime": now, "status": flag, "type": "Ready"},
                {"lastTransitionTime": now, "status": flag, "type": "ContainersReady"},
            ],
            "containerStatuses": [
                {
                    "containerID": "containerd://" + pod_uid.replace("-", "") * 2,
                    "image": container,
                    "lastState": {},
                    "name": container.rsplit("/", 1)[-1].split(":")[0],
                    "ready": ready,
                    "restartCount": 0,
                    "started": True,
                    "state": {"running": {"startedAt": now}},
                }
            ],
        },
    }
