"""Retention of the tools framework's rows (README "Retention"): idempotency records and
finished batch runs with their per-operation results."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from core.retention import older_than, prune_rows
from core.tools.models import BatchRun, IdempotencyRecord


def prune_idempotency(now: datetime, *, dry_run: bool, chunk_size: int) -> dict[str, int]:
    """Records older than their TTL: a replay would no longer use them (idempotency.claim)."""
    rows = IdempotencyRecord.objects.filter(created__lt=older_than(now, hours=settings.IDEMPOTENCY_TTL_HOURS))
    return prune_rows(rows, chunk_size=chunk_size, dry_run=dry_run)


def prune_batches(now: datetime, *, dry_run: bool, chunk_size: int) -> dict[str, int]:
    """Completed and failed batch runs (their results are a column of the row) past retention."""
    rows = BatchRun.objects.filter(status__in=[BatchRun.Status.COMPLETED, BatchRun.Status.FAILED],
                                   finished__lt=older_than(now, days=settings.RETENTION_BATCH_DAYS))
    return prune_rows(rows, chunk_size=chunk_size, dry_run=dry_run)
