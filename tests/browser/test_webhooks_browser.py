"""Webhooks in a real browser, at 1366×900 as an admin at a laptop sees them: find a failed
delivery and retry it, watch lists change live, subscribe to several types with filter rows and
copy the secret, and every list fitting the page without scrolling sideways."""

from __future__ import annotations

import ipaddress
import json
import re
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect

from core.events.models import Event
from core.tools.pipeline import call_tool
from core.webhooks import dispatcher, services
from core.webhooks.models import Attempt, Delivery, Subscription
from tests.browser.conftest import login, screenshot
from tests.waiting import wait_until
from tests.webhooks.receiver import serve

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 900}
LONG_URL = ("https://orders.integration-partner-with-a-rather-long-name.example.com/api/v2/webhooks/erp/"
            "incoming/sales-orders/" + "x" * 160)
LONG_ERROR = ("connection: the receiver refused or reset the connection, or could not be reached: "
              "HTTPSConnectionPool(host='orders.integration-partner.example.com', port=443): Max retries exceeded "
              "with url: /api/v2/webhooks/erp/incoming/sales-orders (Caused by NewConnectionError)") * 2


@pytest.fixture
def hub_dispatcher(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    stop = threading.Event()

    def run() -> None:
        try:
            dispatcher.run(stop)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)


@pytest.fixture
def laptop(page):
    page.set_viewport_size(LAPTOP)
    return page


def _delivery(sub: Subscription, status: str, n: int, **fields) -> Delivery:
    # Stored as already handed over, so that no subscription gets a delivery of it but this one.
    event = Event.objects.create(event_id=f"evt_{n:024d}", type="salesorder.cancelled", created=timezone.now(),
                                 fanned_out=True, data={"sales_id": f"SO-{n:06d}", "currency": "EUR",
                                                        "total_amount": Decimal("1234567.50")})
    row = Delivery.objects.create(
        delivery_id=f"dlv_{n:024d}", subscription=sub, event=event, event_type="salesorder.cancelled",
        status=status, attempts=fields.pop("attempts", 4), subject=fields.pop("subject", f"SO-{n:06d}"),
        amount=Decimal("1234567.50"), currency="EUR", last_error=fields.pop("last_error", LONG_ERROR),
        next_attempt_at=timezone.now(), **fields)
    Attempt.objects.create(delivery=row, number=1, started=timezone.now(), duration_ms=30000,
                           error_class="connection", error=LONG_ERROR, response_excerpt="{" + '"x": 1, ' * 300 + "}")
    return row


def _fits(page) -> list[str]:
    """What scrolls sideways on this page: each table wrapper wider inside than it is, and the page."""
    return page.evaluate("""() => {
        const wide = [...document.querySelectorAll('.table-wrap')]
            .filter(w => w.offsetParent !== null && w.scrollWidth > w.clientWidth)
            .map(w => `${w.querySelector('table')?.className}: ${w.scrollWidth} > ${w.clientWidth}`);
        const root = document.documentElement;
        if (root.scrollWidth > root.clientWidth) wide.push(`page: ${root.scrollWidth} > ${root.clientWidth}`);
        return wide;
    }""")


