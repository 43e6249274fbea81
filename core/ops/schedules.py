"""Periodic jobs of operations, registered with django-q2's scheduler after migrate."""

from __future__ import annotations

PRUNE_SCHEDULE = "prune old rows"


def ensure_schedules(**kwargs) -> None:
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=PRUNE_SCHEDULE,
        defaults={"func": "core.ops.tasks.prune", "schedule_type": Schedule.HOURLY, "repeats": -1},
    )
