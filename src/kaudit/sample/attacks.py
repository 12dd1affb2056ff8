"""Injected attacks: what the detections and the brief's alerts must find.

Each kind is one method that plays one campaign (one request, or a burst) starting at `t`, and
tags every event it emits so that the generator can write the ground truth. The shapes follow
kube-apiserver: exec/attach/port-forward are long-running (ResponseStarted with code 101) and
come as `create` over SPDY or `get` over WebSocket (spec §5.1, §5.3); a 401 is a single
ResponseStarted event with an empty user and no authorization annotations (spec §5.4); a 403
carries `authorization.k8s.io/decision: forbid` and the full `Status`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from urllib.parse import quote_plus

from kaudit.sample import objects as obj
from kaudit.sample import tables
from kaudit.sample.cluster import Cluster, Identity, allow
from kaudit.sample.emitter import Emitter, Tag
from kaudit.sample.ids import uuid4
from kaudit.sample.traffic import MS, RQ, RR, Traffic, path, ref

MD = "Metadata"
SEC = 1_000_000

ATTACK_KINDS: tuple[str, ...] = (
    "exec",
    "exec_websocket",
    "exec_rolebinding",
    "attach",
    "portforward",
    "brute_force",
    "forbidden_scan",
    "privileged_pod",
    "hostpath_pod",
    "cluster_admin_binding",
    "secret_enumeration",
    "anonymous_access",
)
"""Every attack kind, in the order the generator places one of each across the time range."""

DEFAULT_WEIGHTS: dict[str, float] = {
    "exec": 3.0,
    "exec_websocket": 2.0,
    "exec_rolebinding": 1.0,
    "attach": 1.0,
    "portforward": 1.0,
    "brute_force": 1.5,
    "forbidden_scan": 1.5,
    "privileged_pod": 1.0,
    "hostpath_pod": 1.0,
    "cluster_admin_binding": 0.7,
    "secret_enumeration": 1.0,
    "anonymous_access": 1.0,
}

FORBID = {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}


def _public_ip(rng: random.Random) -> str:
    pool = tables.CN_ATTACKER_IPS if rng.random() < 0.5 else tables.FOREIGN_ATTACKER_IPS
    return rng.choice(pool)


class Attacks:
    """Plays attack campaigns into the same emitter as the normal traffic."""

    def __init__(
        self, rng: random.Random, cluster: Cluster, emitter: Emitter, traffic: Traffic
    ) -> None:
        self.rng = rng
        self.c = cluster
        self.e = emitter
        self.traffic = traffic
        self.play: dict[str, Callable[[int, int], None]] = {
            "exec": self.exec_spdy,
            "exec_websocket": self.exec_websocket,
            "exec_rolebinding": self.exec_rolebinding,
            "attach": self.attach,
            "portforward": self.portforward,
            "brute_force": self.brute_force,
            "forbidden_scan": self.forbidden_scan,
            "privileged_pod": self.privileged_pod,
            "hostpath_pod": self.hostpath_pod,
            "cluster_admin_binding": self.cluster_admin_binding,
            "secret_enumeration": self.secret_enumeration,
            "anonymous_access": self.anonymous_access,
        }

    # -- who ------------------------------------------------------------------------------------

    def insider(self) -> Identity:
        """A person's credentials: used from the VPN, the office, or stolen and used abroad."""
        rng = self.rng
        human = self.c.humans[int(rng.random() * len(self.c.humans))]
        r = rng.random()
        if r < 0.45:
            return human
        if r < 0.7:
            return self.c.humans_public[self.c.humans.index(human)]
        return Identity(human.user, [_public_ip(rng)], rng.choice(tables.KUBECTL_UAS), human.reason)

    def stolen_sa(self) -> Identity:
        """A workload's bound token replayed from outside: same user and extra, public address."""
        w = self.c.workloads[int(self.rng.random() * len(self.c.workloads))]
        agent = self.rng.choice(("curl/7.88.1", tables.KUBECTL_UAS[0], "python-requests/2.31.0"))
        return Identity(w.user, [_public_ip(self.rng)], agent, w.reason)

    # -- exec, attach, port-forward ---------------------------------------------------------------

    def _stream(
        self,
        t: int,
        who: Identity,
        verb: str,
        sub: str,
        query: str,
        tag: Tag,
        ann: dict[str, str] | None = None,
    ) -> None:
        pod = self.traffic.pod()
        uri = path("pods", pod.namespace, pod.name, sub=sub) + query.replace("{c}", pod.app.name)
        objref = ref("pods", pod.namespace, pod.name, sub=sub)
        self.e.request(
            t,
            who,
            verb,
            uri,
            objref,
            RQ,
            status=obj.SWITCHING,
            ann=ann,
            latency=20 * MS + int(self.rng.random() * 60 * MS),
            stream=int(self.rng.random() * 600 * SEC) + 2 * SEC,
            tag=tag,
        )

    def _exec_query(self) -> str:
        command = self.rng.choice(tables.EXEC_COMMANDS)
        # url.Values.Encode: keys sorted, values QueryEscape'd; kubectl exec -it sets tty
        args = "&".join(f"command={quote_plus(c)}" for c in command)
        if len(command) == 1 or self.rng.random() < 0.6:
            return f"?{args}&container={{c}}&stdin=true&stdout=true&tty=true"
        return f"?{args}&container={{c}}&stderr=true&stdout=true"

    def exec_spdy(self, t: int, campaign: int) -> None:
        self._stream(
            t, self.insider(), "create", "exec", self._exec_query(), Tag("exec", campaign, "spdy")
        )

    def exec_websocket(self, t: int, campaign: int) -> None:
        # kubectl >= 1.30 speaks WebSocket: a GET, so the verb is `get` (spec §5.1)
        self._stream(
            t,
            self.insider(),
            "get",
            "exec",
            self._exec_query(),
            Tag("exec_websocket", campaign, "websocket"),
        )

    def exec_rolebinding(self, t: int, campaign: int) -> None:
        # The brief's 7.1 case: the account is `kubernetes-admin`, but RBAC allowed it through a
        # RoleBinding whose reason names the person; the alert's 操作账号 comes from the reason.
        person = self.rng.choice(("zhang.wei", "li.na", "wang.fang"))
        ns = self.rng.choice(("prod", "payments"))
        reason = (
            f'RBAC: allowed by RoleBinding "{person}-exec/{ns}" of ClusterRole "admin" '
            f'to User "{person}"'
        )
        ips = [self.rng.choice(tables.CN_OFFICE_IPS)] if self.rng.random() < 0.5 else ["10.8.0.31"]
        who = Identity(
            {"username": "kubernetes-admin", "groups": ["system:authenticated"]},
            ips,
            tables.KUBECTL_UAS[0],
            reason,
        )
        verb = "create" if self.rng.random() < 0.6 else "get"
        self._stream(
            t, who, verb, "exec", self._exec_query(), Tag("exec_rolebinding", campaign, person)
        )

    def attach(self, t: int, campaign: int) -> None:
        verb = "create" if self.rng.random() < 0.7 else "get"
        query = "?container={c}&stderr=true&stdin=true&stdout=true&tty=true"
        self._stream(t, self.insider(), verb, "attach", query, Tag("attach", campaign, verb))

    def portforward(self, t: int, campaign: int) -> None:
        if self.rng.random() < 0.6:
            verb, query = "create", ""  # SPDY: no query string
        else:
            verb, query = "get", f"?ports={self.rng.choice((5432, 6379, 3306, 8080, 9200))}"
        self._stream(
            t, self.insider(), verb, "portforward", query, Tag("portforward", campaign, verb)
        )

    # -- failures from public addresses ------------------------------------------------------------

    def brute_force(self, t: int, campaign: int) -> None:
        rng = self.rng
        ip = _public_ip(rng)
        agent = rng.choice(tables.SCANNER_UAS)
        method = rng.choice(("bearer", "bearer", "basic"))
        tag = Tag("brute_force", campaign, ip)
        status = obj.unauthorized(method)
        targets = (
            ("list", "/api/v1/namespaces/kube-system/secrets", ref("secrets", "kube-system")),
            ("list", "/api/v1/pods", ref("pods")),
            ("get", "/api/v1/namespaces/default/pods", ref("pods", "default")),
            ("get", "/apis", None),
            ("get", "/version", None),
        )
        for _ in range(rng.randint(12, 40)):
            verb, uri, objref = targets[int(rng.random() * len(targets))]
            if objref is None:
                verb = "get"
            self.e.failed_authn(t, [ip], agent, verb, uri, objref, status, tag)
            t += int(rng.random() * 5 * SEC) + 200 * MS

    def forbidden_scan(self, t: int, campaign: int) -> None:
        rng = self.rng
        who = self.stolen_sa()
        tag = Tag("forbidden_scan", campaign, who.ips[0])
        discovery = allow(
            'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole '
            '"system:discovery" to Group "system:authenticated"'
        )
        for uri in ("/api", "/apis", "/version"):
            self.e.request(t, who, "get", uri, None, MD, ann=discovery, tag=tag)
            t += 150 * MS
        probes = (
            ("secrets", ""),
            ("pods", ""),
            ("nodes", ""),
            ("clusterrolebindings", "rbac.authorization.k8s.io"),
            ("clusterroles", "rbac.authorization.k8s.io"),
            ("configmaps", ""),
            ("deployments", "apps"),
            ("daemonsets", "apps"),
            ("serviceaccounts", ""),
            ("namespaces", ""),
            ("persistentvolumes", ""),
            ("validatingwebhookconfigurations", "admissionregistration.k8s.io"),
        )
        namespaces = (None, "kube-system", "default", "prod")
        for _ in range(rng.randint(12, 30)):
            res, group = probes[int(rng.random() * len(probes))]
            cluster_scoped = (
                res
                in (
                    "nodes",
                    "clusterrolebindings",
                    "clusterroles",
                    "namespaces",
                    "persistentvolumes",
                )
                or group == "admissionregistration.k8s.io"
            )
            ns = None if cluster_scoped else namespaces[int(rng.random() * len(namespaces))]
            status = obj.forbidden(who.name, "list", res, group, ns)
            self.e.request(
                t,
                who,
                "list",
                path(res, ns, group=group) + "?limit=500",
                ref(res, ns, group=group),
                MD,
                status=status,
                ann=FORBID,
                tag=tag,
            )
            t += int(rng.random() * 3 * SEC) + 100 * MS

    # -- dangerous writes ----------------------------------------------------------------------

    def _pod_create(
        self, t: int, kind: str, campaign: int, *, privileged: bool, host_path: str | None
    ) -> None:
        rng = self.rng
        who = self.insider() if rng.random() < 0.6 else self.stolen_sa()
        ns = rng.choice(("default", "kube-system", "dev"))
        name = (
            rng.choice(("debug", "node-shell", "kube-proxy-fix", "busybox", "tools"))
            + "-"
            + "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=5))
        )
        image = rng.choice(
            ("busybox:1.36", "alpine:3.19", "ubuntu:22.04", "docker.io/library/nginx:latest")
        )
        node = self.traffic.node().name if privileged and rng.random() < 0.5 else None
        body = obj.attack_pod(
            name, ns, image, privileged=privileged, host_path=host_path, node=node
        )
        uid = uuid4(rng)
        rv = self.traffic.next_rv()
        created = self.e.ts.seconds(t)
        violations: list[str] = []
        if privileged:
            violations.append(
                "host namespaces (hostNetwork=true, hostPID=true), privileged "
                '(container "shell" must not set securityContext.privileged=true)'
            )
        if host_path is not None:
            violations.append('hostPath volumes (volume "host")')
        ann = dict(who.ann)
        if ns == "kube-system":
            ann["pod-security.kubernetes.io/enforce-policy"] = "privileged:latest"
        else:
            ann["pod-security.kubernetes.io/audit-violations"] = (
                'would violate PodSecurity "baseline:latest": ' + ", ".join(violations)
            )
            ann["pod-security.kubernetes.io/enforce-policy"] = "privileged:latest"
        self.e.request(
            t,
            who,
            "create",
            path("pods", ns) + "?fieldManager=kubectl-run",
            ref("pods", ns),
            RR,
            status=obj.CREATED,
            ann=ann,
            objref_done=ref("pods", ns, name, uid=uid, rv=rv),
            req_obj=body,
            resp_obj=obj.stored(body, uid, rv, created, "kubectl-run"),
            tag=Tag(kind, campaign, f"{ns}/{name}"),
        )

    def privileged_pod(self, t: int, campaign: int) -> None:
        self._pod_create(t, "privileged_pod", campaign, privileged=True, host_path=None)

    def hostpath_pod(self, t: int, campaign: int) -> None:
        self._pod_create(
            t,
            "hostpath_pod",
            campaign,
            privileged=self.rng.random() < 0.3,
            host_path=self.rng.choice(tables.HOSTPATH_TARGETS),
        )

    def cluster_admin_binding(self, t: int, campaign: int) -> None:
        rng = self.rng
        who = self.insider() if rng.random() < 0.7 else self.stolen_sa()
        if rng.random() < 0.5:
            subject = obj.subject_sa("default", rng.choice(("default", "dev", "kube-system")))
        else:
            subject = obj.subject_user(
                rng.choice(("backup-operator", "system:anonymous", "temp-admin"))
            )
        name = (
            rng.choice(("cluster-admin-binding", "ops-admin", "debug-admin", "kube-monitor"))
            + f"-{rng.randrange(100, 999)}"
        )
        body = obj.binding(name, None, "ClusterRole", "cluster-admin", [subject])
        uid = uuid4(rng)
        rv = self.traffic.next_rv()
        group = "rbac.authorization.k8s.io"
        self.e.request(
            t,
            who,
            "create",
            path("clusterrolebindings", group=group)
            + "?fieldManager=kubectl-create&fieldValidation=Strict",
            ref("clusterrolebindings", group=group),
            RR,
            status=obj.CREATED,
            objref_done=ref("clusterrolebindings", name=name, group=group, uid=uid, rv=rv),
            req_obj=body,
            resp_obj=obj.stored(body, uid, rv, self.e.ts.seconds(t), "kubectl-create"),
            tag=Tag("cluster_admin_binding", campaign, name),
        )

    # -- reads that should not happen ---------------------------------------------------------

    def secret_enumeration(self, t: int, campaign: int) -> None:
        rng = self.rng
        # a person, not a system identity: carol, dave or bob's credentials
        base = self.c.humans[rng.choice((2, 3, 4))]
        ips = [_public_ip(rng)] if rng.random() < 0.5 else base.ips
        who = Identity(base.user, ips, rng.choice(tables.KUBECTL_UAS), base.reason)
        tag = Tag("secret_enumeration", campaign, who.name)
        rv = self.traffic.next_rv()
        names = ["db-credentials", "registry-pull", "api-token"]
        self.e.request(
            t,
            who,
            "list",
            "/api/v1/secrets?limit=500",
            ref("secrets"),
            RR,
            resp_obj=obj.secret_list(rng, None, names, rv),
            tag=tag,
            latency=80 * MS,
        )
        t += 2 * SEC
        for ns in rng.sample(tables.NAMESPACES, rng.randint(4, 8)):
            self.e.request(
                t,
                who,
                "list",
                path("secrets", ns) + "?limit=500",
                ref("secrets", ns),
                RR,
                resp_obj=obj.secret_list(rng, ns, names[: rng.randint(1, 3)], rv),
                tag=tag,
            )
            t += int(rng.random() * 2 * SEC) + 300 * MS

    def anonymous_access(self, t: int, campaign: int) -> None:
        rng = self.rng
        ip = _public_ip(rng)
        who = Identity(
            {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
            [ip],
            rng.choice(tables.SCANNER_UAS),
            'RBAC: allowed by ClusterRoleBinding "anonymous-view" of ClusterRole "view" to User '
            '"system:anonymous"',
        )
        tag = Tag("anonymous_access", campaign, ip)
        steps = (
            ("list", "/api/v1/namespaces", ref("namespaces")),
            ("list", "/api/v1/namespaces/kube-system/pods", ref("pods", "kube-system")),
            ("list", "/api/v1/pods", ref("pods")),
            ("list", "/apis/apps/v1/deployments", ref("deployments", group="apps")),
            (
                "get",
                "/api/v1/namespaces/kube-system/configmaps/kubeadm-config",
                ref("configmaps", "kube-system", "kubeadm-config"),
            ),
        )
        for verb, uri, objref in steps[: rng.randint(2, len(steps))]:
            self.e.request(t, who, verb, uri, objref, MD, tag=tag)
            t += int(rng.random() * 4 * SEC) + 100 * MS
        if rng.random() < 0.5:  # view does not reach Secrets
            status = obj.forbidden("system:anonymous", "list", "secrets", "", "kube-system")
            self.e.request(
                t,
                who,
                "list",
                "/api/v1/namespaces/kube-system/secrets",
                ref("secrets", "kube-system"),
                MD,
                status=status,
                ann=FORBID,
                tag=tag,
            )
