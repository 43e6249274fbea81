"""Retention (README "Retention"): one pass over every table that grows with traffic.

Each area owns what it prunes (core/<area>/retention.py); this module only runs them in an
order that lets one pass finish the job, deliveries before the events they refer to, and
adds django-q2's task results. Every step deletes in chunks of PRUNE_CHUNK_ROWS rows, each in
its own short transaction (core/retention.py). A step that fails is logged and the others
still run; the pass then raises, so that the scheduled task is recorded as failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from core.accounts import retention as accounts
from core.audit import retention as audit
from core.events import retention as events
from core.imports import retention as imports
from core.retention import older_than, prune_rows
from core.roi import rollup
from core.tools import retention as tools
from core.webhooks import retention as webhooks

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """Rows deleted (or, in a dry run, that would be) per table, in the order they were pruned."""

    counts: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # step -> error
    audit_kept: bool = False  # AUDIT_RETENTION_DAYS is not set

    def add(self, counts: dict[str, int]) -> None:
        for table, rows in counts.items():
            self.counts[table] = self.counts.get(table, 0) + rows

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def prune_task_results(now: datetime, *, dry_run: bool, chunk_size: int) -> dict[str, int]:
    """django-q2's task results, successful and failed, stopped before the cutoff. Q_CLUSTER's
    save_limit caps the successes it keeps, but not the failures."""
    from django_q.models import Task

    rows = Task.objects.filter(stopped__lt=older_than(now, days=settings.RETENTION_TASK_RESULTS_DAYS))
    return prune_rows(rows, chunk_size=chunk_size, dry_run=dry_run)


def _events(now: datetime, *, dry_run: bool, chunk_size: int) -> dict[str, int]:
    # A dry run deletes no delivery, so the events that only those deliveries keep would not
    # show as prunable: tell the events step which deliveries the real pass deletes first.
    going = [webhooks.prunable(now)] if dry_run else []
    return events.prune_events(now, dry_run=dry_run, chunk_size=chunk_size, referrers_going=going)


def _audit(now: datetime, *, dry_run: bool, chunk_size: int) -> dict[str, int]:
    # The ROI rollup counts every pending audit row and freezes the pruned days first.
    return audit.prune_audit(now, dry_run=dry_run, chunk_size=chunk_size, freeze=rollup.freeze_before)


def prune_heartbeats(now: datetime, *, dry_run: bool, chunk_size: int) -> dict[str, int]:
    """Heartbeat rows of worker and dispatcher processes that died without removing theirs."""
    from core.ops.heartbeat import FORGET_AFTER
    from core.ops.models import Heartbeat

    return prune_rows(Heartbeat.objects.filter(beat__lt=now - FORGET_AFTER), chunk_size=chunk_size,
                      dry_run=dry_run)


Step = Callable[..., dict[str, int]]
STEPS: list[tuple[str, Step]] = [
    ("webhook deliveries", webhooks.prune_deliveries),
    ("events", _events),
    ("idempotency records", tools.prune_idempotency),
    ("batch runs", tools.prune_batches),
    ("import files", imports.prune_import_files),
    ("import row errors", imports.prune_import_errors),
    ("task results", prune_task_results),
    ("heartbeats", prune_heartbeats),
    ("log-in records", accounts.prune_login_records),
    ("audit rows", _audit),
]


def prune(*, now: datetime | None = None, dry_run: bool = False, chunk_size: int | None = None,
          raise_on_failure: bool = True) -> Outcome:
    """Delete what is past retention; with dry_run count it and delete nothing."""
    now = now or timezone.now()
    chunk_size = chunk_size or settings.PRUNE_CHUNK_ROWS
    outcome = Outcome(audit_kept=audit.first_kept_audit_day(now) is None)
    for name, step in STEPS:
        try:
            outcome.add(step(now, dry_run=dry_run, chunk_size=chunk_size))
        except Exception as exc:  # noqa: BLE001 - one table's trouble must not stop the others
            log.exception("prune: %s failed", name)
            outcome.failed[name] = f"{type(exc).__name__}: {exc}"[:500]
    if outcome.failed and raise_on_failure:
        raise RuntimeError(f"prune failed for {', '.join(outcome.failed)}: {outcome.failed}")
    return outcome
