"""Pruning audit rows (AUDIT_RETENTION_DAYS) changes no ROI figure: not of the days pruned, not
of the days kept, and neither does a rebuild afterwards."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.core.management import call_command

from core.audit.models import AuditEntry
from core.ops.prune import prune
from core.roi import rollup
from core.roi.models import Baseline, Usage
from core.roi.services import roi_metrics
from tests.roi.recompute import expected_for, from_result
from tests.roi.world import SPAN, at, audit

NOW = datetime(2025, 4, 20, 12, tzinfo=UTC)
HORIZON = date(2025, 2, 15)  # mid-month: February's month rows are half pruned, half kept
DAYS = (NOW.date() - HORIZON).days
RANGES = [SPAN, (date(2025, 2, 1), date(2025, 3, 31)), (date(2025, 2, 14), date(2025, 2, 15)),
          (date(2025, 1, 20), date(2025, 2, 14)), (HORIZON, SPAN[1])]
GROUPINGS = ["tool", "day", "week", "month"]


def figures() -> dict:
    return {(start, end, g): roi_metrics(start, end, g).as_dict() for start, end in RANGES for g in GROUPINGS}


def midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def matches_recomputation(date_from: date, date_to: date, group_by: str) -> bool:
    return from_result(roi_metrics(date_from, date_to, group_by).as_dict(), group_by) == \
        expected_for(date_from, date_to, group_by)


@pytest.fixture
def retention(settings):
    settings.AUDIT_RETENTION_DAYS = DAYS
    return settings


def test_pruning_audit_rows_keeps_the_figures_of_pruned_and_kept_days(sample, retention):
    before = figures()
    assert before[(*SPAN, "day")]["total_operations"] > 0
    pruned = AuditEntry.objects.filter(created__lt=midnight(HORIZON)).count()
    kept = AuditEntry.objects.count() - pruned
    assert pruned > 50 and kept > 50

    outcome = prune(now=NOW, chunk_size=40)  # several chunks

    assert outcome.counts["tools_auditentry"] == pruned
    assert AuditEntry.objects.count() == kept and not AuditEntry.objects.filter(created__lt=midnight(HORIZON)).exists()
    assert rollup.current_horizon() == HORIZON
    assert figures() == before
    for group_by in GROUPINGS:  # the kept days still equal their audit rows
        assert matches_recomputation(HORIZON, SPAN[1], group_by)


def test_a_rebuild_after_the_prune_recounts_only_the_kept_days(sample, retention):
    before = figures()
    prune(now=NOW)
    rollup.rebuild()
    assert figures() == before
    Usage.objects.filter(period_start__gte=HORIZON).delete()  # the kept days' rollup lost: recounted
    call_command("roi_rebuild", stdout=io.StringIO())
    assert figures() == before
    rollup.ensure_installed()
    assert figures() == before


def test_the_rebuild_command_says_where_it_starts(sample, retention, capsys):
    prune(now=NOW)
    call_command("roi_rebuild")
    assert f"rebuilt from {HORIZON} on" in capsys.readouterr().out


def pruned_days_figures() -> dict:
    """The figures of the pruned days, without by_tool's baseline_sec (the current baseline)."""
    result = {}
    for group_by in GROUPINGS:
        data = roi_metrics(SPAN[0], HORIZON - timedelta(days=1), group_by).as_dict()
        data["by_tool"] = [{k: v for k, v in row.items() if k != "baseline_sec"} for row in data["by_tool"]]
        result[group_by] = data
    return result


def test_a_baseline_change_after_the_prune_reprices_only_the_kept_days(sample, retention):
    prune(now=NOW)
    pruned_days = pruned_days_figures()
    baseline = Baseline.objects.get(tool="ax_create_salesorder")
    baseline.seconds = 900
    baseline.save()
    Baseline.objects.create(tool="no_baseline_tool", seconds=75)
    assert pruned_days_figures() == pruned_days  # priced with the baselines of their time
    for group_by in GROUPINGS:
        assert matches_recomputation(HORIZON, SPAN[1], group_by)
    # February as a whole: its pruned half as it was, its kept half with the new baselines.
    february = roi_metrics(date(2025, 2, 1), date(2025, 2, 28), "month").as_dict()
    days = roi_metrics(date(2025, 2, 1), date(2025, 2, 28), "day").as_dict()
    assert february["total_operations"] == days["total_operations"]
    assert february["total_cost_saved_eur"] == days["total_cost_saved_eur"]


def test_rows_not_counted_yet_are_counted_before_they_go(sample, retention):
    # No metrics call before the prune: on SQLite the sample is above the watermark, on
    # PostgreSQL it is still queued. The prune must count it before deleting it.
    expected = {(start, end, g): expected_for(start, end, g) for start, end in RANGES for g in GROUPINGS}
    prune(now=NOW)
    for (start, end, group_by), figures_then in expected.items():
        assert from_result(roi_metrics(start, end, group_by).as_dict(), group_by) == figures_then


def test_a_pruned_day_keeps_its_figures_whatever_is_deleted_later(sample, world):
    rollup.freeze_before(HORIZON)
    before = figures()
    # Deleting a counted row of a frozen day un-counts nothing.
    AuditEntry.objects.filter(created__lt=midnight(date(2025, 2, 1))).delete()
    assert figures() == before
    # A row of a frozen day written late and deleted before any fold: counted as it goes.
    late = audit("ax_create_salesorder", world.bob, created=at("2025-02-03"), duration_ms=1_000)
    late.delete()
    after = roi_metrics("2025-02-03", "2025-02-03", "day").as_dict()
    assert after["total_operations"] == before[(*SPAN, "day")]["by_day"][14]["operations"] + 1
    # Days from the horizon on behave as always: a deleted row is un-counted.
    row = AuditEntry.objects.filter(created__gte=midnight(HORIZON), tool="ax_create_salesorder").first()
    row.delete()
    assert matches_recomputation(HORIZON, SPAN[1], "day")


def test_the_horizon_never_moves_back(db):
    assert rollup.current_horizon() is None
    assert rollup.freeze_before(date(2025, 3, 1)) == date(2025, 3, 1)
    assert rollup.freeze_before(date(2025, 2, 1)) == date(2025, 3, 1)
    assert rollup.current_horizon() == date(2025, 3, 1)
    assert rollup.freeze_before(date(2025, 3, 2)) == date(2025, 3, 2)


def test_a_dry_run_freezes_nothing(sample, retention):
    outcome = prune(now=NOW, dry_run=True)
    assert outcome.counts["tools_auditentry"] == AuditEntry.objects.filter(created__lt=midnight(HORIZON)).count()
    assert rollup.current_horizon() is None
