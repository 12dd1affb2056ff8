"""One sample cluster drawn from a seed: nodes, pods and the identities that call the apiserver.

The `user` objects built here are what kube-apiserver's authenticators put into audit events:
x509 users (components, kubelets, kubeadm's admin) have no `uid`; bound service-account tokens
carry `user.extra` with the credential ID and, when bound to a pod, the pod and node (spec §10).
They are shared by every event of the identity and must be treated as read-only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from kaudit.sample import tables
from kaudit.sample.ids import name_suffix, uuid4

ALLOW = "allow"


def allow(reason: str) -> dict[str, str]:
    """The authorization annotations of an allowed request (keys sorted, as Go writes maps)."""
    return {"authorization.k8s.io/decision": ALLOW, "authorization.k8s.io/reason": reason}


@dataclass(frozen=True, slots=True, eq=False)
class Identity:
    """Who calls: the audit `user` object, `sourceIPs`, user agent and the RBAC reason."""

    user: dict[str, Any]
    ips: list[str]
    agent: str
    reason: str
    ann: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ann", allow(self.reason))

    @property
    def name(self) -> str:
        return str(self.user.get("username", ""))


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    name: str
    ip: str
    uid: str
    lease_uid: str
    kubelet: Identity


@dataclass(frozen=True, slots=True, eq=False)
class App:
    namespace: str
    name: str
    image: str
    port: int
    uid: str  # the Deployment's UID
    rs_hash: str  # pod-template-hash of the current ReplicaSet
    rs_uid: str


@dataclass(frozen=True, slots=True, eq=False)
class Pod:
    app: App
    name: str
    uid: str
    ip: str
    node: Node

    @property
    def namespace(self) -> str:
        return self.app.namespace


@dataclass(frozen=True, slots=True, eq=False)
class Cluster:
    masters: tuple[Node, ...]
    workers: tuple[Node, ...]
    apps: tuple[App, ...]
    pods: tuple[Pod, ...]
    kcm: tuple[Identity, ...]  # kube-controller-manager on each master; [0] is the leader
    scheduler: tuple[Identity, ...]
    apiserver: Identity
    apiserver_lease_ids: tuple[str, ...]
    controllers: dict[str, Identity]  # controller name -> its service account via the leader kcm
    workloads: tuple[Identity, ...]  # in-cluster service accounts, one identity per pod
    humans: tuple[Identity, ...]  # people on the VPN
    humans_public: tuple[Identity, ...]  # the same people from the office's public address
    anonymous_probe: tuple[Identity, ...]  # kubelet/LB health probes: system:anonymous
    sa_uids: dict[str, str]  # "ns/name" -> service account UID


def _sa_user(ns: str, name: str, uid: str, extra: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "username": f"system:serviceaccount:{ns}:{name}",
        "uid": uid,
        "groups": [
            "system:serviceaccounts",
            f"system:serviceaccounts:{ns}",
            "system:authenticated",
        ],
        "extra": extra,
    }


def _sa_reason(kind: str, binding: str, role: str, ns: str, name: str) -> str:
    # rbac describeSubject: ServiceAccount "name/namespace"
    return (
        f'RBAC: allowed by {kind} "{binding}" of ClusterRole "{role}" '
        f'to ServiceAccount "{name}/{ns}"'
    )


def build_cluster(rng: random.Random, n_workers: int = 60) -> Cluster:
    """Draws a cluster: 3 control-plane nodes, `n_workers` workers, the apps' pods, identities."""
    masters = tuple(_node(rng, f"master-{i:02d}", f"192.168.0.{10 + i}") for i in (1, 2, 3))
    workers = tuple(
        _node(rng, f"node-{i:03d}", f"192.168.{1 + (i - 1) // 200}.{10 + (i - 1) % 200}")
        for i in range(1, n_workers + 1)
    )
    apps = tuple(
        App(ns, name, image, port, uuid4(rng), name_suffix(rng, 10), uuid4(rng))
        for ns, name, image, port in tables.APPS
    )
    pods: list[Pod] = []
    pod_ip_next: dict[str, int] = {}
    for app in apps:
        for _ in range(rng.randint(1, 4)):
            node = rng.choice(workers)
            pods.append(
                _pod(
                    rng,
                    app,
                    f"{app.name}-{app.rs_hash}-{name_suffix(rng, 5)}",
                    node,
                    pod_ip_next,
                    workers,
                )
            )

    sa_uids: dict[str, str] = {}

    def sa_uid(ns: str, name: str) -> str:
        key = f"{ns}/{name}"
        if key not in sa_uids:
            sa_uids[key] = uuid4(rng)
        return sa_uids[key]

    kcm = tuple(
        Identity(
            {"username": "system:kube-controller-manager", "groups": ["system:authenticated"]},
            [m.ip],
            tables.KCM_UA + "/leader-election",
            'RBAC: allowed by ClusterRoleBinding "system:kube-controller-manager" of ClusterRole '
            '"system:kube-controller-manager" to User "system:kube-controller-manager"',
        )
        for m in masters
    )
    scheduler = tuple(
        Identity(
            {"username": "system:kube-scheduler", "groups": ["system:authenticated"]},
            [m.ip],
            tables.SCHED_UA + "/leader-election",
            'RBAC: allowed by ClusterRoleBinding "system:kube-scheduler" of ClusterRole '
            '"system:kube-scheduler" to User "system:kube-scheduler"',
        )
        for m in masters
    )
    apiserver = Identity(
        {"username": "system:apiserver", "uid": uuid4(rng), "groups": ["system:masters"]},
        ["::1"],
        tables.APISERVER_UA,
        "",  # system:masters is allowed by the privileged-group authorizer, which gives no reason
    )
    leader = masters[0]
    controllers = {
        c: Identity(
            _sa_user(
                "kube-system",
                c,
                sa_uid("kube-system", c),
                {"authentication.kubernetes.io/credential-id": [f"JTI={uuid4(rng)}"]},
            ),
            [leader.ip],
            f"{tables.KCM_UA}/system:serviceaccount:kube-system:{c}",
            _sa_reason(
                "ClusterRoleBinding",
                f"system:controller:{c}",
                f"system:controller:{c}",
                "kube-system",
                c,
            ),
        )
        for c in tables.CONTROLLERS
    }
    workloads: list[Identity] = []
    for ns, sa, agent, host_network in tables.IN_CLUSTER_SAS:
        uid = sa_uid(ns, sa)
        nodes = workers if host_network else tuple(rng.sample(workers, min(2, len(workers))))
        for node in nodes:
            pod_name = f"{sa}-{name_suffix(rng, 5)}"
            ip = node.ip if host_network else _next_pod_ip(node, pod_ip_next, workers)
            extra = {
                "authentication.kubernetes.io/credential-id": [f"JTI={uuid4(rng)}"],
                "authentication.kubernetes.io/node-name": [node.name],
                "authentication.kubernetes.io/node-uid": [node.uid],
                "authentication.kubernetes.io/pod-name": [pod_name],
                "authentication.kubernetes.io/pod-uid": [uuid4(rng)],
            }
            workloads.append(
                Identity(
                    _sa_user(ns, sa, uid, extra),
                    [ip],
                    agent,
                    _sa_reason("ClusterRoleBinding", sa, sa, ns, sa),
                )
            )
    humans: list[Identity] = []
    humans_public: list[Identity] = []
    for i, (username, groups, reason) in enumerate(tables.HUMANS):
        user = {"username": username, "groups": list(groups)}
        agent = tables.KUBECTL_UAS[i % len(tables.KUBECTL_UAS)]
        humans.append(Identity(user, [f"10.8.0.{20 + i}"], agent, reason))
        office = tables.CN_OFFICE_IPS[i % len(tables.CN_OFFICE_IPS)]
        # Through the office's load balancer: X-Forwarded-For first, then the LB's address.
        ips = [office, "192.168.0.250"] if i % 2 else [office]
        humans_public.append(Identity(user, ips, agent, reason))
    anonymous = tuple(
        Identity(
            {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
            [m.ip],
            f"kube-probe/{tables.K8S_VERSION[1:5]}",
            'RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole '
            '"system:public-info-viewer" to Group "system:unauthenticated"',
        )
        for m in masters
    )
    return Cluster(
        masters=masters,
        workers=workers,
        apps=apps,
        pods=tuple(pods),
        kcm=kcm,
        scheduler=scheduler,
        apiserver=apiserver,
        apiserver_lease_ids=tuple(f"apiserver-{name_suffix(rng, 26)}" for _ in masters),
        controllers=controllers,
        workloads=tuple(workloads),
        humans=tuple(humans),
        humans_public=tuple(humans_public),
        anonymous_probe=anonymous,
        sa_uids=sa_uids,
    )


def _node(rng: random.Random, name: str, ip: str) -> Node:
    kubelet = Identity(
        {"username": f"system:node:{name}", "groups": ["system:nodes", "system:authenticated"]},
        [ip],
        tables.KUBELET_UA,
        "",  # the Node authorizer allows without a reason
    )
    return Node(name, ip, uuid4(rng), uuid4(rng), kubelet)


def _next_pod_ip(node: Node, counters: dict[str, int], workers: tuple[Node, ...]) -> str:
    n = counters.get(node.name, 2)
    counters[node.name] = n + 1
    index = workers.index(node)
    return f"10.244.{index}.{n % 250 + 2}"


def _pod(
    rng: random.Random,
    app: App,
    name: str,
    node: Node,
    counters: dict[str, int],
    workers: tuple[Node, ...],
) -> Pod:
    return Pod(app, name, uuid4(rng), _next_pod_ip(node, counters, workers), node)