def test_every_webhook_list_fits_the_page_at_1366_and_1920(laptop, staff_admin, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    busy, _ = services.subscribe(event_types=["salesorder.created", "salesorder.cancelled", "payment.posted",
                                              "invoice.created", "customer.*"], webhook_url=LONG_URL,
                                 description="Partner order intake with a description longer than any column " * 2,
                                 filters_={"customer_account": ["CUST-001", "CUST-002"], "min_amount": 1000})
    paused, _ = services.subscribe(event_type="*", webhook_url="https://n8n.example.com/webhook/all")
    rows = [_delivery(busy, "failed", n) for n in range(1, 4)]
    rows.append(_delivery(busy, "succeeded", 4, last_status=200, last_error=""))
    held = _delivery(paused, "pending", 5, attempts=0, last_error="")
    services.update(paused, status="paused")

    login(laptop, "admin", "admin-pass-1")
    pages = {
        "webhooks": "/webhooks/",
        "webhook-deliveries": "/webhooks/deliveries/",
        "webhook-failed": "/webhooks/deliveries/?status=failed",
        "webhook-subscription": f"/webhooks/{busy.subscription_id}/",
        "webhook-delivery": f"/webhooks/deliveries/{rows[0].delivery_id}/",
        "webhook-events": "/webhooks/events/",
        "webhook-new": "/webhooks/new/",
    }
    for name, url in pages.items():
        laptop.goto(url)
        for opened in laptop.locator("details").all():  # response bodies and event data, opened
            opened.evaluate("d => d.open = true")
        assert _fits(laptop) == [], name
        screenshot(laptop, f"{name}-1366")

    laptop.set_viewport_size({"width": 1920, "height": 1080})
    for name, url in pages.items():
        laptop.goto(url)
        assert _fits(laptop) == [], f"{name} at 1920"
    laptop.set_viewport_size(LAPTOP)

    laptop.goto("/webhooks/deliveries/?status=failed")
    retry = laptop.locator(f"#delivery-{rows[0].delivery_id}").get_by_role("button", name="Retry")
    box = retry.bounding_box()
    assert box and box["x"] + box["width"] <= LAPTOP["width"], "the Retry button is on screen"
    expect(laptop.locator(f"#delivery-{rows[0].delivery_id}")).to_contain_text("Order SO-000001")
    expect(laptop.locator(f"#delivery-{rows[0].delivery_id}")).to_contain_text("1,234,567.50 EUR")
    laptop.goto("/webhooks/deliveries/")
    expect(laptop.locator(f"#delivery-{held.delivery_id}")).to_contain_text("held (paused)")
    expect(laptop.locator(f"#delivery-{rows[3].delivery_id}").get_by_role("button", name="Resend")).to_be_visible()


def test_retry_a_failed_delivery_and_watch_it_succeed(laptop, staff_admin, erp, writer, hub_dispatcher):
    with serve() as receiver:
        receiver.respond = lambda n, h, b: (400, {}, b'{"error": "not yet"}') if n == 1 else (200, {}, b"ok")
        sub, _ = services.subscribe(event_type="salesorder.created", webhook_url=receiver.url)
        created = call_tool("ax_create_salesorder", {"customer_account": "CUST-001",
                                                     "lines": [{"item_id": "ITEM-001", "quantity": 1}]}, writer)
        failed = wait_until(lambda: Delivery.objects.filter(status="failed").first())

        login(laptop, "admin", "admin-pass-1")
        laptop.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
        expect(laptop.locator(f"#sub-{sub.subscription_id}")).to_contain_text("active")
        laptop.get_by_role("link", name="Failed").click()
        row = laptop.locator(f"#delivery-{failed.delivery_id}")
        expect(row).to_contain_text("HTTP 400")
        row.get_by_role("link", name=f"Order {created['sales_id']}").click()
        expect(laptop.locator(".attempts")).to_contain_text('{"error": "not yet"}', use_inner_text=False)
        screenshot(laptop, "webhook-delivery-failed")
        laptop.get_by_role("button", name="Retry").click()
        expect(laptop.locator(".messages")).to_contain_text("queued again")
        # The page polls itself while the delivery is pending and stops once it is done.
        expect(laptop.locator("#delivery-live [data-status]")).to_have_text("succeeded", timeout=10_000)
        expect(laptop.locator(".attempts")).to_contain_text("manual by admin")
        screenshot(laptop, "webhook-delivery-retried")
        assert len(receiver.requests) == 2


def test_lists_show_new_deliveries_and_status_changes_without_a_reload(laptop, staff_admin, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    sub, _ = services.subscribe(event_type="salesorder.*", webhook_url="https://n8n.example.com/webhook/orders")
    first = _delivery(sub, "succeeded", 1, last_status=200, last_error="")
    login(laptop, "admin", "admin-pass-1")
    laptop.goto("/webhooks/deliveries/")
    expect(laptop.locator(".count")).to_have_text("1 delivery")
    laptop.evaluate("window.notReloaded = true")

    arrived = _delivery(sub, "failed", 2, last_status=503, last_error="HTTP 503")
    expect(laptop.locator(f"#delivery-{arrived.delivery_id}")).to_contain_text("HTTP 503", timeout=8_000)
    expect(laptop.locator(".count")).to_have_text("2 deliveries")
    Delivery.objects.filter(pk=first.pk).update(status="failed", last_status=500)
    expect(laptop.locator(f"#delivery-{first.delivery_id} [data-status]")).to_have_text("failed", timeout=8_000)
    assert laptop.evaluate("window.notReloaded") is True

    # "Retry all failed" sits on the Failed tab, and the tab follows the retry live.
    laptop.get_by_role("link", name="Failed").click()
    laptop.once("dialog", lambda dialog: dialog.accept())
    laptop.get_by_role("button", name="Retry all failed").click()
    expect(laptop.locator(".messages")).to_contain_text("2 failed deliveries queued again")
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}
    expect(laptop.locator(".count")).to_have_text("0 deliveries")
    screenshot(laptop, "webhook-failed-retried-all")


def test_subscribe_to_several_types_with_filter_rows_and_copy_the_secret_once(laptop, staff_admin, settings):
    laptop.context.grant_permissions(["clipboard-read", "clipboard-write"])
    login(laptop, "admin", "admin-pass-1")
    laptop.goto("/webhooks/new/")
    laptop.get_by_label("salesorder.created").check()
    laptop.get_by_label("payment.posted").check()
    laptop.get_by_label("Or patterns").fill("invoice.*")
    laptop.get_by_label("Endpoint URL").fill("https://n8n.example.com/webhook/erp")
    laptop.locator("select[name=filter_0_field]").select_option("customer_account")
    laptop.locator("select[name=filter_0_op]").select_option("in")
    laptop.locator("input[name=filter_0_value]").fill("CUST-001, CUST-002")
    laptop.locator("select[name=filter_1_field]").select_option("currency")
    laptop.locator("input[name=filter_1_value]").fill("EUR")
    laptop.get_by_label("Amount at least").fill("1000")
    screenshot(laptop, "webhook-new-filled")
    laptop.get_by_role("button", name="Subscribe").click()

    expect(laptop.get_by_role("heading", name="Subscription created")).to_be_visible()
    assert re.search(r"/webhooks/sub_[0-9a-f]+/secret/$", laptop.url), "the POST redirected to a GET"
    secret = laptop.locator("#signing-secret").inner_text().strip()
    assert secret.startswith("whsec_")
    laptop.get_by_role("button", name="Copy").click()
    expect(laptop.get_by_role("button", name="Copied")).to_be_visible()
    assert laptop.evaluate("navigator.clipboard.readText()") == secret
    screenshot(laptop, "webhook-secret-copied")

    sub = Subscription.objects.get()
    assert sub.event_types == ["salesorder.created", "payment.posted", "invoice.*"]
    assert sub.filters == {"customer_account": ["CUST-001", "CUST-002"], "currency": "EUR", "min_amount": 1000}
    laptop.reload()  # shows no secret, and subscribes nothing again
    expect(laptop.locator(".gone")).to_contain_text("shown once")
    assert laptop.locator("#signing-secret").count() == 0 and Subscription.objects.count() == 1

    laptop.goto(f"/webhooks/{sub.subscription_id}/")
    expect(laptop.locator(".filters-said")).to_contain_text("customer_account is one of CUST-001, CUST-002")
    assert json.loads(laptop.locator(".filters-json").inner_text()) == sub.filters
