"""The audit log: one row per tool call (README "The call pipeline"), the source of ROI."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """One row per tool call, whoever called and however it ended."""

    tool = models.CharField(max_length=100)
    # No index of its own: the (user, created) index below serves lookups by user. No database
    # constraint either: checking every audit row against auth_user (one lookup and row lock per
    # row on PostgreSQL) cost more than the row's own insert in an import; the ORM still clears
    # the reference when a user is deleted, and `username` keeps who it was.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+",
                             db_index=False, db_constraint=False)
    username = models.CharField(max_length=150, blank=True)
    department = models.CharField(max_length=30, blank=True)
    via = models.CharField(max_length=20, blank=True, help_text="http, mcp, cli, dashboard, batch, import, …")
    arguments_digest = models.CharField(max_length=64, blank=True)
    success = models.BooleanField()
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    idempotency_key = models.CharField(max_length=255, blank=True)
    replayed = models.BooleanField(default=False, help_text="answered from a stored idempotent result")
    batch_id = models.CharField(max_length=40, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        # The table keeps the name it had when the model lived in the tools app (the ROI
        # rollup's triggers and every existing database know it by that name).
        db_table = "tools_auditentry"
        ordering = ["-created", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["created"]),
            models.Index(fields=["tool", "created"]),
            models.Index(fields=["user", "created"]),
            models.Index(fields=["department", "created"]),
            models.Index(fields=["batch_id"]),
        ]

    def __str__(self) -> str:
        outcome = "ok" if self.success else self.error_code
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.tool} {self.username} {outcome}"
