"""Delivery end to end: a tool call commits, the receiver on 127.0.0.1 gets a signed POST."""

from __future__ import annotations

import pytest

from core.webhooks.models import Attempt, Delivery
from tests.webhooks.conftest import wait_until
from tests.webhooks.helpers import body, order, subscribe, verify

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_order_is_delivered_signed_with_the_standard_webhooks_headers(erp, writer, receiver, worker):
    sub, secret = subscribe(receiver.url)
    created = order(writer)
    got = receiver.wait_for(1)[0]
    assert verify(secret, got)["id"] == got.headers["webhook-id"]
    payload = body(got)
    assert payload["event"] == "salesorder.created"
    assert payload["timestamp"].endswith("Z")
    assert payload["data"]["sales_id"] == created["sales_id"]
    assert payload["data"]["customer_account"] == "CUST-001"
    assert payload["data"]["total_amount"] == created["total_amount"]
    assert payload["data"]["lines"][0]["item_id"] == "ITEM-001"
    assert payload["data"]["caused_by"]["user"] == "writer"
    assert got.headers["content-type"] == "application/json"
    delivery = wait_until(lambda: Delivery.objects.filter(status="succeeded").first())
    assert delivery.attempts == 1 and delivery.last_status == 200
    attempt = Attempt.objects.get(delivery=delivery)
    assert attempt.success and attempt.trigger == "automatic" and attempt.response_excerpt == '{"ok": true}'
