"""What a person does on the dashboard, in a real browser: log in per role, filter the audit
log, submit a batch and watch it finish, be refused a write, read the pages on a phone."""

from __future__ import annotations

import json
import re
import threading

import pytest
from django.utils.module_loading import import_string
from django_q.models import OrmQ
from playwright.sync_api import expect

from core.tools.models import BatchRun
from core.tools.registry import all_tools
from tests.browser.conftest import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EVERY_READER = ["Overview", "Audit log", "Batches", "Tools"]


def nav(page):
    return page.get_by_role("navigation", name="Main").get_by_role("link")


def test_each_role_sees_the_nav_it_may_use(page, staff_admin, writer, reader, stakeholder, activity):
    page.goto("/")
    expect(page).to_have_url("/accounts/login/")
    screenshot(page, "login")

    for username in ("admin", "writer", "reader"):
        login(page, username, f"{username}-pass-1")
        expect(page).to_have_url("/overview/")
        expect(nav(page).first).to_have_text("Overview")
        labels = nav(page).all_inner_texts()
        # Areas that later issues add may sit between these; the order of these stays.
        assert [label for label in labels if label in EVERY_READER] == EVERY_READER, labels
        assert ("Admin" in labels) == (username == "admin"), labels
        expect(page.locator(".who")).to_contain_text(username)
        if username == "admin":
            expect(page.locator("[data-stat=calls]")).to_have_text("6")
            expect(page.locator("[data-stat=failures]")).to_have_text("2")
            screenshot(page, "overview")
        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url("/accounts/login/")

    login(page, "stakeholder", "stake-pass-1")
    expect(page).to_have_url("/roi/")  # the ROI report is a stakeholder's only area
    expect(nav(page)).to_have_text(["ROI"])
    expect(page.locator("[data-roi-chart=timeline] .main-svg").first).to_be_visible()
    screenshot(page, "stakeholder-home")


def test_filter_the_audit_log(page, reader, activity):
    login(page, "reader", "reader-pass-1")
    nav(page).get_by_text("Audit log").click()
    count = page.locator("#audit-results .count")
    expect(count).to_have_text("6 entries")

    page.get_by_label("Tool").select_option("ax_create_salesorder")
    expect(count).to_have_text("2 entries match the filters")
    expect(page).to_have_url("/audit/?tool=ax_create_salesorder&user=&department=&success=&date_from=&date_to=")
    page.get_by_label("Result").select_option("failed")
    expect(count).to_have_text("1 entry matches the filters")
    expect(page.locator("#audit-results tbody tr")).to_have_count(1)
    expect(page.locator("#audit-results tbody")).to_contain_text("INSUFFICIENT_STOCK")
    screenshot(page, "audit-log")

    # The pushed URL is a real page: reloading it (no HTMX involved) shows the same rows.
    page.reload()
    expect(count).to_have_text("1 entry matches the filters")
    page.get_by_role("link", name="Clear").click()
    expect(count).to_have_text("6 entries")
    page.get_by_label("User").fill("reader")
    page.get_by_role("button", name="Filter").click()
    expect(count).to_have_text("2 entries match the filters")


def run_queued_task() -> None:
    """Do what a django-q2 worker does with the one queued task: call its function."""
    task = OrmQ.objects.get().task
    func = task["func"]
    (import_string(func) if isinstance(func, str) else func)(*task["args"], **task["kwargs"])


def test_submit_a_batch_and_watch_it_finish(page, staff_admin, erp):
    login(page, "admin", "admin-pass-1")
    nav(page).get_by_text("Batches").click()
    page.get_by_role("link", name="New batch").click()

    requests = [{"tool": "ax_check_inventory", "arguments": {"item_id": f"ITEM-00{n}"}} for n in (1, 2, 3)]
    requests += [{"tool": "ax_get_customer", "arguments": {"customer_account": "CUST-404"}},
                 {"tool": "ax_create_salesorder",
                  "arguments": {"customer_account": "CUST-002", "lines": [{"item_id": "ITEM-001", "quantity": 3}]}}]
    payload = page.get_by_label("Requests (JSON)")
    payload.fill(json.dumps(requests, indent=2))
    page.get_by_label("Run asynchronously").check()
    screenshot(page, "batch-new")

    payload.fill("{oops")
    page.get_by_role("button", name="Submit batch").click()
    expect(page.locator(".field-error")).to_contain_text("This is not valid JSON")
    expect(page).to_have_url("/batches/new/")
    screenshot(page, "batch-new-invalid", full_page=False)
    assert BatchRun.objects.count() == 0

    payload.fill(json.dumps(requests, indent=2))
    page.get_by_role("button", name="Submit batch").click()

    expect(page).to_have_url(re.compile(r"/batches/B-\w+/$"))
    run = BatchRun.objects.get()
    assert page.url.endswith(f"/batches/{run.batch_id}/")
    expect(page.locator(".message")).to_contain_text("is queued with 5 operations")
    live = page.locator("#batch-live")
    expect(live.locator("[data-status]")).to_have_text("queued")
    expect(live).to_have_attribute("hx-trigger", "every 1s")

    worker = threading.Thread(target=run_queued_task)
    worker.start()
    worker.join(30)
    expect(live.locator("[data-status]")).to_have_text("completed")
    expect(live).not_to_have_attribute("hx-trigger", "every 1s")
    expect(live.locator("[data-successful]")).to_have_text("4")
    expect(live.locator("[data-failed]")).to_have_text("1")
    expect(live.locator("table.operations tbody tr")).to_have_count(5)
    expect(live.locator("table.operations")).to_contain_text("CUST_NOT_FOUND")
    screenshot(page, "batch-detail")

    page.get_by_role("link", name="Failed 1").click()
    expect(page.locator("table.operations tbody tr")).to_have_count(1)

    nav(page).get_by_text("Batches").click()
    row = page.locator(f"#row-{run.batch_id}")
    expect(row.locator("[data-status]")).to_have_text("completed")
    expect(page.locator("#batch-results")).not_to_have_attribute("hx-trigger", "every 1s")
    screenshot(page, "batches")


