"""Periodic jobs of the tools area, registered with django-q2's scheduler after migrate."""

from __future__ import annotations


def ensure_schedules(**kwargs) -> None:
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="recover stale batches",
        defaults={"func": "core.tools.tasks.recover_stale_batches", "schedule_type": Schedule.MINUTES,
                  "minutes": 1, "repeats": -1},
    )
