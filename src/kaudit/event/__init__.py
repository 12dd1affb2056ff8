"""Audit events: the typed record, decoding of every input format, secret redaction."""

from kaudit.event.model import AuditEvent

__all__ = ["AuditEvent"]
