"""Retention of the log-in records django-axes keeps (README "Retention")."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from core.retention import older_than, prune_rows


def prune_login_records(now: datetime, *, dry_run: bool, chunk_size: int) -> dict[str, int]:
    """Successful log-ins and log-outs, failures and attempts older than RETENTION_LOGIN_LOG_DAYS.
    A lockout lasts LOGIN_LOCKOUT_MINUTES, so no attempt this old still holds one."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    cutoff = older_than(now, days=settings.RETENTION_LOGIN_LOG_DAYS)
    counts: dict[str, int] = {}
    for model in (AccessLog, AccessFailureLog, AccessAttempt):
        counts.update(prune_rows(model.objects.filter(attempt_time__lt=cutoff), chunk_size=chunk_size,
                                 dry_run=dry_run))
    return counts
