"""kaudit: a self-hosted SIEM for Kubernetes audit logs."""

__version__ = "0.1.0"
