from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from core import jsoncodec
from core.jobs import JobRow


class IdempotencyRecord(models.Model):
    """The stored outcome of a call made with an Idempotency-Key, scoped to the user."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    tool = models.CharField(max_length=100)
    request_digest = models.CharField(max_length=64)
    success = models.BooleanField(default=True)
    response = models.JSONField(null=True, encoder=jsoncodec.Encoder, decoder=jsoncodec.Decoder)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_unique")]
        indexes = [models.Index(fields=["created"])]

    def __str__(self) -> str:
        return f"{self.key} ({self.tool})"


class BatchRun(JobRow):
    """One ax_batch_operations call: its requests, progress and per-operation results."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    batch_id = models.CharField(max_length=40, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    role_cap = models.PositiveSmallIntegerField(null=True)
    via = models.CharField(max_length=20, blank=True)
    is_async = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    stop_on_error = models.BooleanField(default=False)
    max_parallel = models.PositiveSmallIntegerField(default=5)
    requests = models.JSONField(encoder=jsoncodec.Encoder, decoder=jsoncodec.Decoder)
    results = models.JSONField(null=True, blank=True, encoder=jsoncodec.Encoder, decoder=jsoncodec.Decoder)
    total = models.PositiveIntegerField(default=0)

    class Meta(JobRow.Meta):
        indexes = [models.Index(fields=["status", "heartbeat"]), models.Index(fields=["user", "created"]),
                   models.Index(fields=["status", "finished"], name="batchrun_status_finished")]  # retention

    def __str__(self) -> str:
        return f"batch {self.batch_id} ({self.status}, {self.processed}/{self.total})"
