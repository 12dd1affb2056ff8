"""`kaudit policy recommend`: the shipped policy profiles, as commented YAML files.

The profiles are data files in `profiles/`; each passes `policy lint` with no warnings (tested).
"""

from __future__ import annotations

from importlib import resources

from kaudit.errors import ConfigError
from kaudit.policy.load import load_policy
from kaudit.policy.model import Policy

PROFILES: dict[str, str] = {
    "minimal": "Metadata everywhere; request bodies only where a detection reads them",
    "recommended": "the brief's policy, modernised: noise dropped, writes in full",
    "forensic": "every write with both bodies, reads at Request; several times the volume",
}


def profile_text(name: str = "recommended") -> str:
    """The commented YAML of one profile."""
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return (resources.files("kaudit.policy") / "profiles" / f"{name}.yaml").read_text("utf-8")


def profile_policy(name: str = "recommended") -> Policy:
    return load_policy(profile_text(name), source=f"{name}.yaml")
