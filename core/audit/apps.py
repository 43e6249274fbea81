from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The record of every tool call: AuditEntry and its one writer. A leaf: imports no area."""

    name = "core.audit"
    label = "audit"
    verbose_name = "Audit"
