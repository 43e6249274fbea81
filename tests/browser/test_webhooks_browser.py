"""Webhooks in a real browser: find a failed delivery, click Retry, watch it succeed live."""

from __future__ import annotations

import ipaddress
import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from core.tools.pipeline import call_tool
from core.webhooks import dispatcher, services
from tests.browser.conftest import login, screenshot
from tests.waiting import wait_until
from tests.webhooks.receiver import serve

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


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


def test_retry_a_failed_delivery_and_watch_it_succeed(page, staff_admin, erp, writer, hub_dispatcher):
    from core.webhooks.models import Delivery

    with serve() as receiver:
        receiver.respond = lambda n, h, b: (400, {}, b'{"error": "not yet"}') if n == 1 else (200, {}, b"ok")
        sub, _ = services.subscribe(event_type="salesorder.created", webhook_url=receiver.url)
        call_tool("ax_create_salesorder", {"customer_account": "CUST-001",
                                           "lines": [{"item_id": "ITEM-001", "quantity": 1}]}, writer)
        failed = wait_until(lambda: Delivery.objects.filter(status="failed").first())

        login(page, "admin", "admin-pass-1")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
        expect(page.locator(f"#sub-{sub.subscription_id}")).to_contain_text("active")
        page.get_by_role("link", name="Failed").click()
        row = page.locator(f"#delivery-{failed.delivery_id}")
        expect(row).to_contain_text("HTTP 400")
        row.get_by_role("link", name=failed.delivery_id).click()
        expect(page.locator(".attempts")).to_contain_text('{"error": "not yet"}', use_inner_text=False)
        screenshot(page, "webhook-delivery-failed")
        page.get_by_role("button", name="Retry").click()
        expect(page.locator(".messages")).to_contain_text("queued again")
        # The page polls itself while the delivery is pending and stops once it is done.
        expect(page.locator("#delivery-live [data-status]")).to_have_text("succeeded", timeout=10_000)
        expect(page.locator(".attempts")).to_contain_text("manual by admin")
        screenshot(page, "webhook-delivery-retried")
        assert len(receiver.requests) == 2
