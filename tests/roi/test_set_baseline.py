"""ax_set_roi_baseline and ax_list_roi_baselines: an admin sets a tool's manual time from a day on,
and lists each tool's history; the figures follow."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from core.audit.models import AuditEntry
from core.errors import ToolError
from core.roi.models import Baseline
from core.tools.pipeline import call_tool

pytestmark = pytest.mark.django_db


def _saved_per_operation(admin) -> float:
    today = timezone.now().date().isoformat()
    result = call_tool("ax_get_roi_metrics", {"date_from": today, "date_to": today, "group_by": "tool"}, admin)
    return next(r for r in result["by_tool"] if r["tool"] == "ax_get_customer")["avg_time_saved_sec"]


def test_a_baseline_is_created_changed_and_left_alone_when_equal(admin, erp):
    first = call_tool("ax_set_roi_baseline", {"tool": " import.pricelists ", "seconds": 30, "note": "a row"}, admin)
    assert (first["tool"], first["seconds"], first["note"], first["created"]) == ("import.pricelists", 30, "a row",
                                                                                 True)
    again = call_tool("ax_set_roi_baseline", {"tool": "import.pricelists", "seconds": 30}, admin)
    assert (again["created"], again["updated"], again["note"]) == (False, first["updated"], "a row")
    changed = call_tool("ax_set_roi_baseline", {"tool": "import.pricelists", "seconds": 45}, admin)
    assert Baseline.objects.get(tool="import.pricelists").seconds == changed["seconds"] == 45


def test_changing_a_baseline_recomputes_the_tools_savings(admin, erp):
    call_tool("ax_get_customer", {"customer_account": "CUST-001"}, admin)
    call_tool("ax_set_roi_baseline", {"tool": "ax_get_customer", "seconds": 100}, admin)
    assert 99 <= _saved_per_operation(admin) <= 100
    call_tool("ax_set_roi_baseline", {"tool": "ax_get_customer", "seconds": 400}, admin)
    assert 399 <= _saved_per_operation(admin) <= 400


@pytest.mark.parametrize("arguments, code", [
    ({"tool": "   ", "seconds": 5}, "MISSING_FIELD"),
    ({"tool": "ax_x", "seconds": -1}, "VALIDATION_ERROR"),
    ({"tool": "ax_x", "seconds": 86_401}, "VALIDATION_ERROR"),
])
def test_bad_baselines_are_refused(admin, arguments, code):
    with pytest.raises(ToolError) as refused:
        call_tool("ax_set_roi_baseline", arguments, admin)
    assert refused.value.code == code
    assert not Baseline.objects.filter(tool="ax_x").exists()


def test_only_admins_set_baselines(writer):
    with pytest.raises(ToolError) as refused:
        call_tool("ax_set_roi_baseline", {"tool": "ax_x", "seconds": 5}, writer)
    assert refused.value.code == "FORBIDDEN"


def test_baseline_sec_and_effective_from(admin, erp):
    today = timezone.now().date()
    first = call_tool("ax_set_roi_baseline", {"tool": "import.pricelists", "baseline_sec": 30, "note": "a row"},
                      admin)
    assert (first["baseline_sec"], first["seconds"], first["effective_from"]) == (30, 30, today.isoformat())
    later = call_tool("ax_set_roi_baseline", {"tool": "import.pricelists", "baseline_sec": 20,
                                              "effective_from": "2999-01-01"}, admin)
    assert (later["created"], later["note"]) == (True, "a row")  # a new value keeps the note before it
    assert list(Baseline.objects.filter(tool="import.pricelists").values_list("effective_from", "seconds")) == [
        (today, 30), (date(2999, 1, 1), 20)]


@pytest.mark.parametrize("arguments, field", [
    ({"tool": "ax_x"}, None),  # neither
    ({"tool": "ax_x", "seconds": 5, "baseline_sec": 5}, None),  # both
    ({"tool": "ax_x", "baseline_sec": 5, "effective_from": "2025-02-30"}, "effective_from"),
    ({"tool": "ax_x", "baseline_sec": 5, "effective_from": "1969-12-31"}, "effective_from"),
])
def test_exactly_one_of_seconds_and_baseline_sec_and_a_real_day(admin, arguments, field):
    with pytest.raises(ToolError) as refused:
        call_tool("ax_set_roi_baseline", arguments, admin)
    assert refused.value.code == "VALIDATION_ERROR"
    assert refused.value.field == field
    if field is None:
        assert "exactly one of the two" in refused.value.message
    assert not Baseline.objects.filter(tool="ax_x").exists()


def test_list_roi_baselines_gives_each_tools_history(admin, erp):
    today = timezone.now().date()
    call_tool("ax_set_roi_baseline", {"tool": "ax_create_salesorder", "baseline_sec": 240,
                                      "effective_from": (today + timedelta(days=5)).isoformat()}, admin)
    listed = call_tool("ax_list_roi_baselines", {}, admin)["baselines"]
    assert [b["tool"] for b in listed] == sorted(b["tool"] for b in listed)
    orders = next(b for b in listed if b["tool"] == "ax_create_salesorder")
    assert (orders["baseline_sec"], orders["effective_from"]) == (300, "1970-01-01")  # in force today
    assert [(h["effective_from"], h["baseline_sec"]) for h in orders["history"]] == [
        ("1970-01-01", 300), ((today + timedelta(days=5)).isoformat(), 240)]
    one = call_tool("ax_list_roi_baselines", {"tool": "ax_create_salesorder"}, admin)["baselines"]
    assert one == [orders]
    assert call_tool("ax_list_roi_baselines", {"tool": "ax_nothing"}, admin) == {"baselines": []}
    call_tool("ax_set_roi_baseline", {"tool": "import.later", "baseline_sec": 9, "effective_from": "2999-01-01"},
              admin)
    later = call_tool("ax_list_roi_baselines", {"tool": "import.later"}, admin)["baselines"][0]
    assert (later["baseline_sec"], later["effective_from"], len(later["history"])) == (None, None, 1)
    entry = AuditEntry.objects.filter(tool="ax_list_roi_baselines").latest("id")
    assert (entry.user_id, entry.success) == (admin.pk, True)


def test_only_admins_list_baselines(writer):
    with pytest.raises(ToolError) as refused:
        call_tool("ax_list_roi_baselines", {}, writer)
    assert refused.value.code == "FORBIDDEN"
