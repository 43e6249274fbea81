"""Keep the rollup in step: triggers after migrate, a tool's rows after its baseline changes."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connection

from core.roi import rollup
from core.roi.models import Baseline


def install_rollup(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """post_migrate: (re)install the triggers when missing or outdated (then rebuild), and
    schedule the fold of new audit rows."""
    if using != DEFAULT_DB_ALIAS:
        return
    tables = set(connection.introspection.table_names())
    if {rollup.AUDIT, rollup.USAGE, rollup.BASELINE, rollup.WATERMARK, rollup.PENDING, rollup.HORIZON} <= tables:
        rollup.ensure_installed()
    if "django_q_schedule" in tables:
        from django_q.models import Schedule

        Schedule.objects.update_or_create(name="fold ROI rollup", defaults={
            "func": "core.roi.tasks.fold_rollup", "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1})


def remember_baseline(sender, instance: Baseline, **kwargs) -> None:
    """pre_save: the stored tool and seconds, to rebuild only when they change."""
    previous = None
    if instance.pk is not None:
        previous = Baseline.objects.filter(pk=instance.pk).values_list("tool", "seconds").first()
    instance._roi_previous = previous


def baseline_saved(sender, instance: Baseline, **kwargs) -> None:
    previous = getattr(instance, "_roi_previous", None)
    if previous == (instance.tool, instance.seconds):
        return  # only the note changed
    rollup.rebuild({instance.tool} | ({previous[0]} if previous else set()))


def baseline_deleted(sender, instance: Baseline, **kwargs) -> None:
    rollup.rebuild({instance.tool})
