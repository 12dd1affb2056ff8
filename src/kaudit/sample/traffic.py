"""The everyday traffic of a cluster: control plane, kubelets, controllers' and workloads'
service accounts, and people.

Each scenario is one method that emits one request (or a short kubectl session) at time `t`.
`SCENARIOS` weighs them so that the mix matches real clusters (enrichment.md, "Traffic mix"):
leases get/update dominate, then reads and watches by components, discovery and health URLs;
people are a few per cent. The sample cluster's audit policy, which decides each level:

- Metadata for everything by default (leases, events, status writes, reads, non-resource URLs,
  Secrets and ConfigMaps read by components, token requests);
- RequestResponse for writes of workloads and RBAC objects, and for people's Secret and
  ConfigMap reads and writes (so that bodies with Secret `data` exist to be redacted);
- Request for people's other reads and for exec/attach/port-forward.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Callable
from typing import Any

from kaudit.sample import objects as obj
from kaudit.sample import tables
from kaudit.sample.cluster import App, Cluster, Identity, Node, Pod
from kaudit.sample.emitter import Emitter
from kaudit.sample.ids import name_suffix, uuid4

MD = "Metadata"
RQ = "Request"
RR = "RequestResponse"
MS = 1_000  # µs


def ref(
    resource: str,
    namespace: str | None = None,
    name: str | None = None,
    group: str = "",
    version: str = "v1",
    sub: str | None = None,
    uid: str | None = None,
    rv: str | None = None,
) -> dict[str, Any]:
    """An objectRef in the field order of audit/v1.ObjectReference (apiGroup "" is omitted)."""
    r: dict[str, Any] = {"resource": resource}
    if namespace:
        r["namespace"] = namespace
    if name:
        r["name"] = name
    if uid:
        r["uid"] = uid
    if group:
        r["apiGroup"] = group
    r["apiVersion"] = version
    if rv:
        r["resourceVersion"] = rv
    if sub:
        r["subresource"] = sub
    return r


def path(
    resource: str,
    namespace: str | None = None,
    name: str | None = None,
    group: str = "",
    version: str = "v1",
    sub: str | None = None,
) -> str:
    p = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace:
        p += f"/namespaces/{namespace}"
    p += f"/{resource}"
    if name:
        p += f"/{name}"
    if sub:
        p += f"/{sub}"
    return p


# (resource, apiGroup, namespaced) that components list and watch
WATCHED: tuple[tuple[str, str, bool], ...] = (
    ("pods", "", True),
    ("services", "", True),
    ("endpoints", "", True),
    ("endpointslices", "discovery.k8s.io", True),
    ("nodes", "", False),
    ("namespaces", "", False),
    ("configmaps", "", True),
    ("secrets", "", True),
    ("deployments", "apps", True),
    ("replicasets", "apps", True),
    ("ingresses", "networking.k8s.io", True),
    ("persistentvolumeclaims", "", True),
    ("serviceaccounts", "", True),
    ("jobs", "batch", True),
)


class Traffic:
    """Normal traffic scenarios over one cluster."""

    def __init__(self, rng: random.Random, cluster: Cluster, emitter: Emitter) -> None:
        self.rng = rng
        self.c = cluster
        self.e = emitter
        self.rv = 48_211_000 + rng.randrange(1_000_000)
        self.bodies = {app.uid: obj.AppBodies(app) for app in cluster.apps}
        self.pods = list(cluster.pods)
        self.node_index = {n.name: i for i, n in enumerate(cluster.workers)}
        self.ip_next: dict[str, int] = {}
        self.app_identities: dict[str, Identity] = {}
        self.scheduler_main = _with_agent(cluster.scheduler[0], tables.SCHED_UA + "/scheduler")
        self.kcm_informers = _with_agent(cluster.kcm[0], tables.KCM_UA + "/shared-informers")
        self.helm = _with_agent(cluster.humans[0], tables.HELM_UA)
        # Weights per request, tuned so that the output matches the mix of enrichment.md's
        # "Traffic mix" (tests/sample/test_mix.py checks the shares).
        table: list[tuple[float, Callable[[int], None]]] = [
            (3.0, self.kcm_lease_get),
            (1.6, self.kcm_lease_update),
            (2.4, self.sched_lease_get),
            (1.4, self.sched_lease_update),
            (1.5, self.apiserver_lease),
            (0.8, self.apiserver_misc),
            (1.0, self.sched_binding),
            (2.5, self.controller_discovery),
            (8.0, self.controller_work),
            (1.1, self.rs_create_pod),
            (0.6, self.rs_delete_pod),
            (2.5, self.events_create),
            (8.5, self.node_lease_update),
            (2.5, self.node_get),
            (1.5, self.node_status_patch),
            (2.6, self.kubelet_pod),
            (1.2, self.kubelet_token),
            (2.2, self.kubelet_secret),
            (3.0, self.workload_lease),
            (6.0, self.workload_read),
            (4.0, self.app_call),
            (1.5, self.workload_secret_read),
            (0.8, self.prometheus_metrics),
            (0.8, self.argocd_discovery),
            (0.8, self.argocd_patch),
            (4.0, self.component_watch),
            (0.12, self.health_probe),
            (1.7, self.human_session),
            (0.15, self.helm_release),
            (0.35, self.human_forbidden),
        ]
        total = 0.0
        self._cum: list[float] = []
        self._fns: list[Callable[[int], None]] = []
        for weight, fn in table:
            total += weight
            self._cum.append(total)
            self._fns.append(fn)
        self._total = total

    # -- helpers ------------------------------------------------------------------------------

    def pick(self) -> Callable[[int], None]:
        return self._fns[bisect.bisect_right(self._cum, self.rng.random() * self._total)]

    def next_rv(self) -> str:
        self.rv += 1 + int(self.rng.random() * 7)
        return str(self.rv)

    def pod(self) -> Pod:
        return self.pods[int(self.rng.random() * len(self.pods))]

    def latency(self, slow: bool = False) -> int:
        r = self.rng.random()
        base = 700 + int(r * r * (60_000 if slow else 12_000))
        return base

    def _lease(self, t: int, who: Identity, ns: str, name: str, verb: str, timeout: str) -> None:
        uri = f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}?timeout={timeout}"
        objref = ref("leases", ns, name, "coordination.k8s.io")
        if verb == "get":
            self.e.request(t, who, "get", uri, objref, MD, latency=self.latency())
            return
        done = ref(
            "leases", ns, name, "coordination.k8s.io", uid=_lease_uid(name), rv=self.next_rv()
        )
        r = self.rng.random()
        if r < 0.012:
            status = obj.conflict("leases", "coordination.k8s.io", name)
        elif r < 0.0135:
            status = obj.status(
                500, "InternalError", "Internal error occurred: etcdserver: request timed out", {}
            )
        else:
            status = obj.OK
        self.e.request(
            t,
            who,
            "update",
            uri,
            objref,
            MD,
            status=status,
            objref_done=done,
            latency=self.latency(),
        )

    # -- control plane ------------------------------------------------------------------------

    def kcm_lease_get(self, t: int) -> None:
        # leader renews (get+update) every 2 s; the two standbys try to acquire (get) as often
        who = self.c.kcm[int(self.rng.random() * 3)]
        self._lease(t, who, "kube-system", "kube-controller-manager", "get", "5s")

    def kcm_lease_update(self, t: int) -> None:
        self._lease(t, self.c.kcm[0], "kube-system", "kube-controller-manager", "update", "5s")

    def sched_lease_get(self, t: int) -> None:
        who = self.c.scheduler[int(self.rng.random() * 3)]
        self._lease(t, who, "kube-system", "kube-scheduler", "get", "5s")

    def sched_lease_update(self, t: int) -> None:
        self._lease(t, self.c.scheduler[0], "kube-system", "kube-scheduler", "update", "5s")

    def apiserver_lease(self, t: int) -> None:
        name = self.rng.choice(self.c.apiserver_lease_ids)
        verb = "get" if self.rng.random() < 0.5 else "update"
        self._lease(t, self.c.apiserver, "kube-system", name, verb, "10s")

    def apiserver_misc(self, t: int) -> None:
        who = self.c.apiserver
        r = self.rng.random()
        if r < 0.4:
            self.e.request(
                t, who, "get", "/api/v1/namespaces/default", ref("namespaces", name="default"), MD
            )
        elif r < 0.7:
            self.e.request(
                t,
                who,
                "get",
                "/api/v1/namespaces/default/services/kubernetes",
                ref("services", "default", "kubernetes"),
                MD,
            )
        else:
            self.e.request(
                t,
                who,
                "get",
                "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes",
                ref("endpointslices", "default", "kubernetes", "discovery.k8s.io"),
                MD,
            )

    def sched_binding(self, t: int) -> None:
        pod = self.pod()
        uri = path("pods", pod.namespace, pod.name, sub="binding")
        self.e.request(
            t,
            self.scheduler_main,
            "create",
            uri,
            ref("pods", pod.namespace, pod.name, sub="binding"),
            MD,
            status=obj.CREATED,
            objref_done=ref("pods", pod.namespace, pod.name, sub="binding", uid=pod.uid),
        )

    def controller_discovery(self, t: int) -> None:
        # the garbage collector and quota controllers re-run discovery every 30 s
        name = (
            "generic-garbage-collector" if self.rng.random() < 0.55 else "resourcequota-controller"
        )
        who = self.c.controllers[name]
        uri = "/api" if self.rng.random() < 0.3 else "/apis"
        self.e.request(t, who, "get", uri, None, MD)

    def controller_work(self, t: int) -> None:
        rng = self.rng
        r = rng.random()
        ctl = self.c.controllers
        pod = self.pod()
        ns = pod.namespace
        app = pod.app
        bodies = self.bodies[app.uid]
        created = self.e.ts.seconds(t - 86_400_000_000 * 9)
        if r < 0.22:
            name = f"{app.name}-{app.rs_hash[:5]}"
            ips = [p.ip for p in self.pods if p.app is app][:6] or [pod.ip]
            uid = _stable_uid(ns, name)

            def es(rv: str) -> dict[str, Any]:
                return obj.endpointslice(app, name, ips, uid, rv, created)

            self._write(
                t,
                ctl["endpointslice-controller"],
                "endpointslices",
                ns,
                name,
                "discovery.k8s.io",
                body=es,
            )
        elif r < 0.34:
            self._write(t, ctl["endpoint-controller"], "endpoints", ns, app.name, "")
        elif r < 0.44:
            replicas = 3

            def rs(rv: str) -> dict[str, Any]:
                return obj.replicaset(bodies, rv, created, replicas, 2)

            self._write(
                t,
                ctl["replicaset-controller"],
                "replicasets",
                ns,
                f"{app.name}-{app.rs_hash}",
                "apps",
                sub="status",
                body=rs,
            )
        elif r < 0.52:

            def dep(rv: str) -> dict[str, Any]:
                return bodies.deployment(rv, created, 7, 3, None)

            self._write(
                t,
                ctl["deployment-controller"],
                "deployments",
                ns,
                app.name,
                "apps",
                sub="status",
                body=dep,
            )
        elif r < 0.68:
            who = ctl["generic-garbage-collector"]
            if rng.random() < 0.3:
                gone = f"{app.name}-{app.rs_hash}-{_suffix(rng)}"
                uri = path("pods", ns, gone)
                self.e.request(
                    t,
                    who,
                    "get",
                    uri,
                    ref("pods", ns, gone),
                    MD,
                    status=obj.not_found("pods", "", gone),
                )
            else:
                res, group, _ = WATCHED[int(rng.random() * len(WATCHED))]
                uri = path(res, group=group, version="v1") + "?limit=500&resourceVersion=0"
                self.e.request(
                    t, who, "list", uri, ref(res, group=group), MD, latency=self.latency(True)
                )
        elif r < 0.75:
            who = ctl["resourcequota-controller"]
            self.e.request(
                t,
                who,
                "list",
                f"/api/v1/namespaces/{ns}/resourcequotas",
                ref("resourcequotas", ns),
                MD,
            )
        elif r < 0.83:
            who = ctl["node-controller"]
            node = self.c.workers[int(rng.random() * len(self.c.workers))]
            self.e.request(
                t, who, "get", f"/api/v1/nodes/{node.name}", ref("nodes", name=node.name), MD
            )
        elif r < 0.88:
            who = ctl["cronjob-controller"]
            self.e.request(
                t, who, "list", "/apis/batch/v1/jobs?limit=500", ref("jobs", group="batch"), MD
            )
        elif r < 0.93:
            who = ctl["horizontal-pod-autoscaler"]
            self.e.request(
                t,
                who,
                "get",
                path("deployments", ns, app.name, "apps", sub="scale"),
                ref("deployments", ns, app.name, "apps", sub="scale"),
                MD,
            )
        elif r < 0.97:
            who = ctl["service-account-controller"]
            self.e.request(
                t,
                who,
                "get",
                path("serviceaccounts", ns, "default"),
                ref("serviceaccounts", ns, "default"),
                MD,
            )
        else:
            who = ctl["job-controller"]
            name = f"etl-nightly-{rng.randrange(28_000_000, 28_999_999)}"
            self._write(t, who, "jobs", "data", name, "batch", sub="status")

    def _write(
        self,
        t: int,
        who: Identity,
        res: str,
        ns: str,
        name: str,
        group: str,
        sub: str | None = None,
        body: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        """A controller's `update`: RequestResponse with the object when `body` makes it."""
        uri = path(res, ns, name, group, sub=sub)
        objref = ref(res, ns, name, group, sub=sub)
        rv = self.next_rv()
        level = MD if body is None else RR
        req = resp = None
        if self.rng.random() < 0.06:
            status = obj.conflict(res, group, name)
            done = objref
            if body is not None:
                req = body(str(int(rv) - 40))
        else:
            status = obj.OK
            done = ref(res, ns, name, group, sub=sub, uid=_stable_uid(ns, name), rv=rv)
            if body is not None:
                req = body(str(int(rv) - 40))
                resp = body(rv)
        self.e.request(
            t,
            who,
            "update",
            uri,
            objref,
            level,
            status=status,
            objref_done=done,
            req_obj=req,
            resp_obj=resp,
            latency=self.latency(),
        )

    def rs_create_pod(self, t: int) -> None:
        # pods churn: the new pod replaces an old one of the same app, on a node of its own,
        # with a new address (which its service account then calls from)
        i = int(self.rng.random() * len(self.pods))
        app = self.pods[i].app
        bodies = self.bodies[app.uid]
        who = self.c.controllers["replicaset-controller"]
        name = f"{app.name}-{app.rs_hash}-{_suffix(self.rng)}"
        uid = _uid(self.rng)
        node = self.node()
        self.pods[i] = Pod(app, name, uid, self._pod_ip(node), node)
        rv = self.next_rv()
        created = self.e.ts.seconds(t)
        ann = {**who.ann}
        if bodies.injected:
            ann.update(obj.MESH_ANNOTATION)
        ann["pod-security.kubernetes.io/enforce-policy"] = "baseline:latest"
        self.e.request(
            t,
            who,
            "create",
            path("pods", app.namespace),
            ref("pods", app.namespace),
            RR,
            status=obj.CREATED,
            ann=ann,
            objref_done=ref("pods", app.namespace, name, uid=uid, rv=rv),
            req_obj=bodies.pod_request(),
            resp_obj=bodies.pod_response(name, uid, rv, created, self.e.ts(t)),
            latency=self.latency(True),
        )

    def rs_delete_pod(self, t: int) -> None:
        pod = self.pod()
        who = self.c.controllers["replicaset-controller"]
        uri = path("pods", pod.namespace, pod.name)
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": pod.uid}}
        self.e.request(
            t,
            who,
            "delete",
            uri,
            ref("pods", pod.namespace, pod.name),
            RR,
            req_obj=body,
            resp_obj=self.bodies[pod.app.uid].pod_response(
                pod.name,
                pod.uid,
                self.next_rv(),
                self.e.ts.seconds(t - 86_400_000_000),
                self.e.ts(t),
            ),
            objref_done=ref("pods", pod.namespace, pod.name, uid=pod.uid),
        )

    def events_create(self, t: int) -> None:
        r = self.rng.random()
        pod = self.pod()
        if r < 0.6:
            who = pod.node.kubelet
        elif r < 0.85:
            who = self.c.controllers["replicaset-controller"]
        else:
            who = self.scheduler_main
        name = f"{pod.name}.{self.rng.getrandbits(60):x}"
        uri = f"/apis/events.k8s.io/v1/namespaces/{pod.namespace}/events"
        self.e.request(
            t,
            who,
            "create",
            uri,
            ref("events", pod.namespace, group="events.k8s.io"),
            MD,
            status=obj.CREATED,
            objref_done=ref(
                "events",
                pod.namespace,
                name,
                "events.k8s.io",
                uid=_uid(self.rng),
                rv=self.next_rv(),
            ),
        )

    # -- kubelets ------------------------------------------------------------------------------

    def node(self) -> Node:
        return self.c.workers[int(self.rng.random() * len(self.c.workers))]

    def node_lease_update(self, t: int) -> None:
        node = self.node()
        uri = path("leases", "kube-node-lease", node.name, "coordination.k8s.io") + "?timeout=10s"
        objref = ref("leases", "kube-node-lease", node.name, "coordination.k8s.io")
        done = ref(
            "leases",
            "kube-node-lease",
            node.name,
            "coordination.k8s.io",
            uid=node.lease_uid,
            rv=self.next_rv(),
        )
        self.e.request(
            t, node.kubelet, "update", uri, objref, MD, objref_done=done, latency=self.latency()
        )

    def node_get(self, t: int) -> None:
        node = self.node()
        self.e.request(
            t,
            node.kubelet,
            "get",
            f"/api/v1/nodes/{node.name}?resourceVersion=0&timeout=10s",
            ref("nodes", name=node.name),
            MD,
        )

    def node_status_patch(self, t: int) -> None:
        node = self.node()
        done = ref("nodes", name=node.name, sub="status", uid=node.uid, rv=self.next_rv())
        self.e.request(
            t,
            node.kubelet,
            "patch",
            f"/api/v1/nodes/{node.name}/status?timeout=10s",
            ref("nodes", name=node.name, sub="status"),
            MD,
            objref_done=done,
        )

    def kubelet_pod(self, t: int) -> None:
        pod = self.pod()
        who = pod.node.kubelet
        if self.rng.random() < 0.55:
            rv = self.next_rv()
            done = ref("pods", pod.namespace, pod.name, sub="status", uid=pod.uid, rv=rv)
            now = self.e.ts.seconds(t)
            patch = obj.pod_status_patch(pod.uid, pod.app.image, self.rng.random() < 0.8, now)
            resp = self.bodies[pod.app.uid].pod_response(
                pod.name, pod.uid, rv, self.e.ts.seconds(t - 3_600_000_000), self.e.ts(t)
            )
            self.e.request(
                t,
                who,
                "patch",
                path("pods", pod.namespace, pod.name, sub="status"),
                ref("pods", pod.namespace, pod.name, sub="status"),
                RR,
                objref_done=done,
                req_obj=patch,
                resp_obj=resp,
            )
        else:
            self.e.request(
                t,
                who,
                "get",
                path("pods", pod.namespace, pod.name),
                ref("pods", pod.namespace, pod.name),
                MD,
            )

    def kubelet_token(self, t: int) -> None:
        # TokenRequest: logged at Metadata because the response carries a token
        pod = self.pod()
        sa = pod.app.name
        self.e.request(
            t,
            pod.node.kubelet,
            "create",
            path("serviceaccounts", pod.namespace, sa, sub="token"),
            ref("serviceaccounts", pod.namespace, sa, sub="token"),
            MD,
            status=obj.CREATED,
        )

    def kubelet_secret(self, t: int) -> None:
        # the kubelet reads the Secrets and ConfigMaps its pods mount
        pod = self.pod()
        who = pod.node.kubelet
        res = "secrets" if self.rng.random() < 0.6 else "configmaps"
        name = f"{pod.app.name}-db" if res == "secrets" else f"{pod.app.name}-config"
        ns = pod.namespace
        if self.rng.random() < 0.5:
            uri = path(res, ns, name) + "?resourceVersion=0"
            self.e.request(t, who, "get", uri, ref(res, ns, name), MD)
            return
        uri = (
            path(res, ns)
            + f"?allowWatchBookmarks=true&fieldSelector=metadata.name%3D{name}"
            + f"&resourceVersion={self.rv}&timeout=9m12s&timeoutSeconds=552&watch=true"
        )
        self.e.request(t, who, "watch", uri, ref(res, ns, name), MD, stream=552_000_000)

    def _pod_ip(self, node: Node) -> str:
        n = self.ip_next.get(node.name, 40)
        self.ip_next[node.name] = n + 1
        return f"10.244.{self.node_index[node.name]}.{n % 250 + 2}"

    def app_identity(self, pod: Pod) -> Identity:
        """The app's own service account, as the pod's bound token presents it."""
        who = self.app_identities.get(pod.uid)
        if who is None:
            if len(self.app_identities) > 20_000:
                self.app_identities.clear()
            app = pod.app
            extra = {
                "authentication.kubernetes.io/credential-id": [f"JTI={_uid(self.rng)}"],
                "authentication.kubernetes.io/node-name": [pod.node.name],
                "authentication.kubernetes.io/node-uid": [pod.node.uid],
                "authentication.kubernetes.io/pod-name": [pod.name],
                "authentication.kubernetes.io/pod-uid": [pod.uid],
            }
            user = {
                "username": f"system:serviceaccount:{app.namespace}:{app.name}",
                "uid": _stable_uid(app.namespace, "sa-" + app.name),
                "groups": [
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{app.namespace}",
                    "system:authenticated",
                ],
                "extra": extra,
            }
            reason = (
                f'RBAC: allowed by RoleBinding "{app.name}/{app.namespace}" of Role '
                f'"{app.name}" to ServiceAccount "{app.name}/{app.namespace}"'
            )
            agent = f"{app.name}/v0.0.0 (linux/amd64) kubernetes/$Format"
            who = Identity(user, [pod.ip], agent, reason)
            self.app_identities[pod.uid] = who
        return who

    def app_call(self, t: int) -> None:
        """Applications using their own service account: config, peers, leader election."""
        pod = self.pod()
        app = pod.app
        who = self.app_identity(pod)
        ns = app.namespace
        r = self.rng.random()
        if r < 0.4:
            name = f"{app.name}-config"
            status = obj.OK if self.rng.random() < 0.85 else obj.not_found("configmaps", "", name)
            self.e.request(
                t,
                who,
                "get",
                path("configmaps", ns, name),
                ref("configmaps", ns, name),
                MD,
                status=status,
            )
        elif r < 0.7:
            uri = path("pods", ns) + f"?labelSelector=app%3D{app.name}"
            self.e.request(t, who, "list", uri, ref("pods", ns), MD)
        else:
            verb = "get" if self.rng.random() < 0.5 else "update"
            self._lease(t, who, ns, f"{app.name}-leader", verb, "10s")

    # -- in-cluster service accounts -------------------------------------------------------------

    def _workload(self, sa: str | None = None) -> Identity:
        ws = self.c.workloads
        if sa is None:
            return ws[int(self.rng.random() * len(ws))]
        for _ in range(8):
            w = ws[int(self.rng.random() * len(ws))]
            if w.name.endswith(":" + sa):
                return w
        return next(w for w in ws if w.name.endswith(":" + sa))

    def workload_lease(self, t: int) -> None:
        r = self.rng.random()
        if r < 0.35:
            who, ns, name = self._workload("ingress-nginx"), "ingress-nginx", "ingress-nginx-leader"
        elif r < 0.65:
            who, ns, name = self._workload("cert-manager"), "kube-system", "cert-manager-controller"
        elif r < 0.85:
            who, ns, name = self._workload("calico-node"), "kube-system", "calico-ipam"
        else:
            who, ns, name = self._workload("metrics-server"), "kube-system", "metrics-server-leader"
        verb = "get" if self.rng.random() < 0.5 else "update"
        self._lease(t, who, ns, name, verb, "5s")

    def workload_read(self, t: int) -> None:
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            pod = self.pod()
            who = self._workload("fluent-bit")
            self.e.request(
                t,
                who,
                "get",
                path("pods", pod.namespace, pod.name),
                ref("pods", pod.namespace, pod.name),
                MD,
            )
        elif r < 0.6:
            who = self._workload("kube-state-metrics" if rng.random() < 0.5 else "prometheus-k8s")
            res, group, _ = WATCHED[int(rng.random() * 7)]
            uri = path(res, group=group) + "?limit=500&resourceVersion=0"
            self.e.request(
                t, who, "list", uri, ref(res, group=group), MD, latency=self.latency(True)
            )
        elif r < 0.8:
            who = self._workload("coredns")
            ns = rng.choice(tables.NAMESPACES)
            self.e.request(
                t,
                who,
                "list",
                path("endpointslices", ns, group="discovery.k8s.io") + "?limit=500",
                ref("endpointslices", ns, group="discovery.k8s.io"),
                MD,
            )
        else:
            pod = self.pod()
            who = self._workload()
            name = "kube-root-ca.crt" if rng.random() < 0.5 else f"{pod.app.name}-config"
            status = obj.OK if rng.random() < 0.9 else obj.not_found("configmaps", "", name)
            self.e.request(
                t,
                who,
                "get",
                path("configmaps", pod.namespace, name),
                ref("configmaps", pod.namespace, name),
                MD,
                status=status,
            )

    def workload_secret_read(self, t: int) -> None:
        who = self._workload("ingress-nginx" if self.rng.random() < 0.5 else "cert-manager")
        app = self.rng.choice(self.c.apps)
        name = f"{app.name}-tls"
        self.e.request(
            t,
            who,
            "get",
            path("secrets", app.namespace, name),
            ref("secrets", app.namespace, name),
            MD,
        )

    def prometheus_metrics(self, t: int) -> None:
        who = self._workload("prometheus-k8s")
        self.e.request(t, who, "get", "/metrics", None, MD, latency=self.latency(True))

    def argocd_discovery(self, t: int) -> None:
        who = self._workload("argocd-application-controller")
        uri = self.rng.choice(("/version", "/api?timeout=32s", "/apis?timeout=32s", "/openapi/v3"))
        self.e.request(t, who, "get", uri, None, MD)

    def argocd_patch(self, t: int) -> None:
        app = self.rng.choice(self.c.apps)
        who = self._workload("argocd-application-controller")
        replicas = self.rng.randint(2, 6)
        patch = {"spec": {"replicas": replicas}}
        rv = self.next_rv()
        body = self.bodies[app.uid].deployment(
            rv,
            self.e.ts.seconds(t - 3_600_000_000 * 24 * 30),
            self.rng.randint(3, 40),
            replicas,
            None,
        )
        self.e.request(
            t,
            who,
            "patch",
            path("deployments", app.namespace, app.name, "apps")
            + "?fieldManager=argocd-controller",
            ref("deployments", app.namespace, app.name, "apps"),
            RR,
            objref_done=ref("deployments", app.namespace, app.name, "apps", uid=app.uid, rv=rv),
            req_obj=patch,
            resp_obj=body,
            latency=self.latency(True),
        )

    def component_watch(self, t: int) -> None:
        rng = self.rng
        r = rng.random()
        res, group, _ = WATCHED[int(rng.random() * len(WATCHED))]
        if r < 0.25:
            who = self.c.apiserver
        elif r < 0.45:
            who = self.kcm_informers
        elif r < 0.55:
            who = self.scheduler_main
        elif r < 0.75:
            node = self.node()
            who = node.kubelet
            ns = rng.choice(tables.NAMESPACES)
            name = "kube-root-ca.crt"
            uri = (
                f"/api/v1/namespaces/{ns}/configmaps?allowWatchBookmarks=true"
                f"&fieldSelector=metadata.name%3D{name}"
                f"&resourceVersion={self.rv}&timeout=7m43s&timeoutSeconds=463&watch=true"
            )
            # the name attribute of a watch comes from the field selector (spec §5.1)
            self.e.request(
                t,
                who,
                "watch",
                uri,
                ref("configmaps", ns, name),
                MD,
                stream=463_000_000,
                latency=400,
            )
            return
        else:
            who = self._workload()
        timeout = 300 + int(rng.random() * 300)
        uri = (
            path(res, group=group)
            + f"?allowWatchBookmarks=true&resourceVersion={self.rv}"
            + f"&timeout={timeout // 60}m{timeout % 60}s&timeoutSeconds={timeout}&watch=true"
        )
        self.e.request(
            t,
            who,
            "watch",
            uri,
            ref(res, group=group),
            MD,
            stream=timeout * 1_000_000,
            latency=300 + int(rng.random() * 500),
        )

    def health_probe(self, t: int) -> None:
        # kubelet's probes of the apiserver pods carry no credentials: system:anonymous
        who = self.c.anonymous_probe[int(self.rng.random() * 3)]
        uri = self.rng.choice(("/livez", "/readyz", "/healthz"))
        self.e.request(t, who, "get", uri, None, MD, latency=400)

    # -- people ---------------------------------------------------------------------------------

    def human(self) -> Identity:
        rng = self.rng
        # kubernetes-admin does most of the work, then the SREs; a few come from the office's
        # public address
        i = 0 if rng.random() < 0.45 else 1 + int(rng.random() * (len(self.c.humans) - 1))
        return self.c.humans_public[i] if rng.random() < 0.2 else self.c.humans[i]

    def human_session(self, t: int) -> None:
        rng = self.rng
        who = self.human()
        e = self.e
        if rng.random() < 0.5:  # kubectl's discovery cache is stale: /api and /apis first
            e.request(t, who, "get", "/api?timeout=32s", None, MD)
            e.request(t + 9 * MS, who, "get", "/apis?timeout=32s", None, MD)
            t += 25 * MS
        pod = self.pod()
        ns = pod.namespace
        app = pod.app
        r = rng.random()
        if r < 0.3:
            e.request(
                t,
                who,
                "list",
                path("pods", ns) + "?limit=500",
                ref("pods", ns),
                RQ,
                latency=self.latency(True),
            )
        elif r < 0.42:
            e.request(t, who, "get", path("pods", ns, pod.name), ref("pods", ns, pod.name), RQ)
            e.request(
                t + 30 * MS,
                who,
                "list",
                path("events", ns)
                + f"?fieldSelector=involvedObject.name%3D{pod.name}"
                + f"%2CinvolvedObject.namespace%3D{ns}%2CinvolvedObject.uid%3D{pod.uid}&limit=500",
                ref("events", ns),
                RQ,
            )
        elif r < 0.55:
            e.request(
                t,
                who,
                "get",
                path("pods", ns, pod.name, sub="log")
                + f"?container={app.name}&follow=true&tailLines=100",
                ref("pods", ns, pod.name, sub="log"),
                RQ,
                stream=int(rng.random() * 120_000_000) + 1_000_000,
            )
        elif r < 0.63:
            e.request(
                t,
                who,
                "list",
                path("deployments", ns, group="apps") + "?limit=500",
                ref("deployments", ns, group="apps"),
                RQ,
            )
        elif r < 0.7:
            self._human_restart(t, who, app)
        elif r < 0.75:
            self._human_delete_pod(t, who, pod)
        elif r < 0.8:
            self._human_configmap(t, who, ns, app.name)
        elif r < 0.87:
            self._human_secret_get(t, who, ns, app.name)
        elif r < 0.9:
            self._human_secret_create(t, who, ns, app.name)
        elif r < 0.94:
            self._human_rbac(t, who, ns)
        else:
            e.request(
                t,
                who,
                "list",
                f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods",
                ref("pods", ns, group="metrics.k8s.io", version="v1beta1"),
                RQ,
            )

    def _human_restart(self, t: int, who: Identity, app: App) -> None:
        restarted = self.e.ts.seconds(t).replace("Z", "+08:00")
        patch = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": restarted}}
                }
            }
        }
        rv = self.next_rv()
        body = self.bodies[app.uid].deployment(
            rv, self.e.ts.seconds(t - 86_400_000_000 * 40), self.rng.randint(3, 40), 3, restarted
        )
        self.e.request(
            t,
            who,
            "patch",
            path("deployments", app.namespace, app.name, "apps") + "?fieldManager=kubectl-rollout",
            ref("deployments", app.namespace, app.name, "apps"),
            RR,
            objref_done=ref("deployments", app.namespace, app.name, "apps", uid=app.uid, rv=rv),
            req_obj=patch,
            resp_obj=body,
        )

    def _human_delete_pod(self, t: int, who: Identity, pod: Pod) -> None:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        resp = self.bodies[pod.app.uid].pod_response(
            pod.name, pod.uid, self.next_rv(), self.e.ts.seconds(t - 7_200_000_000), self.e.ts(t)
        )
        self.e.request(
            t,
            who,
            "delete",
            path("pods", pod.namespace, pod.name),
            ref("pods", pod.namespace, pod.name),
            RR,
            objref_done=ref("pods", pod.namespace, pod.name, uid=pod.uid),
            req_obj=body,
            resp_obj=resp,
        )

    def _human_configmap(self, t: int, who: Identity, ns: str, app: str) -> None:
        name = f"{app}-config"
        body = obj.configmap(
            name,
            ns,
            {
                "LOG_LEVEL": "debug",
                "FEATURE_FLAGS": "checkout-v2,fast-cart",
                "config.yaml": "server:\n  port: 8080\n  timeout: 30s\n",
            },
        )
        rv = self.next_rv()
        uid = _stable_uid(ns, name)
        self.e.request(
            t,
            who,
            "update",
            path("configmaps", ns, name) + "?fieldManager=kubectl-edit",
            ref("configmaps", ns, name),
            RR,
            objref_done=ref("configmaps", ns, name, uid=uid, rv=rv),
            req_obj=body,
            resp_obj=obj.stored(body, uid, rv, self.e.ts.seconds(t), "kubectl-edit"),
        )

    def _human_secret_get(self, t: int, who: Identity, ns: str, app: str) -> None:
        name = f"{app}-db"
        body = obj.secret(self.rng, name, ns, ("username", "password"), request=False)
        self.e.request(
            t, who, "get", path("secrets", ns, name), ref("secrets", ns, name), RR, resp_obj=body
        )

    def _human_secret_create(self, t: int, who: Identity, ns: str, app: str) -> None:
        name = f"{app}-api-key-{_suffix(self.rng)}"
        body = obj.secret(self.rng, name, ns, ("api-key",), request=True)
        rv = self.next_rv()
        uid = _uid(self.rng)
        self.e.request(
            t,
            who,
            "create",
            path("secrets", ns) + "?fieldManager=kubectl-create&fieldValidation=Strict",
            ref("secrets", ns),
            RR,
            status=obj.CREATED,
            objref_done=ref("secrets", ns, name, uid=uid, rv=rv),
            req_obj=body,
            resp_obj=obj.stored(body, uid, rv, self.e.ts.seconds(t), "kubectl-create"),
        )

    def _human_rbac(self, t: int, who: Identity, ns: str) -> None:
        rng = self.rng
        suffix = _suffix(rng)
        if rng.random() < 0.5:
            name = f"pod-reader-{suffix}"
            body = obj.role(
                name,
                ns,
                [
                    {
                        "apiGroups": [""],
                        "resources": ["pods", "pods/log"],
                        "verbs": ["get", "list", "watch"],
                    }
                ],
            )
            res = "roles"
        else:
            name = f"ci-deployer-{suffix}"
            body = obj.binding(name, ns, "ClusterRole", "edit", [obj.subject_sa("ci-deployer", ns)])
            res = "rolebindings"
        rv = self.next_rv()
        uid = _uid(rng)
        group = "rbac.authorization.k8s.io"
        self.e.request(
            t,
            who,
            "create",
            path(res, ns, group=group) + "?fieldManager=kubectl-create&fieldValidation=Strict",
            ref(res, ns, group=group),
            RR,
            status=obj.CREATED,
            objref_done=ref(res, ns, name, group, uid=uid, rv=rv),
            req_obj=body,
            resp_obj=obj.stored(body, uid, rv, self.e.ts.seconds(t), "kubectl-create"),
        )

    def helm_release(self, t: int) -> None:
        # Helm keeps releases in Secrets: list the release's history, then store the next one
        rng = self.rng
        admin = self.helm
        app = rng.choice(self.c.apps)
        ns = app.namespace
        version = rng.randint(2, 30)
        names = [f"sh.helm.release.v1.{app.name}.v{v}" for v in range(max(1, version - 2), version)]
        sel = f"?labelSelector=name%3D{app.name}%2Cowner%3Dhelm"
        rv = self.next_rv()
        self.e.request(
            t,
            admin,
            "list",
            path("secrets", ns) + sel,
            ref("secrets", ns),
            RR,
            resp_obj=obj.secret_list(rng, ns, names, rv),
        )
        name = f"sh.helm.release.v1.{app.name}.v{version}"
        body = obj.secret(rng, name, ns, ("release",), request=True)
        uid = _uid(rng)
        self.e.request(
            t + 120 * MS,
            admin,
            "create",
            path("secrets", ns),
            ref("secrets", ns),
            RR,
            status=obj.CREATED,
            objref_done=ref("secrets", ns, name, uid=uid, rv=rv),
            req_obj=body,
            resp_obj=obj.stored(body, uid, rv, self.e.ts.seconds(t), "helm"),
        )

    def human_forbidden(self, t: int) -> None:
        who = self.c.humans[2]  # bob, a developer, looks where he may not
        ns = self.rng.choice(("prod", "payments", "kube-system"))
        res = self.rng.choice(("pods", "secrets", "deployments"))
        group = "apps" if res == "deployments" else ""
        status = obj.forbidden(who.name, "list", res, group, ns)
        ann = {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}
        self.e.request(
            t,
            who,
            "list",
            path(res, ns, group=group) + "?limit=500",
            ref(res, ns, group=group),
            RQ,
            status=status,
            ann=ann,
        )


def _with_agent(who: Identity, agent: str) -> Identity:
    """The same identity with another user agent (client-go appends the controller's name)."""
    return Identity(who.user, who.ips, agent, who.reason)


def _suffix(rng: random.Random) -> str:
    return name_suffix(rng, 5)


def _uid(rng: random.Random) -> str:
    return uuid4(rng)


def _stable_uid(ns: str, name: str) -> str:
    """A UID that stays the same for the same object across events (derived, not random)."""
    h = hashlib.md5(f"{ns}/{name}".encode(), usedforsecurity=False).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _lease_uid(name: str) -> str:
    return _stable_uid("lease", name)
