"""The overview (counts, failures, latest calls, areas) and the tool list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.audit.models import AuditEntry
from core.tools.models import BatchRun
from tests.dashboard.conftest import audit, batch_run
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db


def test_overview_counts_today_and_lists_the_latest_calls(as_reader, writer, reader):
    audit(writer, tool="ax_create_salesorder")
    audit(writer, tool="ax_get_customer", success=False, error_code="CUST_NOT_FOUND")
    audit(reader, tool="ax_check_inventory")
    # Before midnight today: counted nowhere in "today", still listed among the latest calls.
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    audit(reader, tool="ax_get_salesorder", ago=timezone.now() - midnight + timedelta(minutes=5))
    batch_run(reader, "B-running", status=BatchRun.Status.RUNNING, total=4, processed=1)
    batch_run(writer, "B-other", status=BatchRun.Status.QUEUED)

    response = as_reader.get("/overview/")

    assert response.status_code == 200
    counts = response.context["counts"]
    assert (counts["calls"], counts["failures"]) == (3, 1)
    assert counts["failure_rate"] == 33.3
    assert response.context["active_batches"] == 1  # a reader sees their own batches only
    assert [row["error_code"] for row in response.context["top_errors"]] == ["CUST_NOT_FOUND"]
    html = response.content.decode()
    assert html.count("<code>ax_") >= 4
    assert "ax_get_salesorder" in html
    today = timezone.localdate().isoformat()
    assert f'href="/audit/?success=failed&amp;date_from={today}"' in html
    assert 'href="/batches/"' in html and 'href="/tools/"' in html


def test_overview_for_an_admin_counts_every_active_batch(as_admin, writer, reader):
    batch_run(reader, "B-1", status=BatchRun.Status.RUNNING, total=4, processed=1)
    batch_run(writer, "B-2", status=BatchRun.Status.QUEUED)
    assert as_admin.get("/overview/").context["active_batches"] == 2


def test_overview_refuses_other_methods(as_reader):
    assert as_reader.post("/overview/").status_code == 405


def test_overview_needs_a_read_role(as_stakeholder, as_outsider):
    assert as_stakeholder.get("/overview/").status_code == 403
    assert as_outsider.get("/overview/").status_code == 403


def test_overview_htmx_refresh_returns_the_live_fragment(as_reader, writer):
    audit(writer, tool="ax_create_salesorder")
    response = as_reader.get("/overview/", headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="overview-live"')
    assert 'hx-trigger="every 10s"' in html
    assert "<html" not in html and "Areas" not in html
    assert "HX-Request" in response["Vary"]


def test_tools_lists_every_tool_with_its_role(as_reader):
    response = as_reader.get("/tools/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<code>ax_batch_operations</code>" in html and "MCP_Write" in html
    assert 'href="/audit/?tool=ax_get_customer"' in html


def test_tools_refuses_other_methods_and_other_roles(as_reader, as_stakeholder):
    assert as_reader.post("/tools/").status_code == 405
    assert as_stakeholder.get("/tools/").status_code == 403


def test_tools_search_over_htmx_returns_only_the_matching_rows(as_reader):
    response = as_reader.get("/tools/?q=inventory", headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section class="card" id="tool-results">')
    assert "ax_check_inventory" in html and "ax_adjust_inventory" in html
    assert "ax_create_customer" not in html and "<html" not in html


def test_overview_counts_imported_records_apart_from_tool_calls(as_reader, writer):
    audit(writer, tool="ax_create_salesorder", duration_ms=40)
    audit(writer, tool="ax_get_customer", duration_ms=20, success=False, error_code="CUST_NOT_FOUND")
    # An import's rows: one per record, 0 ms each, via import or (one-off) migration.
    AuditEntry.objects.bulk_create([
        AuditEntry(tool="import.customers", user=writer, username="writer", via="import" if n % 2 else "migration",
                   success=True, duration_ms=0, batch_id="IMP-1") for n in range(1234)])

    response = as_reader.get("/overview/")

    counts = response.context["counts"]
    assert (counts["calls"], counts["failures"], counts["imported"], counts["last_hour"]) == (2, 1, 1234, 2)
    assert counts["avg_ms"] == 30  # over the two calls, not diluted by the imports' 0 ms
    assert counts["failure_rate"] == 50.0
    html = response.content.decode()
    assert '<span class="value" data-stat="imported">1,234</span>' in html  # thousands separators
    assert '<span class="value" data-stat="avg-ms">30 <small>ms</small></span>' in html
    latest = [entry.tool for entry in response.context["recent"]]
    assert latest == ["ax_get_customer", "ax_create_salesorder"]  # imported records are not calls
    assert "import.customers" not in html


def test_overview_numbers_have_thousands_separators(as_reader, writer):
    AuditEntry.objects.bulk_create([AuditEntry(tool="ax_check_inventory", user=writer, username="writer",
                                               via="http", success=True, duration_ms=1500) for _ in range(1001)])
    html = as_reader.get("/overview/").content.decode()
    assert '<span class="value" data-stat="calls">1,001</span>' in html
    assert '<span class="value" data-stat="avg-ms">1,500 <small>ms</small></span>' in html
    assert "1,001 in the last hour" in html


def test_overview_keeps_the_health_report_for_admins_only(as_admin, as_reader):
    assert 'aria-label="Health"' in as_admin.get("/overview/").content.decode()
    assert 'aria-label="Health"' not in as_reader.get("/overview/").content.decode()
