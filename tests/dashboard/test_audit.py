"""The audit log page: filters, pagination, the HTMX table and links to batches."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from core.accounts.models import Department
from core.accounts.services import create_user
from dashboard.audit import PAGE_SIZE
from tests.dashboard.conftest import audit, batch_run
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db


@pytest.fixture
def entries(writer, reader):
    """Writer (department SALES) and reader calls, some failed, one three days old."""
    return {
        "order": audit(writer, tool="ax_create_salesorder", department="SALES"),
        "failed": audit(writer, tool="ax_create_salesorder", success=False, error_code="INSUFFICIENT_STOCK",
                        department="SALES", error_message="only 5 available"),
        "read": audit(reader, tool="ax_get_customer"),
        "old": audit(reader, tool="ax_get_customer", ago=timedelta(days=3)),
    }


def listed(response) -> set[int]:
    return {entry.pk for entry in response.context["page"].object_list}


def test_audit_lists_every_entry_newest_first(as_reader, entries):
    response = as_reader.get("/audit/")
    assert response.status_code == 200
    assert [e.pk for e in response.context["page"].object_list] == [
        entries["read"].pk, entries["failed"].pk, entries["order"].pk, entries["old"].pk]
    html = response.content.decode()
    assert "INSUFFICIENT_STOCK" in html and "only 5 available" in html
    assert 'id="audit-filters"' in html


@pytest.mark.parametrize("query, expected", [
    ("tool=ax_create_salesorder", {"order", "failed"}),
    ("user=WRITER", {"order", "failed"}),
    ("department=SALES", {"order", "failed"}),
    ("success=failed", {"failed"}),
    ("success=ok&user=reader", {"read", "old"}),
    ("tool=ax_get_customer&success=ok", {"read", "old"}),
])
def test_audit_filters(as_reader, entries, query, expected):
    response = as_reader.get(f"/audit/?{query}")
    assert response.status_code == 200
    assert listed(response) == {entries[name].pk for name in expected}
    assert response.context["filtered"] is True


def test_audit_filters_by_date_range_in_whole_days(as_reader, entries):
    old_day = entries["old"].created.date()
    assert listed(as_reader.get(f"/audit/?date_to={old_day}")) == {entries["old"].pk}
    assert listed(as_reader.get(f"/audit/?date_from={old_day + timedelta(days=1)}")) == {
        entries[n].pk for n in ("order", "failed", "read")}
    assert listed(as_reader.get(f"/audit/?date_from={old_day}&date_to={old_day}")) == {entries["old"].pk}


def test_audit_filters_by_department_offered_in_the_form(as_reader, entries):
    Department.objects.create(code="OPS", name="Operations")
    html = as_reader.get("/audit/").content.decode()
    assert '<option value="SALES">' in html and '<option value="OPS">' in html


def test_a_bad_filter_value_is_reported_and_the_others_still_apply(as_reader, entries):
    response = as_reader.get("/audit/?date_from=yesterday&tool=ax_create_salesorder&success=maybe")
    assert response.status_code == 200
    assert listed(response) == {entries["order"].pk, entries["failed"].pk}
    assert "date_from" in response.context["form"].errors and "success" in response.context["form"].errors
    reversed_range = as_reader.get("/audit/?date_from=2026-02-02&date_to=2026-02-01")
    assert "date_to" in reversed_range.context["form"].errors


def test_audit_paginates_and_page_links_keep_the_filters(as_reader, reader):
    for _ in range(PAGE_SIZE + 3):
        audit(reader, tool="ax_check_inventory")
    first = as_reader.get("/audit/?tool=ax_check_inventory")
    assert len(first.context["page"].object_list) == PAGE_SIZE
    html = first.content.decode()
    assert 'href="/audit/?tool=ax_check_inventory&amp;page=2"' in html
    assert 'hx-get="/audit/?tool=ax_check_inventory&amp;page=2"' in html
    second = as_reader.get("/audit/?tool=ax_check_inventory&page=2")
    assert len(second.context["page"].object_list) == 3
    assert as_reader.get("/audit/?page=999").context["page"].number == 1 + (PAGE_SIZE + 2) // PAGE_SIZE


def test_audit_htmx_request_returns_only_the_results(as_reader, entries):
    response = as_reader.get("/audit/?success=failed", headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="audit-results"')
    assert "<html" not in html and 'id="audit-filters"' not in html
    assert "INSUFFICIENT_STOCK" in html and "ax_get_customer" not in html
    assert "HX-Request" in response["Vary"]


def test_a_history_restore_gets_the_whole_page(as_reader, entries):
    response = as_reader.get("/audit/", headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert "<html" in response.content.decode()


def test_audit_refuses_other_methods(as_reader):
    assert as_reader.post("/audit/").status_code == 405


def test_audit_needs_a_read_role(as_stakeholder, as_outsider):
    assert as_stakeholder.get("/audit/").status_code == 403
    assert as_outsider.get("/audit/", headers=HTMX).status_code == 403


def test_an_entry_links_to_its_batch_for_those_who_may_open_it(as_reader, as_admin, reader, writer):
    batch_run(reader, "B-mine")
    batch_run(writer, "B-theirs")
    audit(reader, batch_id="B-mine")
    audit(writer, batch_id="B-theirs")
    html = as_reader.get("/audit/").content.decode()
    assert '<a href="/batches/B-mine/">' in html
    assert "B-theirs" in html and '<a href="/batches/B-theirs/">' not in html
    admin_html = as_admin.get("/audit/").content.decode()
    assert '<a href="/batches/B-theirs/">' in admin_html


def test_audit_filters_by_batch(as_reader, reader):
    batch_run(reader, "B-one")
    inside = audit(reader, batch_id="B-one")
    audit(reader)
    response = as_reader.get("/audit/?batch=B-one")
    assert listed(response) == {inside.pk}


def test_audit_user_field_suggests_usernames(as_reader, db):
    create_user("zoe", None)
    assert '<option value="zoe">' in as_reader.get("/audit/").content.decode()


def test_audit_exports_the_filtered_entries_as_csv(as_reader, entries, writer):
    audit(writer, tool="ax_create_customer", success=False, error_code="VALIDATION_ERROR",
          error_message="=HYPERLINK(\"http://evil\")")
    response = as_reader.get("/audit/?success=failed&format=csv&page=2")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["created", "tool", "username"]
    assert [(row[1], row[6]) for row in rows[1:]] == [
        ("ax_create_customer", "VALIDATION_ERROR"), ("ax_create_salesorder", "INSUFFICIENT_STOCK")]
    assert rows[1][7] == "'=HYPERLINK(\"http://evil\")"  # never a live formula in a spreadsheet


def test_the_export_link_keeps_the_filters(as_reader, entries):
    html = as_reader.get("/audit/?tool=ax_get_customer&page=1").content.decode()
    assert 'href="/audit/?tool=ax_get_customer&amp;format=csv"' in html
