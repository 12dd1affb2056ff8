"""The audit-policy workbench: kube-apiserver-exact evaluation, validation, lint, simulation.

    from kaudit.policy import load_policy, Policy, RequestAttributes, request_info
    policy = load_policy(open("audit-policy.yaml").read(), source="audit-policy.yaml")
    policy.evaluate(request_info("GET", "/api/v1/namespaces/default/pods/x")).level

Semantics: ../shared/spec/k8s-audit.md §1–7, §12–13.
"""

from kaudit.policy.load import CheckResult, check_policy, load_policy
from kaudit.policy.model import (
    LEVELS,
    STAGES,
    Decision,
    GroupResources,
    LoadWarning,
    Policy,
    PolicyRule,
    RequestAttributes,
    level_rank,
)
from kaudit.policy.requestinfo import request_info
from kaudit.policy.validate import PolicyErrors, PolicyFieldError
from kaudit.policy.version import Semantics

__all__ = [
    "LEVELS",
    "STAGES",
    "CheckResult",
    "Decision",
    "GroupResources",
    "LoadWarning",
    "Policy",
    "PolicyErrors",
    "PolicyFieldError",
    "PolicyRule",
    "RequestAttributes",
    "Semantics",
    "check_policy",
    "level_rank",
    "load_policy",
    "request_info",
]
