"""django-q2 tasks of operations: the hourly prune (scheduled after migrate, core/ops/schedules.py)."""

from __future__ import annotations

import logging

from core.ops import prune as retention

log = logging.getLogger(__name__)


def prune() -> dict[str, int]:
    """Delete what is past retention; the counts per table are the task's result."""
    outcome = retention.prune()
    if outcome.total:
        log.info("pruned %d rows: %s", outcome.total, ", ".join(f"{t} {n}" for t, n in outcome.counts.items() if n))
    return outcome.counts
