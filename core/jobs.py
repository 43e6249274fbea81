"""What every background job row has: progress counters and its own observability.

Batch runs and import jobs are rows used as work queues: claimed with a conditional UPDATE,
kept alive by a heartbeat, resumed when the heartbeat stops, and finished with a duration.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class JobRow(models.Model):
    processed = models.PositiveIntegerField(default=0)
    successful = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created", "-id"]
