"""`kaudit policy apiserver`: the kube-apiserver flags and the static-pod manifest change.

The flags follow the brief (policy file, log path, 100 MB × 10 backups × 7 days) and spec
k8s-audit §9. The manifest change is given three ways: the flags, a kubeadm `--patches` JSON
patch (`kube-apiserver+json.yaml`), and, for an existing manifest, the patched manifest itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from kaudit.errors import ConfigError, Location

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"


@dataclass(frozen=True, slots=True)
class AuditSetup:
    """Where the policy, the log and the optional webhook kubeconfig live on the node."""

    policy_file: str = "/etc/kubernetes/audit-policy.yml"
    log_path: str = "/var/log/kubernetes/kubernetes.audit"
    max_size_mb: int = 100
    max_backup: int = 10
    max_age_days: int = 7
    webhook_url: str | None = None
    webhook_config_file: str = "/etc/kubernetes/audit-webhook.kubeconfig"

    @property
    def log_dir(self) -> str:
        return self.log_path.rsplit("/", 1)[0] or "/"

    def flags(self) -> list[str]:
        out = [
            f"--audit-policy-file={self.policy_file}",
            f"--audit-log-path={self.log_path}",
            f"--audit-log-maxsize={self.max_size_mb}",
            f"--audit-log-maxbackup={self.max_backup}",
            f"--audit-log-maxage={self.max_age_days}",
        ]
        if self.webhook_url:
            # batch mode never blocks API requests; a slow receiver only delays delivery (§9.2)
            out += [
                f"--audit-webhook-config-file={self.webhook_config_file}",
                "--audit-webhook-mode=batch",
                "--audit-webhook-initial-backoff=10s",
            ]
        return out

    def mounts(self) -> list[tuple[str, str, str, bool]]:
        """(volume name, host/mount path, hostPath type, read-only)."""
        out = [
            ("kaudit-audit-policy", self.policy_file, "File", True),
            ("kaudit-audit-log", self.log_dir, "DirectoryOrCreate", False),
        ]
        if self.webhook_url:
            out.append(("kaudit-audit-webhook", self.webhook_config_file, "File", True))
        return out

    def volume_mounts(self) -> list[dict[str, Any]]:
        return [
            {"name": n, "mountPath": p, **({"readOnly": True} if ro else {})}
            for n, p, _, ro in self.mounts()
        ]

    def volumes(self) -> list[dict[str, Any]]:
        return [{"name": n, "hostPath": {"path": p, "type": t}} for n, p, t, _ in self.mounts()]

    def kubeadm_patch(self) -> str:
        """A JSON patch for `kubeadm init/upgrade --patches DIR` as `kube-apiserver+json.yaml`."""
        ops: list[dict[str, Any]] = [
            {"op": "add", "path": "/spec/containers/0/command/-", "value": f} for f in self.flags()
        ]
        ops += [
            {"op": "add", "path": "/spec/containers/0/volumeMounts/-", "value": m}
            for m in self.volume_mounts()
        ]
        ops += [{"op": "add", "path": "/spec/volumes/-", "value": v} for v in self.volumes()]
        return yaml.safe_dump(ops, sort_keys=False)

    def webhook_kubeconfig(self) -> str:
        """The kubeconfig `--audit-webhook-config-file` points at (§9.5)."""
        if not self.webhook_url:
            raise ConfigError("no webhook URL given")
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kaudit", "cluster": {"server": self.webhook_url}}],
            "users": [{"name": "kube-apiserver", "user": {}}],
            "contexts": [
                {"name": "kaudit", "context": {"cluster": "kaudit", "user": "kube-apiserver"}}
            ],
            "current-context": "kaudit",
        }
        return yaml.safe_dump(doc, sort_keys=False)

    def patch_manifest(self, text: str, source: str = MANIFEST) -> str:
        """The kube-apiserver static-pod manifest with the flags, mounts and volumes set.

        Idempotent: earlier `--audit-*` flags and kaudit volumes are replaced, not duplicated.
        """
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark else None
            raise ConfigError(f"manifest is not YAML: {exc}", Location(source, line)) from None
        spec = doc.get("spec") if isinstance(doc, dict) else None
        containers = spec.get("containers") if isinstance(spec, dict) else None
        if not isinstance(containers, list) or not containers:
            raise ConfigError("manifest has no spec.containers", Location(source))
        assert isinstance(spec, dict)
        container = next(
            (c for c in containers if isinstance(c, dict) and c.get("name") == "kube-apiserver"),
            containers[0],
        )
        command = container.get("command")
        if not isinstance(command, list):
            raise ConfigError("kube-apiserver container has no command list", Location(source))
        ours = {f.split("=", 1)[0] for f in self.flags()}
        container["command"] = [
            c for c in command if not (isinstance(c, str) and c.split("=", 1)[0] in ours)
        ] + self.flags()
        names = {n for n, *_ in self.mounts()}
        paths = {p for _, p, *_ in self.mounts()}
        mounts = [
            m
            for m in container.get("volumeMounts") or []
            if m.get("name") not in names and m.get("mountPath") not in paths
        ]
        container["volumeMounts"] = mounts + self.volume_mounts()
        volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in names]
        spec["volumes"] = volumes + self.volumes()
        return yaml.safe_dump(doc, sort_keys=False)
