"""The ROI pages: the report (range, groupings, headline numbers, charts, table), its CSV and
Excel exports, and the baselines an admin edits."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from openpyxl import load_workbook

from core.accounts.models import Department
from core.accounts.roles import MCP_WRITE
from core.accounts.services import create_user
from core.audit.models import AuditEntry
from core.roi.figures import fte, working_days
from core.roi.models import Baseline
from core.roi.services import roi_metrics
from dashboard.roi_forms import auto_interval, presets, today
from tests.helpers import HTMX, logged_in
from tests.roi.world import at, audit, seed_baselines

pytestmark = pytest.mark.django_db

FORMULA_USER = '=HYPERLINK("http://evil.example","x")'
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(autouse=True)
def _baselines(db) -> None:
    seed_baselines()  # a transactional test elsewhere may have flushed the migration's rows


def day(n: int) -> date:
    """n days before today (UTC)."""
    return today() - timedelta(days=n)


@pytest.fixture
def usage(writer):
    """Calls of three tools by users of two departments over several days, one long ago.

    writer: SALES (55.00/h); olga: OPS with her own 80.00/h; the formula-named user: OPS (no
    department rate, so the default 50/h).
    """
    ops = Department.objects.create(code="OPS", name="Operations")
    olga = create_user("olga", MCP_WRITE, department=ops, hourly_rate=Decimal("80.00"))
    evil = create_user(FORMULA_USER, MCP_WRITE, department=ops)
    rows = [
        ("ax_create_salesorder", writer, 1, 2_000, True),
        ("ax_create_salesorder", writer, 3, 1_000, True),
        ("ax_create_salesorder", writer, 3, 1_000, False),  # failed: counts, saves nothing
        ("ax_create_customer", olga, 2, 500, True),
        ("ax_get_customer", olga, 10, 100, True),
        ("ax_post_payment", evil, 5, 300, True),
        ("ax_create_customer", olga, 40, 500, True),  # outside the default 30 days
    ]
    for tool, user, ago, ms, ok in rows:
        audit(tool, user, created=at(day(ago).isoformat()), duration_ms=ms, success=ok)
    return {"olga": olga, "evil": evil}


def default_range() -> tuple[date, date]:
    return day(29), today()


def headline(response, key: str) -> str:
    match = re.search(rf'data-stat="{key}">([^<]*)<', response.content.decode())
    assert match, key
    return match.group(1)


def figures(response) -> dict:
    match = re.search(r'<script id="roi-figures" type="application/json">(.*?)</script>', response.content.decode(),
                      re.S)
    assert match
    return json.loads(match.group(1))


# ---- the report ----------------------------------------------------------------------------------

def test_a_stakeholder_sees_the_last_30_days_with_the_engines_numbers(as_stakeholder, usage):
    response = as_stakeholder.get("/roi/")
    assert response.status_code == 200
    start, end = default_range()
    expected = roi_metrics(start, end, "day")
    metrics = response.context["metrics"]
    assert (metrics.date_from, metrics.date_to) == (start, end)
    assert metrics.total == expected.total
    assert metrics.total.operations == 6
    assert headline(response, "operations") == "6"
    assert headline(response, "hours") == f"{expected.total.time_saved_hours:,.2f}"
    assert headline(response, "money") == f"{expected.total.cost_saved:,.2f}"
    days = working_days(start, end)
    assert headline(response, "fte") == f"{fte(expected.total, days):,.2f}"
    assert response.context["rows"][0].row.key == expected.groups["tool"][0].key  # by tool, largest first
    assert [r.row.figures for r in response.context["rows"]] == [r.figures for r in expected.groups["tool"]]
    html = response.content.decode()
    assert f'value="{start.isoformat()}"' in html and f'value="{end.isoformat()}"' in html
    assert "Auto (day)" in html
    assert f"{days} working days" in html
    assert 'id="roi-view"' in html and "<html" in html


def test_an_admin_may_open_the_report_and_operations_roles_may_not(as_admin, as_writer, as_reader, as_outsider,
                                                                     usage):
    assert as_admin.get("/roi/").status_code == 200
    for client in (as_writer, as_reader, as_outsider):
        response = client.get("/roi/")
        assert response.status_code == 403
        assert b"needs the role Stakeholder" in response.content


def test_an_anonymous_visitor_is_sent_to_the_login(client):
    for url in ("/roi/", "/roi/export.csv", "/roi/export.xlsx", "/roi/baselines/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_the_report_answers_get_only(as_stakeholder):
    for url in ("/roi/", "/roi/export.csv", "/roi/export.xlsx"):
        assert as_stakeholder.post(url).status_code == 405, url


def test_an_htmx_request_gets_the_report_fragment(as_stakeholder, usage):
    start, end = day(2), today()
    response = as_stakeholder.get(f"/roi/?date_from={start}&date_to={end}", headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="roi-view"')
    assert "<html" not in html and "Return on investment" not in html
    assert headline(response, "operations") == "2"
    assert 'id="roi-figures"' in html
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_a_history_restore_gets_the_whole_page(as_stakeholder):
    response = as_stakeholder.get("/roi/", headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert b"<html" in response.content


def test_range_interval_and_table_grouping(as_stakeholder, usage):
    start, end = day(45), today()
    response = as_stakeholder.get(f"/roi/?date_from={start}&date_to={end}&group_by=week&table=department")
    assert response.status_code == 200
    expected = roi_metrics(start, end, "week")
    assert response.context["metrics"].total == expected.total
    assert response.context["metrics"].total.operations == 7  # the old call is in range now
    rows = response.context["rows"]
    assert [(r.label, r.detail) for r in rows] == [("Operations", "OPS"), ("Sales", "SALES")]
    assert [r.row.figures for r in rows] == [r.figures for r in expected.groups["department"]]
    assert sum(r.share for r in rows) == Decimal("100.0")
    timeline = figures(response)["timeline"]
    assert timeline["data"][0]["type"] == "bar"
    assert timeline["data"][0]["x"] == [r.key for r in expected.groups["week"]]
    assert timeline["data"][0]["y"] == [float(r.figures.cost_saved) for r in expected.groups["week"]]
    assert b'class="current" aria-current="true">Department' in response.content


def test_a_table_by_another_period_than_the_chart(as_stakeholder, usage):
    start, end = day(40), today()
    response = as_stakeholder.get(f"/roi/?date_from={start}&date_to={end}&group_by=day&table=month")
    metrics = response.context["metrics"]
    assert set(metrics.groups) == {"tool", "user", "department", "day", "month"}
    assert [r.row.key for r in response.context["rows"]] == [r.key for r in roi_metrics(start, end, "month")
                                                              .groups["month"]]
    assert len(figures(response)["timeline"]["data"][0]["x"]) == 41


def test_auto_interval_follows_the_length_of_the_range():
    assert auto_interval(date(2025, 1, 1), date(2025, 3, 3)) == "day"
    assert auto_interval(date(2025, 1, 1), date(2025, 12, 31)) == "week"
    assert auto_interval(date(2024, 1, 1), date(2025, 12, 31)) == "month"


@pytest.mark.parametrize("query, field, message", [
    ("date_from=2025-03-10&date_to=2025-03-01", "date_to", "The end date is before the start date."),
    ("date_from=2020-01-01&date_to=2025-01-01", "date_to", "at most 1096 days"),
    ("date_from=2025-02-30", "date_from", "Enter a valid date."),
    ("date_from=yesterday", "date_from", "Enter a valid date."),
    ("date_from=9999-12-01&date_to=9999-12-31", "date_to", "Choose a date from 2000-01-01 to 2999-12-31."),
    ("date_from=0001-01-01&date_to=0001-01-31", "date_from", "Choose a date from 2000-01-01 to 2999-12-31."),
    ("group_by=fortnight", "group_by", "Select a valid choice."),
    ("table=customer", "table", "Select a valid choice."),
])
def test_a_bad_range_or_grouping_is_a_form_error_not_a_500(as_stakeholder, query, field, message):
    response = as_stakeholder.get(f"/roi/?{query}")
    assert response.status_code == 200
    assert response.context["metrics"] is None
    assert any(message in error for error in response.context["form"].errors[field])
    assert "Choose a valid range" in response.content.decode()
    fragment = as_stakeholder.get(f"/roi/?{query}", headers=HTMX)
    assert fragment.status_code == 200  # HTMX swaps only 2xx answers: the error must show
    html = fragment.content.decode()
    assert "<html" not in html and "Choose a valid range" in html and 'class="field-error"' in html


def test_presets_are_links_to_their_ranges(as_stakeholder):
    html = as_stakeholder.get("/roi/?table=user").content.decode()
    for preset in presets():
        assert f'>{preset.label}</a>' in html
        assert f"date_from={preset.start}&amp;date_to={preset.end}" in html or \
               f"table=user&amp;date_from={preset.start}&amp;date_to={preset.end}" in html
    assert 'aria-current="true">Last 30 days' in html.replace("\n", "").replace("  ", "")


def test_presets():
    names = {p.label: (p.start, p.end) for p in presets(date(2025, 3, 15))}
    assert names == {
        "Last 30 days": (date(2025, 2, 14), date(2025, 3, 15)),
        "This month": (date(2025, 3, 1), date(2025, 3, 15)),
        "Last month": (date(2025, 2, 1), date(2025, 2, 28)),
        "Last 90 days": (date(2024, 12, 16), date(2025, 3, 15)),
        "Year to date": (date(2025, 1, 1), date(2025, 3, 15)),
    }


def test_a_weekend_has_no_fte(as_stakeholder, usage):
    saturday = today() - timedelta(days=(today().weekday() - 5) % 7)
    response = as_stakeholder.get(f"/roi/?date_from={saturday}&date_to={saturday + timedelta(days=1)}")
    assert headline(response, "fte") == "—"


def test_each_headline_is_compared_with_the_period_before(as_stakeholder, writer):
    audit("ax_create_salesorder", writer, created=at(day(3).isoformat()), duration_ms=0)
    audit("ax_create_salesorder", writer, created=at(day(4).isoformat()), duration_ms=0)
    audit("ax_create_salesorder", writer, created=at(day(9).isoformat()), duration_ms=0)  # the week before
    response = as_stakeholder.get(f"/roi/?date_from={day(6)}&date_to={today()}")
    changes = {h.key: h for h in response.context["headlines"]}
    assert changes["operations"].previous == 1 and changes["operations"].change == Decimal("100.0")
    assert changes["money"].change == Decimal("100.0")
    previous = response.context["previous"]
    assert (previous.date_from, previous.date_to) == (day(13), day(7))
    assert "▲ +100.0 %" in response.content.decode()


def test_chart_labels_escape_user_text_and_the_page_embeds_it_as_json(as_stakeholder, writer):
    odd = create_user("<img src=x onerror=alert(1)>", MCP_WRITE,
                      department=Department.objects.create(code="<b>", name="<i>R&D</i>"))
    audit("ax_create_customer", odd, created=at(day(1).isoformat()), duration_ms=10)
    response = as_stakeholder.get("/roi/?table=user")
    html = response.content.decode()
    assert "<img src=x" not in html and "<i>R&D" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # the table cell, escaped by Django
    departments = figures(response)["departments"]["data"][0]["labels"]
    assert departments == ["&lt;i&gt;R&amp;D&lt;/i&gt; (&lt;b&gt;)"]


def test_no_operations_shows_an_empty_state_instead_of_charts(as_stakeholder):
    response = as_stakeholder.get("/roi/")
    assert headline(response, "operations") == "0"
    html = response.content.decode()
    assert 'id="roi-figures"' not in html and "data-roi-chart" not in html
    assert "data-roi-empty" in html and "No operations in this range." in html


def test_the_report_links_to_exports_of_the_current_view(as_stakeholder, as_admin, usage):
    start, end = day(20), day(1)
    response = as_stakeholder.get(f"/roi/?date_from={start}&date_to={end}&table=user")
    query = f"date_from={start}&amp;date_to={end}&amp;table=user"
    html = response.content.decode()
    assert f'href="/roi/export.csv?{query}"' in html and f'href="/roi/export.xlsx?{query}"' in html
    assert "Edit baselines" not in html
    assert "Edit baselines" in as_admin.get("/roi/").content.decode()


# ---- exports -------------------------------------------------------------------------------------

def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_csv_export_of_the_table(as_stakeholder, usage):
    start, end = default_range()
    response = as_stakeholder.get(f"/roi/export.csv?date_from={start}&date_to={end}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="roi_{start}_{end}_by_tool.csv"'
    rows = csv_rows(response)
    assert rows[0] == ["tool", "baseline_sec", "operations", "successful", "avg_time_saved_sec",
                       "total_time_saved_hours", "cost_saved_eur"]
    expected = roi_metrics(start, end, "day")
    assert [r[0] for r in rows[1:-1]] == [r.key for r in expected.groups["tool"]]
    assert rows[-1][0] == "Total" and Decimal(rows[-1][6]) == expected.total.cost_saved


def test_csv_export_neutralises_a_formula_like_user_name(as_stakeholder, usage):
    response = as_stakeholder.get("/roi/export.csv?table=user")
    rows = csv_rows(response)
    assert rows[0][0] == "user"
    names = [r[0] for r in rows[1:-1]]
    assert "'" + FORMULA_USER in names and FORMULA_USER not in names
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_xlsx_export_has_a_sheet_per_grouping_with_header_and_number_formats(as_stakeholder, usage):
    start, end = default_range()
    response = as_stakeholder.get(f"/roi/export.xlsx?date_from={start}&date_to={end}&table=month")
    assert response.status_code == 200
    assert response["Content-Type"] == XLSX
    assert response["Content-Disposition"] == f'attachment; filename="roi_{start}_{end}.xlsx"'
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["Summary", "By tool", "By user", "By department", "By day", "By month"]
    tools = book["By tool"]
    assert [c.value for c in tools[1]][:3] == ["tool", "baseline_sec", "operations"]
    assert tools["G2"].number_format == "#,##0.00"
    summary = {row[0].value: row[1] for row in book["Summary"].iter_rows(min_row=2)}
    assert summary["total_cost_saved_eur"].value == pytest.approx(float(roi_metrics(start, end).total.cost_saved))
    users = {c.value: c for c in book["By user"]["A"]}
    assert users[FORMULA_USER].data_type == "s" and users[FORMULA_USER].quotePrefix


def test_exports_follow_the_role_and_ignore_htmx(as_reader, as_stakeholder, usage):
    assert as_reader.get("/roi/export.csv").status_code == 403
    assert as_reader.get("/roi/export.xlsx").status_code == 403
    response = as_stakeholder.get("/roi/export.xlsx", headers=HTMX)
    assert response.status_code == 200 and response["Content-Type"] == XLSX


def test_an_export_with_a_bad_range_opens_the_report_with_the_error(as_stakeholder):
    for url in ("/roi/export.csv", "/roi/export.xlsx"):
        response = as_stakeholder.get(f"{url}?date_from=2025-03-10&date_to=2025-03-01")
        assert response.status_code == 302
        assert response["Location"] == "/roi/?date_from=2025-03-10&date_to=2025-03-01"


# ---- baselines -----------------------------------------------------------------------------------

def test_an_admin_sees_every_baseline_with_an_edit_form(as_admin):
    response = as_admin.get("/roi/baselines/")
    assert response.status_code == 200
    html = response.content.decode()
    order = Baseline.objects.get(tool="ax_create_salesorder")
    assert f'id="baseline-{order.pk}"' in html
    assert f'action="/roi/baselines/{order.pk}/"' in html and 'name="csrfmiddlewaretoken"' in html
    assert len(response.context["forms"]) == Baseline.objects.count()
    assert "/admin/roi/baseline/" in html  # the staff admin also gets the Django admin's list
    assert "ax_get_roi_metrics" in response.context["missing"]


def test_baselines_are_for_admins_only(as_stakeholder, as_writer):
    baseline = Baseline.objects.first()
    for client in (as_stakeholder, as_writer):
        assert client.get("/roi/baselines/").status_code == 403
        assert client.post(f"/roi/baselines/{baseline.pk}/", {"seconds": 1}).status_code == 403
        assert client.post("/roi/baselines/new/", {"tool": "x", "seconds": 1}).status_code == 403


def test_baseline_methods(as_admin):
    baseline = Baseline.objects.first()
    assert as_admin.post("/roi/baselines/").status_code == 405
    assert as_admin.get(f"/roi/baselines/{baseline.pk}/").status_code == 405
    assert as_admin.get("/roi/baselines/new/").status_code == 405
    assert as_admin.post("/roi/baselines/99999/", {"seconds": 1}).status_code == 404


def test_an_htmx_request_gets_the_baselines_table(as_admin):
    response = as_admin.get("/roi/baselines/", headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section class="card" id="baselines">') and "<html" not in html


def test_correcting_a_baseline_redirects_and_recomputes_the_days_it_covers(as_admin, admin, usage):
    before = roi_metrics(*default_range()).total
    baseline = Baseline.objects.get(tool="ax_create_salesorder")
    response = as_admin.post(f"/roi/baselines/{baseline.pk}/", {"seconds": 600, "note": "with the phone call"})
    assert response.status_code == 302
    assert response["Location"] == f"/roi/baselines/#baseline-{baseline.pk}"
    baseline.refresh_from_db()
    assert (baseline.seconds, baseline.note) == (600, "with the phone call")
    after = roi_metrics(*default_range()).total
    assert after.saved_ms == before.saved_ms + 2 * 300_000  # two successful orders, 300 s more each
    entry = LogEntry.objects.get(object_id=str(baseline.pk))
    assert entry.user_id == admin.pk and "seconds" in entry.get_change_message().lower()
    page = as_admin.get(response["Location"])
    assert "Baseline of ax_create_salesorder saved: 600 s per operation from the start" in page.content.decode()


def test_a_new_value_from_tomorrow_changes_no_figure_up_to_today(as_admin, usage):
    def savings() -> tuple:
        result = roi_metrics(*default_range(), "day").as_dict()
        orders = next(e for e in result["by_tool"] if e["tool"] == "ax_create_salesorder")
        return orders, result["total_cost_saved_eur"], result["total_time_saved_hours"], result["by_day"][:-1]

    before = savings()
    tomorrow = today() + timedelta(days=1)
    response = as_admin.post("/roi/baselines/new/", {"tool": "ax_create_salesorder", "seconds": 999,
                                                     "effective_from": tomorrow.isoformat(), "note": ""})
    added = Baseline.objects.get(tool="ax_create_salesorder", effective_from=tomorrow)
    assert response.status_code == 302 and response["Location"] == f"/roi/baselines/#baseline-{added.pk}"
    assert savings() == before  # (today counts one more operation: the dashboard's own call)
    html = as_admin.get("/roi/baselines/").content.decode()
    assert html.count('data-tool="ax_create_salesorder"') == 2
    assert 'data-tool="ax_create_salesorder" data-state="in force"' in html
    assert 'data-tool="ax_create_salesorder" data-state="upcoming"' in html
    assert f"Baseline of ax_create_salesorder added: 999 s per operation from {tomorrow}" in html
    assert "Seconds for ax_create_salesorder from the start" in html
    assert f"Seconds for ax_create_salesorder from {tomorrow}" in html


def test_an_invalid_baseline_is_shown_with_its_error(as_admin):
    baseline = Baseline.objects.get(tool="ax_get_customer")
    for seconds in ("-5", "86401", "", "ten"):
        response = as_admin.post(f"/roi/baselines/{baseline.pk}/", {"seconds": seconds})
        assert response.status_code == 422, seconds
        assert 'class="invalid"' in response.content.decode()
    baseline.refresh_from_db()
    assert baseline.seconds == 45


def test_baseline_forms_need_the_csrf_token(staff_admin):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_admin)
    baseline = Baseline.objects.first()
    assert client.post(f"/roi/baselines/{baseline.pk}/", {"seconds": 1}).status_code == 403
    assert client.post("/roi/baselines/new/", {"tool": "ax_x", "seconds": 1}).status_code == 403


def test_adding_a_baseline(as_admin):
    response = as_admin.post("/roi/baselines/new/", {"tool": " ax_get_roi_metrics ", "seconds": 600, "note": ""})
    created = Baseline.objects.get(tool="ax_get_roi_metrics")
    assert response.status_code == 302 and response["Location"] == f"/roi/baselines/#baseline-{created.pk}"
    duplicate = as_admin.post("/roi/baselines/new/", {"tool": "ax_get_roi_metrics", "seconds": 60})
    assert duplicate.status_code == 422
    assert "already exists" in duplicate.content.decode()


def test_an_admin_without_staff_status_gets_no_django_admin_link(admin):
    html = logged_in(admin).get("/roi/baselines/").content.decode()
    assert "/admin/roi/baseline/" not in html


def test_a_baseline_saved_over_htmx_redirects_the_whole_page(as_admin):
    baseline = Baseline.objects.get(tool="ax_get_customer")
    response = as_admin.post(f"/roi/baselines/{baseline.pk}/", {"seconds": 50, "note": "x"}, headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/roi/baselines/#baseline-{baseline.pk}"


# ---- plain names, what is not priced or not counted, CSV formats ---------------------------------

def test_tools_show_plain_names_and_unpriced_tools_apart(as_stakeholder, usage, writer):
    audit("ax_get_roi_metrics", writer, created=at(day(1).isoformat()))  # a tool without a baseline
    response = as_stakeholder.get("/roi/")
    html = response.content.decode()
    labels = [(r.label, r.title) for r in response.context["rows"]]
    assert ("Create sales order", "ax_create_salesorder") in labels
    assert [(r.label, r.title) for r in response.context["unpriced"]] == [("Get ROI metrics", "ax_get_roi_metrics")]
    assert 'title="ax_create_salesorder">Create sales order</a>' in html
    assert "data-unpriced" in html and "not priced" in html and 'class="badge bad"' not in html


def test_excluded_migration_records_are_said_on_the_page(as_stakeholder, usage, writer):
    for via in ("migration", "migration", "import"):
        entry = audit("import.customers", writer, created=at(day(2).isoformat()), duration_ms=0)
        AuditEntry.objects.filter(pk=entry.pk).update(via=via)
    response = as_stakeholder.get("/roi/")
    assert response.context["metrics"].excluded == {"migration": 2}
    html = response.content.decode()
    assert "data-excluded" in html and "<strong>2</strong> records of one-off migrations" in html
    assert headline(response, "operations") == "7"  # 6 and the import record that counts


def test_the_csv_follows_the_readers_format_and_remembers_it(as_stakeholder, usage):
    start, end = default_range()
    response = as_stakeholder.get(f"/roi/?date_from={start}&date_to={end}&csv=excel-de")
    html = response.content.decode()
    assert f'href="/roi/export.csv?date_from={start}&amp;date_to={end}&amp;table=tool&amp;csv=excel-de"' in html
    german = as_stakeholder.get(f"/roi/export.csv?date_from={start}&date_to={end}&csv=excel-de")
    rows = list(csv.reader(io.StringIO(german.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[-1][0] == "Total" and rows[-1][6] == f"{roi_metrics(start, end).total.cost_saved}".replace(".", ",")
    # Chosen once, kept for the next visit and export.
    assert "csv=excel-de" in as_stakeholder.get("/roi/").content.decode()
    assert b";" in as_stakeholder.get("/roi/export.csv").content.splitlines()[0]
    as_stakeholder.get("/roi/?csv=standard")
    assert as_stakeholder.get("/roi/export.csv").content.splitlines()[0].count(b",") == 6


# ---- the operations behind a figure ----------------------------------------------------------------

def test_a_tool_links_to_the_operations_behind_its_figures(as_stakeholder, usage):
    start, end = default_range()
    response = as_stakeholder.get("/roi/")
    orders = next(r for r in response.context["rows"] if r.title == "ax_create_salesorder")
    assert orders.href == f"/roi/operations/?tool=ax_create_salesorder&date_from={start}&date_to={end}"
    page = as_stakeholder.get(orders.href)
    assert page.status_code == 200
    rows = page.context["rows"]
    assert page.context["page"].paginator.count == orders.row.figures.operations == len(rows) == 3
    assert sum(p.saved_ms for p in rows) == orders.row.figures.saved_ms
    assert {p.baseline_sec for p in rows} == {300}
    html = page.content.decode()
    assert "Create sales order" in html and 'data-count="3"' in html and "<html" in html
    assert page.context["figure"].figures == orders.row.figures


def test_users_and_departments_link_to_their_operations_also_without_a_name(as_stakeholder, usage, writer):
    audit("ax_get_customer", None, created=at(day(1).isoformat()), duration_ms=5)  # no user, no department
    response = as_stakeholder.get("/roi/?table=user")
    links = {r.row.key: r.href for r in response.context["rows"]}
    page = as_stakeholder.get(links[None])
    assert "user=&" in links[None] and page.context["page"].paginator.count == 1
    assert page.context["rows"][0].entry.username == ""
    olga = as_stakeholder.get(links["olga"])
    assert olga.context["page"].paginator.count == 2  # her third call lies outside the 30 days
    departments = {r.row.key: r.href for r in as_stakeholder.get("/roi/?table=department").context["rows"]}
    assert as_stakeholder.get(departments["SALES"]).context["page"].paginator.count == 3
    assert as_stakeholder.get(departments[None]).context["page"].paginator.count == 1


def test_the_operations_page_paginates_exports_csv_and_serves_a_fragment(as_stakeholder, writer):
    for n in range(60):
        audit("ax_post_payment", writer, created=at(day(n % 5).isoformat(), f"10:{n:02d}:00"), duration_ms=n)
    url = f"/roi/operations/?tool=ax_post_payment&date_from={day(10)}&date_to={today()}"
    first = as_stakeholder.get(url)
    assert len(first.context["rows"]) == 50 and first.context["page"].paginator.num_pages == 2
    fragment = as_stakeholder.get(url + "&page=2", headers=HTMX)
    html = fragment.content.decode()
    assert html.lstrip().startswith('<section id="roi-operations"') and "<html" not in html
    assert len(fragment.context["rows"]) == 10
    exported = as_stakeholder.get(url + "&format=csv&csv=excel-de")
    assert exported["Content-Disposition"] == (f'attachment; filename="roi_operations_{day(10)}_{today()}'
                                               '_tool-ax_post_payment.csv"')
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["created", "tool", "operation", "user", "department", "via", "success", "error_code",
                       "duration_ms", "baseline_sec", "time_saved_sec", "hourly_rate"]
    assert len(rows) == 61
    assert rows[1][1:4] == ["ax_post_payment", "Post payment", "writer"]
    assert rows[1][9:] == ["120", "119,945", "55,00"]  # newest first: 120 s - 55 ms; SALES's rate


def test_the_operations_page_roles_methods_and_bad_input(as_stakeholder, as_admin, as_writer, client):
    assert as_admin.get("/roi/operations/").status_code == 200
    assert as_writer.get("/roi/operations/").status_code == 403
    assert client.get("/roi/operations/").status_code == 302
    assert as_stakeholder.post("/roi/operations/").status_code == 405
    bad = as_stakeholder.get("/roi/operations/?date_from=2025-03-10&date_to=2025-03-01")
    assert bad.status_code == 200 and "Choose a valid range" in bad.content.decode()
    assert as_stakeholder.get("/roi/operations/?tool=ax_x").context["page"].paginator.count == 0


def test_a_baseline_that_took_over_within_the_range_is_marked(as_stakeholder, usage):
    from core.roi.history import set_baseline

    set_baseline("ax_create_salesorder", 360, effective_from=day(2))
    response = as_stakeholder.get("/roi/")
    orders = next(r for r in response.context["rows"] if r.title == "ax_create_salesorder")
    assert (orders.row.baseline_sec, orders.baseline_since) == (360, day(2))
    # The order of day 1 is priced with 360 s, the successful one of day 3 with 300 s.
    assert orders.row.figures.saved_ms == (360_000 - 2_000) + (300_000 - 1_000)
    assert f"from {day(2):%-d %b}" in response.content.decode()


def test_one_excluded_record_is_said_in_the_singular(as_stakeholder, writer):
    entry = audit("import.customers", writer, created=at(day(1).isoformat()), duration_ms=0)
    AuditEntry.objects.filter(pk=entry.pk).update(via="migration")
    html = as_stakeholder.get("/roi/").content.decode()
    assert "<strong>1</strong> record of a one-off migration " in html
