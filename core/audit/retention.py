"""Retention of audit rows (README "Retention"), only when AUDIT_RETENTION_DAYS is set.

Audit rows are the system's record and what ROI figures are counted from, so they are kept
unless a deployment asks otherwise, and then pruned by whole UTC days. What keeps figures of
them (the ROI rollup) is not known here, audit imports no area: the caller passes `freeze`,
which is told the first kept day before any row goes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings

from core.audit.models import AuditEntry
from core.retention import prune_rows


def first_kept_audit_day(now: datetime) -> date | None:
    """The oldest UTC day whose audit rows are kept: today and the AUDIT_RETENTION_DAYS days
    before it. None when AUDIT_RETENTION_DAYS is not set (audit rows are kept forever)."""
    days = settings.AUDIT_RETENTION_DAYS
    if not days:
        return None
    return now.astimezone(UTC).date() - timedelta(days=days)


def prune_audit(now: datetime, *, dry_run: bool, chunk_size: int,
                freeze: Callable[[date], object]) -> dict[str, int]:
    """Audit rows of the UTC days before first_kept_audit_day(now), after `freeze(that day)`."""
    day = first_kept_audit_day(now)
    if day is None:
        return {}
    rows = AuditEntry.objects.filter(created__lt=datetime.combine(day, time.min, tzinfo=UTC))
    if not dry_run:
        freeze(day)
    return prune_rows(rows, chunk_size=chunk_size, dry_run=dry_run)
