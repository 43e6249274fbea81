"""ax_set_roi_baseline: an admin sets a tool's manual time; the figures follow."""

from __future__ import annotations

import pytest
from django.utils import timezone

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
