"""What every background job row has: progress counters and its own observability.

Batch runs and import jobs are rows used as work queues: claimed with a conditional UPDATE,
kept alive by a heartbeat, resumed when the heartbeat stops, and finished with a duration.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.db import write_slot


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

    # Each job model has its own `status` (with these values among its choices) and `total`.
    FINISHED = ("completed", "failed", "cancelled")

    @property
    def done(self) -> bool:
        return self.status in self.FINISHED

    @property
    def percent(self) -> int:
        if not self.total:  # not counted yet, or nothing to do
            return 100 if self.status == "completed" else 0
        return min(100, int(self.processed * 100 / self.total))


def requeue_waiting(jobs: QuerySet, enqueue: Callable[[int], None], now: datetime | None = None) -> int:
    """Hand queued jobs whose task has waited JOB_REQUEUE_SECONDS to the broker once more.

    A task is lost when the worker process holding it dies before it runs (the Redis broker's
    dequeue removes it; the ORM broker gives it back only after Q_TIMEOUT + 60 s). A job run
    twice is harmless: its task claims it with a conditional UPDATE first, so a second task for
    the same job finds nothing to do. `heartbeat` of a queued job is when it was last handed
    over; each job is handed over again at most once per JOB_REQUEUE_SECONDS.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_REQUEUE_SECONDS)
    waiting = jobs.filter(status="queued").filter(Q(heartbeat__lt=cutoff) | Q(heartbeat__isnull=True,
                                                                             created__lt=cutoff))
    handed = 0
    for pk, beat in waiting.values_list("pk", "heartbeat"):
        with write_slot(), transaction.atomic():
            if jobs.filter(pk=pk, status="queued", heartbeat=beat).update(heartbeat=now):
                enqueue(pk)
                handed += 1
    return handed
