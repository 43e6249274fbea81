"""The usage rollup stays equal to the audit rows: inserts, deletes, updates, baseline edits."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.management import call_command
from django.db import connection

from core.audit.models import AuditEntry
from core.roi import rollup
from core.roi.models import FROM_THE_START, Baseline, Usage
from core.roi.services import roi_metrics
from tests.roi.recompute import expected_for, from_result
from tests.roi.world import SPAN, at, audit


def matches_recomputation(date_from: date = SPAN[0], date_to: date = SPAN[1], group_by: str = "day") -> bool:
    result = roi_metrics(date_from, date_to, group_by).as_dict()
    return from_result(result, group_by) == expected_for(date_from, date_to, group_by)


def snapshot() -> set[tuple]:
    rollup.fold()
    fields = ("level", "period_start", "tool", "user_pk", "username", "department", "operations", "successful",
              "saved_ms")
    return {row for row in Usage.objects.exclude(operations=0).values_list(*fields)}


def test_rebuild_gives_what_the_triggers_kept(sample):
    rollup.fold()  # SQLite: count them now, so that the deletes below go through the triggers
    AuditEntry.objects.filter(pk__in=[r.pk for r in sample[::7]]).delete()
    kept = snapshot()
    assert kept
    rollup.rebuild()
    assert snapshot() == kept


def test_changing_a_baseline_recomputes_that_tool(sample):
    baseline = Baseline.objects.get(tool="ax_create_salesorder")
    baseline.seconds = 600
    baseline.save()
    assert matches_recomputation()
    Baseline.objects.create(tool="no_baseline_tool", seconds=75)
    assert matches_recomputation(group_by="month")
    Baseline.objects.filter(tool="ax_post_payment").delete()
    assert matches_recomputation(group_by="week")
    renamed = Baseline.objects.get(tool="ax_get_customer")
    renamed.tool = "ax_check_inventory_typo"
    renamed.save()
    assert matches_recomputation()


def test_editing_only_the_note_does_not_rebuild(world, monkeypatch):
    calls = []
    monkeypatch.setattr(rollup, "rebuild", lambda tools=None, since=None: calls.append((tools, since)))
    baseline = Baseline.objects.get(tool="ax_post_payment")
    baseline.note = "measured in the 2025 time study"
    baseline.save()
    assert calls == []
    baseline.seconds = 150
    baseline.save()
    assert calls == [({"ax_post_payment"}, FROM_THE_START)]
    baseline.effective_from = date(2025, 3, 1)  # moved later: the days from the start on are affected
    baseline.save()
    assert calls[-1] == ({"ax_post_payment"}, FROM_THE_START)
    Baseline.objects.create(tool="ax_post_payment", effective_from=date(2025, 5, 2), seconds=10)
    assert calls[-1] == ({"ax_post_payment"}, date(2025, 5, 2))


def test_deleted_and_changed_audit_rows_are_uncounted(sample, world):
    rollup.fold()
    AuditEntry.objects.filter(pk__in=[r.pk for r in sample[::5]]).delete()
    assert matches_recomputation()
    # Rows not counted yet (SQLite: above the watermark) changed before they are counted.
    fresh = [audit("ax_post_payment", world.carol, created=at("2025-03-03"), duration_ms=n) for n in range(5)]
    AuditEntry.objects.filter(pk=fresh[0].pk).delete()
    AuditEntry.objects.filter(pk=fresh[1].pk).update(success=False)
    AuditEntry.objects.filter(pk__in=[r.pk for r in sample[1::9]]).update(duration_ms=1, success=True)
    AuditEntry.objects.filter(pk__in=[r.pk for r in sample[2::9]]).update(replayed=True)
    AuditEntry.objects.filter(pk__in=[r.pk for r in sample[3::9]]).update(created=at("2025-02-14"))
    assert matches_recomputation(group_by="week")
    world.bob.delete()  # his audit rows keep his name and department; user becomes NULL
    assert AuditEntry.objects.filter(username="bob", user__isnull=True).exists()
    assert matches_recomputation(group_by="month")


def test_no_operations_left_means_no_entry(world):
    row = audit("ax_create_salesorder", world.bob, created=at("2025-06-02"))
    row.delete()
    result = roi_metrics("2025-06-02", "2025-06-02", "day").as_dict()
    assert result["by_tool"] == [] and result["by_user"] == [] and result["total_operations"] == 0


def test_missing_triggers_are_reinstalled_and_the_rollup_rebuilt(sample):
    before = snapshot()
    with connection.cursor() as cursor:
        for name in rollup._installed_triggers(cursor):
            cursor.execute(f"DROP TRIGGER {name}" if connection.vendor == "sqlite"
                           else f"DROP TRIGGER {name} ON {rollup.AUDIT}")
    assert not rollup.installed()
    audit("ax_create_salesorder", None, created=at("2025-02-02"))  # not seen by any trigger
    assert rollup.ensure_installed() is True
    assert rollup.installed() and rollup.ensure_installed() is False
    assert snapshot() != before and matches_recomputation()


def test_roi_rebuild_command(sample):
    Usage.objects.all().delete()
    call_command("roi_rebuild", verbosity=0)
    assert matches_recomputation()


@pytest.mark.django_db(transaction=True)
def test_a_flush_leaves_no_negative_rows(world):
    audit("ax_create_salesorder", world.bob, created=at("2025-06-02"))
    call_command("flush", interactive=False, verbosity=0)  # deletes table by table, as test teardown does
    assert not Usage.objects.exists()


def test_migrate_schedules_the_fold(db):
    from django_q.models import Schedule

    from core.roi.signals import install_rollup
    from core.roi.tasks import fold_rollup

    install_rollup(sender=None)
    assert Schedule.objects.get(name="fold ROI rollup").func == "core.roi.tasks.fold_rollup"
    fold_rollup()
