"""Effective-dated baselines and hourly rates: every operation is priced with the values in force
on its day, so a change from a later day leaves every earlier figure as it was."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db.models import F

from core.accounts.models import Department
from core.audit.models import AuditEntry
from core.db import fast_insert
from core.roi import history, rollup
from core.roi.models import FROM_THE_START, HourlyRate, Usage
from core.roi.services import roi_metrics
from tests.roi.recompute import expected_for, from_result
from tests.roi.world import SPAN, at, audit

GROUPINGS = ["tool", "user", "department", "day", "week", "month"]
RANGES = [SPAN, (date(2025, 2, 1), date(2025, 3, 31)), (date(2025, 2, 10), date(2025, 2, 20)),
          (date(2025, 3, 1), date(2025, 3, 31)), (date(2025, 1, 31), date(2025, 2, 1))]


def every_figure(date_from: date, date_to: date) -> dict:
    return {g: roi_metrics(date_from, date_to, g).as_dict() for g in GROUPINGS}


def matches_recomputation(date_from: date, date_to: date, group_by: str) -> bool:
    return from_result(roi_metrics(date_from, date_to, group_by).as_dict(), group_by) == \
        expected_for(date_from, date_to, group_by)


@pytest.fixture
def upto_today(world, sample):
    """The sample, and operations today, so that "up to today" includes a busy today."""
    today = history.today()
    for user in (world.alice, world.bob, world.carol):
        audit("ax_create_salesorder", user, created=at(today.isoformat(), "00:00:01"), duration_ms=1_000)
    return SPAN[0], today


def test_a_baseline_effective_tomorrow_changes_no_figure_up_to_today(world, upto_today):
    start, today = upto_today
    before = {span: every_figure(*span) for span in [(start, today), (today, today)]}
    tomorrow = today + timedelta(days=1)
    history.set_baseline("ax_create_salesorder", 900, effective_from=tomorrow)
    history.set_baseline("no_baseline_tool", 75, effective_from=tomorrow)  # a first baseline, from tomorrow
    assert {span: every_figure(*span) for span in before} == before
    # Tomorrow's operations are priced with the new value.
    audit("ax_create_salesorder", world.dave, created=at(tomorrow.isoformat()), duration_ms=0)
    audit("no_baseline_tool", world.dave, created=at(tomorrow.isoformat()), duration_ms=0)
    later = roi_metrics(tomorrow, tomorrow, "tool").as_dict()
    assert {e["tool"]: (e["baseline_sec"], e["total_time_saved_hours"]) for e in later["by_tool"]} == {
        "ax_create_salesorder": (900, Decimal("0.25")), "no_baseline_tool": (75, Decimal("0.02"))}


def test_a_rate_effective_tomorrow_changes_no_figure_up_to_today(world, upto_today):
    start, today = upto_today
    before = {span: every_figure(*span) for span in [(start, today), (today, today)]}
    tomorrow = today + timedelta(days=1)
    history.set_rate(department_id=world.fin.pk, rate=Decimal("200.00"), effective_from=tomorrow)
    history.set_rate(user_id=world.alice.pk, rate=None, effective_from=tomorrow)  # FIN's rate from tomorrow
    history.set_rate(user_id=world.dave.pk, rate=Decimal("1.00"), effective_from=tomorrow)
    assert {span: every_figure(*span) for span in before} == before
    # The accounts still show the rates in force today.
    world.fin.refresh_from_db()
    world.alice.profile.refresh_from_db()
    assert (world.fin.hourly_rate, world.alice.profile.hourly_rate) == (Decimal("70.50"), Decimal("80.25"))
    for user in (world.alice, world.bob, world.dave):
        audit("ax_create_salesorder", user, created=at(tomorrow.isoformat()), duration_ms=0)  # 300 s each
    by_user = {e["user"]: e["cost_saved_eur"] for e in roi_metrics(tomorrow, tomorrow, "user").as_dict()["by_user"]}
    assert by_user == {"alice": Decimal("16.67"), "bob": Decimal("16.67"), "dave": Decimal("0.08")}


def test_changes_from_past_days_reprice_the_days_from_them_on(world, sample):
    untouched = every_figure(SPAN[0], date(2025, 2, 16))
    # Baselines: a change mid-month, and a first one for a tool that had none.
    history.set_baseline("ax_create_salesorder", 900, effective_from=date(2025, 3, 10))
    history.set_baseline("no_baseline_tool", 75, effective_from=date(2025, 2, 17))
    history.set_baseline("ax_post_payment", 10, effective_from=date(2025, 3, 1))  # on a month's first day
    # Rates: changes within months (those months are priced per day), one ending a user's own rate.
    history.set_rate(department_id=world.fin.pk, rate=Decimal("99.99"), effective_from=date(2025, 2, 17))
    history.set_rate(user_id=world.alice.pk, rate=None, effective_from=date(2025, 3, 20))
    history.set_rate(user_id=world.carol.pk, rate=Decimal("12.34"), effective_from=date(2025, 3, 1))
    history.set_rate(department_id=world.ops.pk, rate=Decimal("44.00"), effective_from=date(2025, 4, 5))
    assert every_figure(SPAN[0], date(2025, 2, 16)) == untouched
    for date_from, date_to in RANGES:
        for group_by in GROUPINGS:
            assert matches_recomputation(date_from, date_to, group_by), (date_from, date_to, group_by)
    # A month read whole from the month level agrees with its days.
    march = roi_metrics(date(2025, 3, 1), date(2025, 3, 31), "month").as_dict()
    days = roi_metrics(date(2025, 3, 1), date(2025, 3, 31), "day").as_dict()
    assert march["total_cost_saved_eur"] == days["total_cost_saved_eur"]
    assert march["by_month"][0]["cost_saved_eur"] == march["total_cost_saved_eur"]


def test_a_baseline_change_recomputes_only_the_days_from_its_first_day(world, sample):
    rollup.fold()
    rows = Usage.objects.filter(tool="ax_create_salesorder", level=Usage.Level.TOOL_DAY)
    # Mark the stored rollup: a day it recomputes loses the mark, a day it leaves keeps it.
    rows.update(saved_ms=F("saved_ms") + 7)
    marked = dict(rows.filter(period_start__lt=date(2025, 3, 10)).values_list("pk", "saved_ms"))
    history.set_baseline("ax_create_salesorder", 301, effective_from=date(2025, 3, 10))
    assert dict(rows.filter(period_start__lt=date(2025, 3, 10)).values_list("pk", "saved_ms")) == marked
    # March's month rows: its first nine days as stored (marked), the rest recounted.
    march = Usage.objects.filter(tool="ax_create_salesorder", period_start__gte=date(2025, 3, 1),
                                 period_start__lt=date(2025, 4, 1))
    month = sum(march.filter(level=Usage.Level.TOOL_MONTH).values_list("saved_ms", flat=True))
    assert month == sum(march.filter(level=Usage.Level.TOOL_DAY).values_list("saved_ms", flat=True))
    assert matches_recomputation(date(2025, 3, 10), SPAN[1], "day")  # the days recounted lost the mark


def test_a_value_for_days_whose_audit_rows_were_pruned_is_refused(world, sample):
    from core.errors import ToolError
    from core.tools.pipeline import call_tool

    rollup.freeze_before(date(2025, 2, 15))
    for arguments in ({"tool": "ax_create_salesorder", "baseline_sec": 1, "effective_from": "2025-02-14"},):
        with pytest.raises(ToolError) as refused:
            call_tool("ax_set_roi_baseline", arguments, world.boss)
        assert (refused.value.code, refused.value.field) == ("VALIDATION_ERROR", "effective_from")
        assert "2025-02-15" in refused.value.message
    call_tool("ax_set_roi_baseline", {"tool": "ax_create_salesorder", "baseline_sec": 1,
                                      "effective_from": "2025-02-15"}, world.boss)
    assert matches_recomputation(date(2025, 2, 15), SPAN[1], "day")


def test_rates_edited_on_profiles_and_departments_are_kept_as_history(world):
    today = history.today()

    def entries(**subject) -> list[tuple[date, Decimal | None]]:
        return list(HourlyRate.objects.filter(**subject).order_by("effective_from")
                    .values_list("effective_from", "rate"))

    assert entries(user=world.alice) == [(FROM_THE_START, Decimal("80.25"))]  # set up with her rate
    assert entries(department=world.fin) == [(FROM_THE_START, Decimal("70.50"))]
    assert entries(user=world.carol) == []
    profile = world.carol.profile
    profile.hourly_rate = Decimal("60.00")  # a first rate opens the history
    profile.save()
    profile.hourly_rate = Decimal("65.00")  # a change is in force from today
    profile.save()
    profile.hourly_rate = None  # the same day again: that entry changes
    profile.save()
    assert entries(user=world.carol) == [(FROM_THE_START, Decimal("60.00")), (today, None)]
    profile.department = world.fin  # no rate change: no entry
    profile.save()
    assert len(entries(user=world.carol)) == 2
    lab = Department.objects.create(code="LAB", name="Lab")
    assert entries(department=lab) == []
    # An entry from the history itself shows on the account when it is in force today.
    history.set_rate(department_id=lab.pk, rate=Decimal("51.00"), effective_from=today - timedelta(days=3))
    history.set_rate(department_id=lab.pk, rate=Decimal("52.00"), effective_from=today + timedelta(days=3))
    lab.refresh_from_db()
    assert lab.hourly_rate == Decimal("51.00")
    HourlyRate.objects.filter(department=lab, rate=Decimal("51.00")).delete()
    lab.refresh_from_db()
    assert lab.hourly_rate is None


def test_records_of_one_off_migrations_are_reported_apart(world):
    def row(via: str, **more) -> dict:
        return {"tool": "import.customers", "user_id": world.bob.pk, "username": "bob", "department": "FIN",
                "via": via, "arguments_digest": "", "success": True, "error_code": "", "error_message": "",
                "duration_ms": 0, "idempotency_key": "", "replayed": False, "batch_id": "job-1",
                "created": at("2025-07-01"), **more}

    fast_insert(AuditEntry, [row("migration")] * 7 + [row("import")] * 3 + [row("migration", replayed=True)])
    fast_insert(AuditEntry, [row("migration", created=at("2025-07-02"))] * 2)
    result = roi_metrics("2025-07-01", "2025-07-01").as_dict()
    assert (result["total_operations"], result["excluded_operations"]) == (3, {"migration": 7})
    assert roi_metrics("2025-07-01", "2025-07-02").as_dict()["excluded_operations"] == {"migration": 9}
    assert roi_metrics("2025-07-03", "2025-07-03").as_dict()["excluded_operations"] == {"migration": 0}
    migrated = AuditEntry.objects.filter(via="migration", replayed=False, created=at("2025-07-01"))
    AuditEntry.objects.filter(pk__in=list(migrated.values_list("pk", flat=True)[:2])).delete()
    AuditEntry.objects.filter(pk=migrated.first().pk).update(via="import")  # counted after all
    result = roi_metrics("2025-07-01", "2025-07-01").as_dict()
    assert (result["total_operations"], result["excluded_operations"]) == (4, {"migration": 4})
    rollup.rebuild()
    assert roi_metrics("2025-07-01", "2025-07-01").as_dict() == result


def test_staff_admins_keep_the_rate_history_in_the_django_admin(client, staff_admin, world):
    client.force_login(staff_admin)
    assert client.get("/admin/roi/hourlyrate/").status_code == 200
    tomorrow = history.today() + timedelta(days=1)
    response = client.post("/admin/roi/hourlyrate/add/", {
        "department": world.fin.pk, "effective_from": tomorrow.isoformat(), "rate": "88.00", "note": "2027 tariff"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert HourlyRate.objects.filter(department=world.fin, effective_from=tomorrow, rate=Decimal("88.00")).exists()
    world.fin.refresh_from_db()
    assert world.fin.hourly_rate == Decimal("70.50")  # in force today
    both = client.post("/admin/roi/hourlyrate/add/", {
        "user": world.bob.pk, "department": world.fin.pk, "effective_from": "2025-01-01", "rate": "1.00"})
    assert both.status_code == 200 and "not both" in both.content.decode()
    rollup.freeze_before(date(2025, 2, 1))
    early = client.post("/admin/roi/baseline/add/", {"tool": "ax_x", "effective_from": "2025-01-15",
                                                    "seconds": 5, "note": ""})
    assert early.status_code == 200 and "were pruned" in early.content.decode()
    early_rate = client.post("/admin/roi/hourlyrate/add/", {"user": world.bob.pk, "effective_from": "2025-01-15",
                                                           "rate": "1.00"})
    assert early_rate.status_code == 200 and "were pruned" in early_rate.content.decode()
