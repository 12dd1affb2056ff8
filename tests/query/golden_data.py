"""The events the golden query files run on: a small cluster's day with one of each kind of
activity the ACK audit-center templates and the brief's alerts look for."""

from __future__ import annotations

from typing import Any

from .conftest import event

RB_ALICE = 'RBAC: allowed by RoleBinding "ops/prod" of ClusterRole "admin" to User "alice"'
EXEC = (
    "/api/v1/namespaces/prod/pods/web-1/exec?command=sh&command=-c&command=cat%20%2Fetc%2Fshadow"
    "&container=web&stdin=true"
)


def golden_events() -> list[dict[str, Any]]:
    ev = [
        # deletions: by humans (alert) and by system identities (ignored by the template)
        event(
            1,
            verb="delete",
            user="alice",
            resource="deployments",
            name="web",
            namespace="prod",
            ips=("47.100.1.2",),
            uri="/apis/apps/v1/namespaces/prod/deployments/web",
            request_object={"kind": "DeleteOptions", "apiVersion": "v1"},
        ),
        event(
            2,
            verb="delete",
            user="system:serviceaccount:kube-system:generic-garbage-collector",
            resource="pods",
            name="web-1-abc",
        ),
        event(3, verb="delete", user="system:node:worker-1", resource="pods", name="web-1-def"),
        event(
            4,
            verb="delete",
            user="kubernetes-admin",
            resource="configmaps",
            name="cfg",
            namespace="prod",
            reason=RB_ALICE,
            ips=("8.8.4.4", "10.0.0.7"),
        ),
        # node label and taint changes by a human
        event(
            5,
            verb="patch",
            user="bob",
            resource="nodes",
            name="worker-2",
            namespace=None,
            uri="/api/v1/nodes/worker-2",
            ips=("10.0.0.8",),
            request_object={"metadata": {"labels": {"disk": "ssd"}}},
        ),
        event(
            6,
            verb="patch",
            user="bob",
            resource="nodes",
            name="worker-2",
            namespace=None,
            uri="/api/v1/nodes/worker-2?fieldManager=kubectl",
            ips=("10.0.0.8",),
            request_object={"metadata": {"labels": {"disk": None}}},
        ),
        event(
            7,
            verb="update",
            user="carol",
            resource="nodes",
            name="worker-3",
            namespace=None,
            uri="/api/v1/nodes/worker-3",
            ips=("10.0.0.9",),
            request_object={
                "kind": "Node",
                "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]},
            },
        ),
        event(
            8,
            verb="update",
            user="system:node:worker-3",
            resource="nodes",
            name="worker-3",
            namespace=None,
            uri="/api/v1/nodes/worker-3/status",
        ),
        event(
            9,
            verb="update",
            user="system:kube-controller-manager",
            resource="leases",
            name="kube-controller-manager",
            namespace="kube-system",
        ),
        # exec into a container (brief query A)
        event(
            10,
            verb="create",
            user="kubernetes-admin",
            resource="pods",
            name="web-1",
            namespace="prod",
            subresource="exec",
            stage="ResponseStarted",
            code=101,
            uri=EXEC,
            reason=RB_ALICE,
            ips=("47.100.1.2",),
        ),
        event(
            11,
            verb="create",
            user="dave",
            resource="pods",
            name="db-0",
            namespace="data",
            subresource="attach",
            stage="ResponseStarted",
            code=101,
            uri="/api/v1/namespaces/data/pods/db-0/attach?container=db&stdin=true",
        ),
        # secrets read by a human and by a controller
        event(
            12,
            verb="get",
            user="mallory",
            resource="secrets",
            name="db-password",
            namespace="data",
            ips=("121.40.77.3",),
        ),
        event(
            13,
            verb="list",
            user="system:serviceaccount:kube-system:helm",
            resource="secrets",
            name=None,
            namespace="kube-system",
        ),
        # anonymous access
        event(
            14,
            verb="get",
            user="system:anonymous",
            groups=("system:unauthenticated",),
            resource=None,
            uri="/version",
            code=403,
            ips=("185.220.101.7",),
        ),
        # RBAC change
        event(
            15,
            verb="create",
            user="mallory",
            resource="clusterrolebindings",
            name="pwn",
            namespace=None,
            ips=("121.40.77.3",),
            request_object={"kind": "ClusterRoleBinding", "roleRef": {"name": "cluster-admin"}},
        ),
        # privileged pod
        event(
            16,
            verb="create",
            user="mallory",
            resource="pods",
            name="priv",
            namespace="default",
            ips=("121.40.77.3",),
            request_object={
                "kind": "Pod",
                "spec": {"containers": [{"name": "c", "securityContext": {"privileged": True}}]},
            },
        ),
        # eviction (drain)
        event(
            17,
            verb="create",
            user="ops",
            resource="pods",
            name="web-2",
            namespace="prod",
            subresource="eviction",
            uri="/api/v1/namespaces/prod/pods/web-2/eviction",
        ),
        # an update of a namespaced object by a human (ACK _update counts it)
        event(
            18,
            verb="update",
            user="erin",
            resource="configmaps",
            name="app-config",
            namespace="prod",
            uri="/api/v1/namespaces/prod/configmaps/app-config",
        ),
    ]
    # a public IP hammering with 403s (brief query B), and a Tor exit with 401s
    for i in range(14):
        ev.append(
            event(
                100 + i,
                user="system:anonymous",
                resource="secrets",
                name=None,
                namespace="kube-system",
                ips=("8.8.4.4",),
                code=403 if i < 11 else 200,
                t=1_700_000_100 + i * 7,
            )
        )
    for i in range(12):
        ev.append(
            event(
                200 + i,
                user="admin",
                resource="pods",
                ips=("185.220.101.7",),
                code=401,
                agent="python-requests/2.31",
                t=1_700_000_300 + i * 13,
            )
        )
    # background reads by controllers across two hours
    for i in range(30):
        ev.append(
            event(
                300 + i,
                verb="list" if i % 3 else "watch",
                user="system:serviceaccount:kube-system:coredns",
                resource="endpoints",
                namespace="default",
                name=None,
                ips=("10.0.0.20",),
                t=1_700_000_000 + i * 240,
            )
        )
    return ev
