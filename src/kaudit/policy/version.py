"""Which Kubernetes release's policy semantics apply (spec k8s-audit §12).

The default is the latest release; `Semantics.for_version("1.23")` selects older behaviour where
it differs. Only the differences that change a decision, a validation or a load are modelled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kaudit.errors import ConfigError

LATEST: tuple[int, int] = (1, 37)
OLDEST: tuple[int, int] = (1, 7)


@dataclass(frozen=True, slots=True)
class Semantics:
    """Behaviour switches of one Kubernetes minor release."""

    version: tuple[int, int] = LATEST

    @classmethod
    def latest(cls) -> Semantics:
        return cls(LATEST)

    @classmethod
    def for_version(cls, version: str | None) -> Semantics:
        """`"1.23"`, `"v1.23.4"` or None (latest)."""
        if version is None or version in ("", "latest"):
            return cls.latest()
        m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?", version.strip())
        if m is None:
            raise ConfigError(f"kubernetes version {version!r}: expected MAJOR.MINOR, e.g. 1.29")
        parsed = (int(m.group(1)), int(m.group(2)))
        if parsed < OLDEST:
            raise ConfigError(f"kubernetes version {version}: advanced audit starts at 1.7")
        return cls(min(parsed, LATEST))

    def __str__(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    def _since(self, minor: int) -> bool:
        return self.version >= (1, minor)

    @property
    def group_wildcard(self) -> bool:
        """`group: "*"` matches every group (1.36); earlier it fails validation."""
        return self._since(36)

    @property
    def subresource_wildcards(self) -> bool:
        """`*/sub` and `res/*` patterns (1.10)."""
        return self._since(10)

    @property
    def exact_subresources(self) -> bool:
        """`pods` stops matching `pods/log`; `resourceNames` matching (1.8)."""
        return self._since(8)

    @property
    def userless_fails_subject_rules(self) -> bool:
        """Rules with users/userGroups never match requests without a user (1.11)."""
        return self._since(11)

    @property
    def policy_omit_stages(self) -> bool:
        """Policy-wide `omitStages` (1.9)."""
        return self._since(9)

    @property
    def rule_omit_stages(self) -> bool:
        """Rule-level `omitStages` (1.8)."""
        return self._since(8)

    @property
    def omit_managed_fields(self) -> bool:
        """`omitManagedFields` (1.23)."""
        return self._since(23)

    @property
    def requires_type_meta(self) -> bool:
        """The file must declare apiVersion/kind (1.9)."""
        return self._since(9)

    @property
    def strict_then_lenient(self) -> bool:
        """Unknown fields logged as a warning instead of ignored silently (1.26)."""
        return self._since(26)

    def accepts_api_version(self, api_version: str) -> bool:
        """v1 exists from 1.12; v1alpha1/v1beta1 were removed in 1.24."""
        if api_version == "audit.k8s.io/v1":
            return self._since(12)
        if api_version == "audit.k8s.io/v1beta1":
            return self._since(8) and not self._since(24)
        if api_version == "audit.k8s.io/v1alpha1":
            return not self._since(24)
        return False
