"""The event store: one row per published event, kept as the audit trail of what happened."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core import jsoncodec


class Event(models.Model):
    """An ERP event. `data` is the full operation context; `caused_by` (in data) names the call.

    `fanned_out` turns true in the transaction that creates the event's webhook deliveries,
    so an event whose fan-out never ran (a crash right after commit) is found and finished
    by the dispatcher's sweep instead of being missed.
    """

    event_id = models.CharField(max_length=40, unique=True)
    type = models.CharField(max_length=60)
    created = models.DateTimeField(default=timezone.now)
    data = models.JSONField(encoder=jsoncodec.Encoder, decoder=jsoncodec.Decoder)
    # History names its user without a database constraint (as AuditEntry.user): the check of
    # every inserted row against auth_user was a fifth of PostgreSQL's work in an import. The
    # ORM still clears the reference when a user is deleted; `username` keeps who it was.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", db_constraint=False)
    username = models.CharField(max_length=150, blank=True)
    audit_id = models.BigIntegerField(null=True, blank=True, help_text="AuditEntry of the call that caused it")
    fanned_out = models.BooleanField(default=False)
    fanout_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["created"]),
            models.Index(fields=["type", "created"]),
            models.Index(fields=["created"], condition=Q(fanned_out=False), name="event_not_fanned_out"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"
