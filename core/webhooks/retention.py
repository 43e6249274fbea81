"""Retention of webhook deliveries (README "Retention"), with their attempts.

Delivered ones go RETENTION_DELIVERED_DAYS after they finished, dead letters (failed)
RETENTION_FAILED_DAYS after: a dead letter is kept longer because someone may still retry it.
Pending and sending deliveries are never pruned. A manual retry clears `finished`, so a
retried delivery's age counts from its new outcome.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db.models import Q, QuerySet

from core.retention import older_than, prune_rows
from core.webhooks.models import Attempt, Delivery


def prunable(now: datetime) -> QuerySet:
    # Two ranges of the (status, finished) index.
    return Delivery.objects.filter(
        Q(status=Delivery.Status.SUCCEEDED, finished__lt=older_than(now, days=settings.RETENTION_DELIVERED_DAYS))
        | Q(status=Delivery.Status.FAILED, finished__lt=older_than(now, days=settings.RETENTION_FAILED_DAYS)))


def prune_deliveries(now: datetime, *, dry_run: bool, chunk_size: int) -> dict[str, int]:
    return prune_rows(prunable(now), chunk_size=chunk_size, dry_run=dry_run,
                      children=[(Attempt, Attempt._meta.get_field("delivery").column)])
