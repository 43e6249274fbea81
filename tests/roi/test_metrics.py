"""ax_get_roi_metrics: the story's shape, exact figures, and what is (not) counted."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from core.audit.models import AuditEntry
from core.errors import ToolError
from core.roi.models import Baseline
from core.roi.services import roi_metrics
from core.tools.pipeline import call_tool
from tests.roi.recompute import expected_for, from_result
from tests.roi.world import SPAN, at, audit

RANGES = [
    SPAN,  # partial month, two whole months, partial month
    (date(2025, 2, 1), date(2025, 3, 31)),  # whole months only
    (date(2025, 2, 10), date(2025, 2, 20)),  # inside one month
    (date(2025, 2, 15), date(2025, 2, 15)),  # one day
    (date(2025, 1, 31), date(2025, 2, 1)),  # across a month boundary
    (date(2024, 12, 1), date(2025, 1, 31)),  # starts before the first row
]


def metrics(user, date_from, date_to, group_by="tool") -> dict:
    return call_tool("ax_get_roi_metrics", {"date_from": str(date_from), "date_to": str(date_to),
                                            "group_by": group_by}, user)


@pytest.mark.parametrize("date_from,date_to", RANGES)
@pytest.mark.parametrize("group_by", ["tool", "user", "department", "day", "week", "month"])
def test_figures_equal_an_independent_recomputation(world, sample, date_from, date_to, group_by):
    result = metrics(world.boss, date_from, date_to, group_by)
    assert from_result(result, group_by) == expected_for(date_from, date_to, group_by)


def test_result_has_the_story_shape(world, sample):
    result = metrics(world.boss, "2025-02-01", "2025-02-28", "day")
    assert {"total_operations", "total_time_saved_hours", "total_cost_saved_eur", "by_tool", "by_user",
            "by_department", "by_day"} <= set(result)
    assert result["currency"] == "EUR" and result["group_by"] == "day"
    entry = result["by_tool"][0]
    assert set(entry) == {"tool", "baseline_sec", "operations", "successful", "avg_time_saved_sec",
                          "total_time_saved_hours", "cost_saved_eur"}
    assert [e["day"] for e in result["by_day"]] == [f"2025-02-{d:02d}" for d in range(1, 29)]
    costs = [e["cost_saved_eur"] for e in result["by_tool"]]
    assert costs == sorted(costs, reverse=True)


def test_periods_without_operations_are_listed_with_zeros(world):
    audit("ax_create_salesorder", world.bob, created=at("2025-03-05"))
    result = metrics(world.boss, "2025-03-01", "2025-03-31", "week")
    assert [e["week"] for e in result["by_week"]] == ["2025-W09", "2025-W10", "2025-W11", "2025-W12", "2025-W13",
                                                      "2025-W14"]
    assert result["by_week"][0]["week_start"] == "2025-02-24"
    assert [e["operations"] for e in result["by_week"]] == [0, 1, 0, 0, 0, 0]
    months = metrics(world.boss, "2025-01-15", "2025-03-05", "month")["by_month"]
    assert [(e["month"], e["operations"]) for e in months] == [("2025-01", 0), ("2025-02", 0), ("2025-03", 1)]


def test_example_figures(world):
    # bob: FIN 70.50/h; alice: own 80.25/h; carol: OPS without rate, so the default 50/h.
    audit("ax_create_salesorder", world.bob, created=at("2025-12-01"), duration_ms=30_000)  # 270 s saved
    audit("ax_create_salesorder", world.alice, created=at("2025-12-02"), duration_ms=400_000)  # slower: 0
    audit("ax_create_salesorder", world.carol, created=at("2025-12-03"), success=False)  # failed: 0
    audit("ax_post_payment", world.carol, created=at("2025-12-06", "23:59:59.999999"), duration_ms=0)  # 120 s
    audit("ax_post_payment", world.carol, created=at("2025-12-07", "00:00:00"), duration_ms=0)  # outside
    result = metrics(world.boss, "2025-12-01", "2025-12-06")
    assert result["total_operations"] == 4 and result["successful_operations"] == 3
    # 270 s x 70.50/h = 5.2875 -> 5.29; 120 s x 50/h = 1.6667 -> 1.67; total 6.9542 -> 6.95
    assert result["total_cost_saved_eur"] == Decimal("6.95")
    assert result["total_time_saved_hours"] == Decimal("0.11")  # 390 s
    orders = next(e for e in result["by_tool"] if e["tool"] == "ax_create_salesorder")
    assert orders == {"tool": "ax_create_salesorder", "baseline_sec": 300, "operations": 3, "successful": 2,
                      "avg_time_saved_sec": Decimal("90.0"), "total_time_saved_hours": Decimal("0.08"),
                      "cost_saved_eur": Decimal("5.29")}
    assert [(e["user"], e["cost_saved_eur"]) for e in result["by_user"]] == [
        ("bob", Decimal("5.29")), ("carol", Decimal("1.67")), ("alice", Decimal("0.00"))]
    assert [(e["department"], e["name"]) for e in result["by_department"]] == [("FIN", "Finance"),
                                                                                ("OPS", "Operations")]


def test_rounds_half_up_once_at_the_end(world):
    Baseline.objects.create(tool="ax_tiny", seconds=18)
    world.dave.profile.hourly_rate = Decimal("1.00")
    world.dave.profile.save()
    # 18 s at 1.00/h is exactly half a cent (0.005) and 0.005 hours: both round up.
    audit("ax_tiny", world.dave, created=at("2025-05-01"), duration_ms=0)
    result = metrics(world.boss, "2025-05-01", "2025-05-01")
    assert result["total_cost_saved_eur"] == Decimal("0.01")
    assert result["total_time_saved_hours"] == Decimal("0.01")
    # Three such operations: 1.5 cents -> 0.02, not three times a rounded 0.01.
    audit("ax_tiny", world.dave, created=at("2025-05-01"), duration_ms=0)
    audit("ax_tiny", world.dave, created=at("2025-05-01"), duration_ms=0)
    assert metrics(world.boss, "2025-05-01", "2025-05-01")["total_cost_saved_eur"] == Decimal("0.02")


def test_rates_user_then_department_then_default(world, settings):
    settings.ROI_DEFAULT_HOURLY_RATE = 36
    for user in (world.alice, world.bob, world.carol, world.dave):
        audit("ax_create_salesorder", user, created=at("2025-06-02"), duration_ms=0)  # 300 s = 1/12 h
    by_user = {e["user"]: e["cost_saved_eur"] for e in metrics(world.boss, "2025-06-02", "2025-06-02")["by_user"]}
    assert by_user == {"alice": Decimal("6.69"), "bob": Decimal("5.88"), "carol": Decimal("3.00"),
                       "dave": Decimal("3.00")}


def test_a_rate_edited_on_the_department_applies_from_today(world):
    audit("ax_create_salesorder", world.bob, created=at("2025-06-02"), duration_ms=0)
    today = timezone.now().date()
    audit("ax_create_salesorder", world.bob, created=at(today.isoformat()), duration_ms=0)
    assert metrics(world.boss, "2025-06-02", "2025-06-02")["total_cost_saved_eur"] == Decimal("5.88")
    world.fin.hourly_rate = Decimal("120.00")
    world.fin.save()
    # Earlier days keep the rate of their time; today's operations take the new one.
    assert metrics(world.boss, "2025-06-02", "2025-06-02")["total_cost_saved_eur"] == Decimal("5.88")
    by_user = metrics(world.boss, today, today, "user")["by_user"]
    assert [(e["user"], e["cost_saved_eur"]) for e in by_user if e["user"] == "bob"] == [("bob", Decimal("10.00"))]


def test_a_call_counts_the_moment_it_is_committed(world, erp):
    today = str(timezone.now().date())  # a UTC day, like the audit rows' days
    before = metrics(world.boss, today, today)
    call_tool("ax_create_salesorder", {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001",
                                                                                 "quantity": 1}]}, world.bob)
    after = metrics(world.boss, today, today)
    orders = next(e for e in after["by_tool"] if e["tool"] == "ax_create_salesorder")
    assert orders["operations"] == 1 and orders["successful"] == 1
    # The earlier ax_get_roi_metrics call counts too, as an operation without a baseline.
    assert after["total_operations"] == before["total_operations"] + 2


@pytest.mark.django_db(transaction=True)  # batch operations run on threads: they see committed data only
def test_batch_envelope_and_replays_are_not_counted_twice(world, erp):
    batch = {"requests": [
        {"tool": "ax_create_salesorder", "arguments": {"customer_account": "CUST-001",
                                                       "lines": [{"item_id": "ITEM-001", "quantity": 1}]},
         "idempotency_key": "edi-1"},
        {"tool": "ax_check_inventory", "arguments": {"item_id": "ITEM-001"}},
        {"tool": "ax_get_customer", "arguments": {"customer_account": "CUST-404"}},  # fails
    ], "max_parallel": 1}
    call_tool("ax_batch_operations", batch, world.bob)
    call_tool("ax_batch_operations", batch, world.bob)  # edi-1 replays; the others run again
    today = str(timezone.now().date())  # a UTC day, like the audit rows' days
    assert AuditEntry.objects.filter(tool="ax_batch_operations").count() == 2
    assert AuditEntry.objects.filter(replayed=True).count() == 1
    by_tool = {e["tool"]: e for e in metrics(world.boss, today, today)["by_tool"]}
    assert "ax_batch_operations" not in by_tool
    assert by_tool["ax_create_salesorder"]["operations"] == 1
    assert by_tool["ax_check_inventory"]["operations"] == 2
    assert (by_tool["ax_get_customer"]["operations"], by_tool["ax_get_customer"]["successful"]) == (2, 0)
    assert by_tool["ax_get_customer"]["cost_saved_eur"] == 0


def test_imported_records_count_one_operation_each(world):
    from core.db import fast_insert

    row = {"tool": "import.customers", "user_id": world.bob.pk, "username": "bob", "department": "FIN",
           "via": "import", "arguments_digest": "", "success": True, "error_code": "", "error_message": "",
           "duration_ms": 0, "idempotency_key": "", "replayed": False, "batch_id": "job-1",
           "created": at("2025-07-01")}
    fast_insert(AuditEntry, [row] * 10)  # raw SQL, as the importer writes them: no Django signal
    audit("ax_bulk_import", world.bob, created=at("2025-07-01"), duration_ms=5_000)
    result = metrics(world.boss, "2025-07-01", "2025-07-01")
    assert result["total_operations"] == 10
    assert result["by_tool"][0]["tool"] == "import.customers"
    assert result["total_time_saved_hours"] == Decimal("0.33")  # 10 x 120 s


@pytest.mark.parametrize("arguments,field", [
    ({"date_from": "2025-12-06", "date_to": "2025-12-01"}, "date_to"),
    ({"date_from": "2022-01-01", "date_to": "2025-01-01"}, "date_to"),  # 1097 days
    ({"date_from": "2025-02-30", "date_to": "2025-03-01"}, "date_from"),
    ({"date_from": "2025-12-01", "date_to": "20251206"}, "date_to"),
    ({"date_from": "2025-12-01", "date_to": "2025-12-06", "group_by": "year"}, "group_by"),
    ({"date_from": "2025-12-01"}, None),
])
def test_invalid_arguments_are_refused(world, arguments, field):
    with pytest.raises(ToolError) as refused:
        call_tool("ax_get_roi_metrics", arguments, world.boss)
    assert refused.value.code == "VALIDATION_ERROR"
    if field:
        assert refused.value.field == field


def test_three_years_are_allowed(world):
    assert roi_metrics("2022-01-01", "2024-12-31", "month").total.operations == 0


def test_needs_the_admin_role(world):
    with pytest.raises(ToolError) as refused:
        metrics(world.bob, "2025-01-01", "2025-01-31")
    assert refused.value.code == "FORBIDDEN"


def test_dates_outside_the_supported_years_are_a_validation_error(admin):
    import pytest as _pytest

    from core.errors import ToolError
    from core.tools.pipeline import call_tool

    for date_from, date_to in (("9999-12-01", "9999-12-31"), ("0001-01-01", "0001-01-02")):
        with _pytest.raises(ToolError) as exc:
            call_tool("ax_get_roi_metrics", {"date_from": date_from, "date_to": date_to}, admin)
        assert exc.value.code == "VALIDATION_ERROR"
