"""Converters from the non-native audit formats to audit.k8s.io/v1 event dicts.

Pure functions, no I/O: each takes one parsed record (or one text line) and returns plain event
dicts, raising `kaudit.errors.DecodeError(reason, message)` on malformed input. One module per
format: `legacy` (the `--audit-log-format=legacy` line), `eks` (CloudWatch Logs), `aks` (Azure
diagnostic settings), `gke` (Cloud Logging), `compat` (v1beta1/v1alpha1 fields) and `detect`
(which format an input is). User documentation: docs/formats.md.
"""

from kaudit.event.formats.aks import (
    aks_cluster_name,
    aks_record_to_event,
    aks_records,
    looks_like_aks,
    unwrap_aks,
)
from kaudit.event.formats.compat import upgrade_event
from kaudit.event.formats.detect import FORMATS, sniff
from kaudit.event.formats.eks import (
    eks_cluster_name,
    eks_record_to_event,
    eks_records,
    looks_like_eks,
    parse_eks_export_line,
    unwrap_eks,
)
from kaudit.event.formats.gke import gke_cluster_name, gke_to_v1, looks_like_gke
from kaudit.event.formats.legacy import format_legacy_line, looks_like_legacy, parse_legacy_line

__all__ = [
    "FORMATS",
    "aks_cluster_name",
    "aks_record_to_event",
    "aks_records",
    "eks_cluster_name",
    "eks_record_to_event",
    "eks_records",
    "format_legacy_line",
    "gke_cluster_name",
    "gke_to_v1",
    "looks_like_aks",
    "looks_like_eks",
    "looks_like_gke",
    "looks_like_legacy",
    "parse_eks_export_line",
    "parse_legacy_line",
    "sniff",
    "unwrap_aks",
    "unwrap_eks",
    "upgrade_event",
]
