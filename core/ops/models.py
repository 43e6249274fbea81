"""What the hub's long-running processes say about themselves."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from core import jsoncodec


class Heartbeat(models.Model):
    """One row per running worker or dispatcher process, refreshed every few seconds.

    A worker also records its probe: a no-op task it enqueues through the broker and that a
    worker process runs. `probe_sent` without a later `probe_done` means the task is still
    waiting; how long it waits, and whether the workers are busy meanwhile, tells a stalled
    cluster from a busy one.
    """

    class Kind(models.TextChoices):
        WORKER = "worker"
        DISPATCHER = "dispatcher"

    process = models.CharField(max_length=200, unique=True)  # kind@host:pid
    kind = models.CharField(max_length=20, choices=Kind.choices)
    host = models.CharField(max_length=150)
    pid = models.PositiveIntegerField()
    started = models.DateTimeField(default=timezone.now)
    beat = models.DateTimeField(default=timezone.now, db_index=True)
    state = models.CharField(max_length=20, default="starting")
    probe_sent = models.DateTimeField(null=True, blank=True)
    probe_done = models.DateTimeField(null=True, blank=True)
    restarts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    detail = models.JSONField(default=dict, blank=True, encoder=jsoncodec.Encoder)

    class Meta:
        ordering = ["kind", "-beat"]

    def __str__(self) -> str:
        return self.process