def test_the_batch_list_follows_a_running_batch(page, reader, erp):
    run = BatchRun.objects.create(batch_id="B-followed", user=reader, status="running", requests=[{}] * 4, total=4,
                                  processed=1, successful=1)
    login(page, "reader", "reader-pass-1")
    page.goto("/batches/")
    row = page.locator("#row-B-followed")
    expect(row.locator("[data-progress]")).to_have_text("1 / 4")
    BatchRun.objects.filter(pk=run.pk).update(processed=3, successful=3)
    expect(row.locator("[data-progress]")).to_have_text("3 / 4")
    BatchRun.objects.filter(pk=run.pk).update(status="completed", processed=4, successful=4, results=[])
    expect(row.locator("[data-status]")).to_have_text("completed")
    expect(page.locator("#batch-results")).not_to_have_attribute("hx-trigger", "every 1s")


def test_a_reader_is_refused_a_write_action(page, reader):
    login(page, "reader", "reader-pass-1")
    page.goto("/batches/")
    expect(page.get_by_role("link", name="New batch")).to_have_count(0)

    response = page.goto("/batches/new/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.locator("main")).to_contain_text("needs the role MCP_Admin")
    screenshot(page, "forbidden")

    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    posted = page.request.post("/batches/new/", form={"payload": "[]", "max_parallel": "1"},
                               headers={"X-CSRFToken": token})
    assert posted.status == 403
    assert "needs the role MCP_Admin" in posted.text()
    assert BatchRun.objects.count() == 0


def test_the_pages_fit_a_phone(page, staff_admin, activity):
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, "admin", "admin-pass-1")
    for url, name in [("/overview/", "overview-phone"), ("/audit/", "audit-log-phone")]:
        page.goto(url)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{url} scrolls sideways by {overflow}px on a phone"
        screenshot(page, name)


def test_search_the_tools(page, reader):
    login(page, "reader", "reader-pass-1")
    nav(page).get_by_text("Tools").click()
    rows = page.locator("#tool-results tbody tr")
    page.get_by_label("Search").fill("progress of a batch")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("ax_get_batch_status")
    expect(page).to_have_url("/tools/?q=progress%20of%20a%20batch")
    page.get_by_label("Search").fill("")
    expect(rows).to_have_count(len(all_tools()))
    screenshot(page, "tools")


FITS = """() => ({
    page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    nav: (n => n.scrollWidth - n.clientWidth)(document.querySelector('.nav')),
    tables: [...document.querySelectorAll('.table-wrap')].filter(w => w.scrollWidth > w.clientWidth)
        .map(w => w.querySelector('table').className),
})"""


def test_find_a_customer_and_follow_its_records_at_1366(page, staff_admin, reader, activity):
    page.set_viewport_size({"width": 1366, "height": 900})
    login(page, "reader", "reader-pass-1")
    nav(page).get_by_text("Customers").click()
    search = page.get_by_label("Search")
    search.fill("mueller")
    search.press("Enter")
    rows = page.locator("#customer-results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Müller GmbH")
    expect(page).to_have_url(re.compile(r"/customers/\?q=mueller"))
    screenshot(page, "customers")

    rows.get_by_role("link", name="CUST-001").click()
    expect(page.locator("h1")).to_contain_text("Müller GmbH")
    expect(page.locator("#record-events tbody")).to_contain_text("salesorder.created")
    screenshot(page, "customer-detail")
    page.locator("#customer-orders tbody a[data-record=sales_id]").first.click()
    expect(page.locator("h1")).to_contain_text("Sales order")
    page.locator("#order-lines a[data-record=item_id]").first.click()
    expect(page.locator("h1")).to_contain_text("ITEM-001")
    expect(page.locator("#item-lines tbody tr")).to_have_count(1)

    order_url = "/sales-orders/" + page.locator("#item-lines a[data-record=sales_id]").first.inner_text() + "/"
    for user, password in (("reader", "reader-pass-1"), ("admin", "admin-pass-1")):
        if user == "admin":
            page.get_by_role("button", name="Log out").click()
            login(page, user, password)
        for url in ("/overview/", "/customers/", "/customers/CUST-001/", "/items/", "/items/ITEM-001/",
                    "/sales-orders/", order_url):
            page.goto(url)
            assert page.evaluate(FITS) == {"page": 0, "nav": 0, "tables": []}, f"{url} does not fit 1366 px"
    screenshot(page, "salesorder-detail")
    page.goto("/overview/")
    screenshot(page, "overview-1366")
