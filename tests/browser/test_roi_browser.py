"""The ROI report in a real browser: a stakeholder lands on it, sees the charts drawn, changes
the range (a preset, then the date fields) and watches numbers and charts follow without a
reload, switches the table, and downloads the CSV and the Excel workbook."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from core.accounts.models import Department
from core.accounts.roles import MCP_WRITE
from core.accounts.services import create_user
from core.roi.services import roi_metrics
from dashboard.roi_forms import today
from tests.browser.conftest import login, screenshot, watch_csp
from tests.roi.world import at, audit, seed_baselines

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TIMELINE = "[data-roi-chart=timeline]"


@pytest.fixture
def usage(writer, stakeholder):
    """Successful calls of four tools by users of two departments over the last 80 days."""
    seed_baselines()
    ops = Department.objects.create(code="OPS", name="Operations", hourly_rate=Decimal("62.50"))
    olga = create_user("olga", MCP_WRITE, department=ops)
    piet = create_user("piet", MCP_WRITE, department=ops, hourly_rate=Decimal("75.00"))
    plan = [  # (tool, user, every n days, duration ms)
        ("ax_create_salesorder", writer, 2, 2_500),
        ("ax_create_invoice", writer, 3, 1_200),
        ("ax_create_customer", olga, 4, 900),
        ("ax_post_payment", piet, 5, 600),
        ("ax_get_customer", olga, 1, 80),
    ]
    for tool, user, every, ms in plan:
        for ago in range(0, 80, every):
            created = at((today() - timedelta(days=ago)).isoformat(), f"{9 + ago % 8:02d}:15:00")
            audit(tool, user, created=created, duration_ms=ms)


def stat(page, key: str):
    return page.locator(f"[data-stat={key}]")


def report_key(start, end, interval: str, table: str = "tool") -> str:
    return f"{start.isoformat()}/{end.isoformat()}/{interval}/{table}"


def shot(page, name: str) -> None:
    """A full-page screenshot from the top, so the sticky top bar is where a person sees it."""
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, name)


def timeline_points(page) -> int:
    return page.evaluate(f"document.querySelector('{TIMELINE}').data[0].x.length")


def test_a_stakeholder_changes_the_range_and_downloads_both_exports(page, usage, tmp_path):
    login(page, "stakeholder", "stake-pass-1")
    expect(page).to_have_url("/roi/")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link")).to_have_text(["ROI"])

    end = today()
    start = end - timedelta(days=29)
    first = roi_metrics(start, end, "day")
    expect(page.locator(f"{TIMELINE}[data-drawn='{report_key(start, end, 'day')}'] .main-svg").first).to_be_visible()
    expect(page.locator("[data-roi-chart=tools] .main-svg").first).to_be_visible()
    expect(page.locator("[data-roi-chart=departments] .main-svg").first).to_be_visible()
    expect(stat(page, "operations")).to_have_text(f"{first.total.operations:,}")
    expect(stat(page, "money")).to_have_text(f"{first.total.cost_saved:,.2f}")
    assert timeline_points(page) == 30
    expect(page.locator("[data-roi-chart=tools] .ytick")).to_have_count(5)
    expect(page.locator("#roi-table tbody tr")).to_have_count(5)
    # Hover labels are drawn under the Content-Security-Policy too (the page fixture fails on a violation).
    page.locator(f"{TIMELINE} .nsewdrag").first.hover()
    expect(page.locator(f"{TIMELINE} .hoverlayer text").first).to_be_visible()
    page.locator("[data-roi-chart=tools] .bars path").first.hover(force=True)  # under the drag layer
    expect(page.locator("[data-roi-chart=tools] .hoverlayer text").first).to_contain_text("saved")
    # So is the mode bar's PNG (plotly renders it through a blob: image).
    with page.expect_download() as info:
        page.locator("[data-roi-chart=tools] [data-title='Download plot as a PNG']").click()
    assert info.value.suggested_filename == "roi-chart.png"
    shot(page, "roi")

    # A preset: the figures and the chart follow, the page is not reloaded.
    page.evaluate("window.notReloaded = true")
    page.get_by_role("link", name="Last 90 days").click()
    start90 = end - timedelta(days=89)
    wider = roi_metrics(start90, end, "week")
    assert wider.total.operations > first.total.operations
    expect(page).to_have_url(re.compile(rf"date_from={start90}&date_to={end}"))
    expect(stat(page, "operations")).to_have_text(f"{wider.total.operations:,}")
    expect(stat(page, "money")).to_have_text(f"{wider.total.cost_saved:,.2f}")
    expect(page.locator(f"{TIMELINE}[data-drawn='{report_key(start90, end, 'week')}'] .main-svg").first).to_be_visible()
    assert timeline_points(page) == len(wider.groups["week"])
    expect(page.get_by_label("Over time by")).to_have_value("")
    expect(page.get_by_label("Over time by").locator("option:checked")).to_have_text("Auto (week)")
    assert page.evaluate("window.notReloaded") is True
    shot(page, "roi-last-90-days")

    # The date fields: ten days, submitted with the button.
    start10 = end - timedelta(days=9)
    page.get_by_label("From", exact=True).fill(start10.isoformat())
    page.get_by_label("To", exact=True).fill(end.isoformat())
    page.get_by_role("button", name="Show").click()
    narrow = roi_metrics(start10, end, "day")
    expect(stat(page, "operations")).to_have_text(f"{narrow.total.operations:,}")
    expect(page.locator(f"{TIMELINE}[data-drawn='{report_key(start10, end, 'day')}'] .main-svg").first).to_be_visible()
    assert timeline_points(page) == 10

    # Another interval from the select: the chart redraws by itself.
    page.get_by_label("Over time by").select_option("week")
    expect(page.locator(f"{TIMELINE}[data-drawn='{report_key(start10, end, 'week')}']")).to_have_count(1)
    assert timeline_points(page) == len(roi_metrics(start10, end, "week").groups["week"])

    # The table by user, then the exports of exactly this view.
    page.locator("#roi-table").get_by_role("link", name="User", exact=True).click()
    expect(page.locator("#roi-table h2")).to_have_text("By user")
    expect(page.locator("#roi-table tbody tr")).to_have_count(3)
    assert page.evaluate("window.notReloaded") is True
    shot(page, "roi-by-user")

    with page.expect_download() as info:
        page.get_by_role("link", name="Export CSV").click()
    download = info.value
    assert download.suggested_filename == f"roi_{start10}_{end}_by_user.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text("utf-8-sig"))))
    assert rows[0] == ["user", "operations", "successful", "avg_time_saved_sec", "total_time_saved_hours",
                       "cost_saved_eur"]
    assert {r[0] for r in rows[1:-1]} == {"writer", "olga", "piet"}
    assert rows[-1][0] == "Total" and Decimal(rows[-1][5]) == narrow.total.cost_saved

    with page.expect_download() as info:
        page.get_by_role("link", name="Export Excel").click()
    download = info.value
    assert download.suggested_filename == f"roi_{start10}_{end}.xlsx"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    book = load_workbook(saved)
    assert book.sheetnames == ["Summary", "By tool", "By user", "By department", "By week"]
    tools = book["By tool"]
    assert tools["A1"].value == "tool" and tools["A1"].font.b
    assert tools["G1"].value == "cost_saved_eur" and tools["G2"].number_format == "#,##0.00"
    summary = {row[0].value: row[1].value for row in book["Summary"].iter_rows(min_row=2)}
    assert summary["total_operations"] == narrow.total.operations
    assert Decimal(str(summary["total_cost_saved_eur"])) == narrow.total.cost_saved


def test_a_bad_range_is_reported_on_the_form(page, usage):
    login(page, "stakeholder", "stake-pass-1")
    expect(page.locator(f"{TIMELINE} .main-svg").first).to_be_visible()
    page.get_by_label("From", exact=True).fill("2025-03-10")
    page.get_by_label("To", exact=True).fill("2025-03-01")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".field-error")).to_have_text("The end date is before the start date.")
    expect(page.locator("[data-roi-chart]")).to_have_count(0)
    page.get_by_role("link", name="Last 30 days").click()
    expect(page.locator(f"{TIMELINE} .main-svg").first).to_be_visible()


def test_an_admin_edits_a_baseline_and_the_report_follows(page, usage, staff_admin):
    login(page, "admin", "admin-pass-1")
    page.goto("/roi/")
    end = today()
    before = roi_metrics(end - timedelta(days=29), end).total
    expect(stat(page, "money")).to_have_text(f"{before.cost_saved:,.2f}")
    page.get_by_role("link", name="Edit baselines").click()
    expect(page).to_have_url("/roi/baselines/")
    row = page.locator("tr", has=page.locator("code", has_text="ax_create_salesorder"))
    row.get_by_label("Seconds for ax_create_salesorder").fill("420")
    row.get_by_role("button", name="Save ax_create_salesorder").click()
    expect(page.locator(".message")).to_contain_text("Baseline of ax_create_salesorder saved: 420 s")
    expect(row.get_by_label("Seconds for ax_create_salesorder")).to_have_value("420")
    shot(page, "roi-baselines")

    page.get_by_role("link", name="ROI", exact=True).first.click()
    after = roi_metrics(end - timedelta(days=29), end).total
    assert after.cost_saved > before.cost_saved
    expect(stat(page, "money")).to_have_text(f"{after.cost_saved:,.2f}")

    # By week: a week cut by the range says so; the method is one click away.
    page.locator("#roi-table").get_by_role("link", name="Week", exact=True).click()
    expect(page.locator("#roi-table h2")).to_have_text("By week")
    expect(page.locator("#roi-table tbody tr", has_text="partial").first).to_be_visible()
    page.get_by_text("How these figures are calculated").click()
    expect(page.get_by_text("FTE equivalent = hours saved")).to_be_visible()
    shot(page, "roi-admin-by-week")


def test_the_report_fits_a_phone(browser, live_server, usage):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844},
                                  device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    violations = watch_csp(page)
    try:
        login(page, "stakeholder", "stake-pass-1")
        expect(page.locator(f"{TIMELINE} .main-svg").first).to_be_visible()
        expect(page.locator("[data-roi-chart=departments] .main-svg").first).to_be_visible()
        shot(page, "roi-phone")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    finally:
        context.close()
    assert errors == []
    assert violations == []


def test_a_stakeholder_opens_the_operations_behind_a_tool(page, usage):
    login(page, "stakeholder", "stake-pass-1")
    end = today()
    start = end - timedelta(days=29)
    orders = next(r for r in roi_metrics(start, end).groups["tool"] if r.key == "ax_create_salesorder")
    link = page.locator("#roi-table").get_by_role("link", name="Create sales order")
    expect(link).to_have_attribute("title", "ax_create_salesorder")
    link.click()
    expect(page).to_have_url(re.compile(r"/roi/operations/\?tool=ax_create_salesorder&"))
    expect(page.locator("[data-count]")).to_have_text(f"{orders.figures.operations} operations")
    expect(page.locator("[data-figures]")).to_contain_text(f"{orders.figures.cost_saved:,.2f} EUR")
    expect(page.locator(".roi-operations tbody tr")).to_have_count(orders.figures.operations)
    expect(page.locator(".roi-operations tbody tr").first).to_contain_text("300 s")
    shot(page, "roi-operations")
    with page.expect_download() as info:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text("utf-8-sig"))))
    assert len(rows) == orders.figures.operations + 1


def test_months_are_labelled_once_each_and_an_empty_range_says_so(page, usage):
    login(page, "stakeholder", "stake-pass-1")
    end = today()
    start = (end - timedelta(days=75)).replace(day=1)
    page.goto(f"/roi/?date_from={start}&date_to={end}&group_by=month")
    expect(page.locator(f"{TIMELINE} .main-svg").first).to_be_visible()
    months = roi_metrics(start, end, "month").groups["month"]
    labels = page.locator(f"{TIMELINE} .xtick text")
    expect(labels).to_have_count(len(months))
    assert labels.all_text_contents() == [f"{m.start:%b %Y}" for m in months]
    expect(page.locator(f"{TIMELINE} .bars path")).to_have_count(len(months))
    shot(page, "roi-by-month")
    page.goto("/roi/?date_from=2001-01-01&date_to=2001-01-31")
    expect(page.locator("[data-roi-empty]")).to_contain_text("No operations in this range")
    expect(page.locator("[data-roi-chart]")).to_have_count(0)


def test_an_admin_sets_a_baseline_from_tomorrow_and_today_keeps_its_figures(page, usage, staff_admin):
    login(page, "admin", "admin-pass-1")
    end = today()
    before = roi_metrics(end - timedelta(days=29), end).total
    page.goto("/roi/baselines/")
    page.locator("tr[data-tool=ax_create_salesorder]").get_by_role("link", name="new value…").click()
    form = page.locator("#baseline-new")
    expect(form.get_by_label("Tool")).to_have_value("ax_create_salesorder")
    form.get_by_label("From").fill((end + timedelta(days=1)).isoformat())
    form.get_by_label("Seconds").fill("900")
    form.get_by_role("button", name="Add").click()
    expect(page.locator(".message")).to_contain_text("900 s per operation from")
    expect(page.locator("tr[data-tool=ax_create_salesorder][data-state=upcoming]")).to_have_count(1)
    shot(page, "roi-baseline-history")
    page.goto("/roi/")
    expect(stat(page, "money")).to_have_text(f"{before.cost_saved:,.2f}")

