"""Keep the rollup and the rate history in step: triggers after migrate, a tool's rows after its
baseline changes, a rate entry when a profile's or department's rate is edited."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connection

from core.accounts.models import Department, Profile
from core.roi import history, rollup
from core.roi.models import Baseline, HourlyRate


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


# --- Baselines: a change recomputes its tool from the first day it affects.

def remember_baseline(sender, instance: Baseline, **kwargs) -> None:
    """pre_save: the stored tool, seconds and first day, to rebuild only when they change."""
    previous = None
    if instance.pk is not None:
        previous = Baseline.objects.filter(pk=instance.pk).values_list("tool", "seconds", "effective_from").first()
    instance._roi_previous = previous


def baseline_saved(sender, instance: Baseline, **kwargs) -> None:
    previous = getattr(instance, "_roi_previous", None)
    if previous == (instance.tool, instance.seconds, instance.effective_from):
        return  # only the note changed
    tools, since = {instance.tool}, instance.effective_from
    if previous:
        tools.add(previous[0])
        since = min(since, previous[2])
    rollup.rebuild(tools, since=since)


def baseline_deleted(sender, instance: Baseline, **kwargs) -> None:
    rollup.rebuild({instance.tool}, since=instance.effective_from)


# --- Hourly rates: the history is the record; the account fields show the rate in force today.

def remember_account_rate(sender, instance: Profile | Department, **kwargs) -> None:
    """pre_save of a Profile or Department: its stored hourly rate (None for a new one)."""
    previous = None
    if instance.pk is not None:
        previous = type(instance).objects.filter(pk=instance.pk).values_list("hourly_rate", flat=True).first()
    instance._roi_previous_rate = previous


def account_rate_saved(sender, instance: Profile | Department, created: bool, **kwargs) -> None:
    if getattr(instance, "_roi_previous_rate", None) == instance.hourly_rate:
        return
    if isinstance(instance, Profile):
        history.account_rate_changed(user_id=instance.user_id, rate=instance.hourly_rate)
    else:
        history.account_rate_changed(department_id=instance.pk, rate=instance.hourly_rate)


def rate_entry_changed(sender, instance: HourlyRate, **kwargs) -> None:
    """post_save and post_delete of an HourlyRate: the account field shows the rate in force today."""
    history.show_rate_on_account(user_id=instance.user_id, department_id=instance.department_id)
