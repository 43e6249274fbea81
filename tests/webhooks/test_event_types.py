"""Subscriptions to several event types, what each delivery is about, and retries beyond one failure:
a resend of a delivered event and every failed delivery at once."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
from django.apps import apps

from core.errors import ToolError
from core.events.bus import publish
from core.tools.pipeline import call_tool
from core.webhooks import fanout, services, subjects
from core.webhooks.models import Delivery, Subscription
from tests.webhooks.helpers import order

pytestmark = pytest.mark.django_db

URL = "https://n8n.example.com/webhook/erp"


def subscribe(admin, **arguments):
    return call_tool("ax_subscribe_webhook", {"webhook_url": URL, **arguments}, admin)


def deliveries_of(sub_id: str) -> list[str]:
    return sorted(Delivery.objects.filter(subscription__subscription_id=sub_id).values_list("event_type", flat=True))


def test_a_subscription_listens_to_several_types_and_outputs_the_first_as_event_type(admin):
    sub = subscribe(admin, event_types=["payment.posted", "salesorder.*"])
    assert sub["event_types"] == ["payment.posted", "salesorder.*"] and sub["event_type"] == "payment.posted"
    stored = Subscription.objects.get(subscription_id=sub["subscription_id"])
    assert (stored.event_type, stored.event_types) == ("payment.posted", ["payment.posted", "salesorder.*"])
    listed = call_tool("ax_list_webhooks", {}, admin)["subscriptions"][0]
    assert listed["event_types"] == ["payment.posted", "salesorder.*"] and listed["event_type"] == "payment.posted"


def test_one_event_type_is_still_taken_and_shown_both_ways(admin):
    sub = subscribe(admin, event_type="customer.created")
    assert (sub["event_type"], sub["event_types"]) == ("customer.created", ["customer.created"])


def test_fan_out_matches_any_of_the_types_once_per_event(admin):
    sub = subscribe(admin, event_types=["payment.posted", "salesorder.*", "salesorder.created"])
    publish("salesorder.created", {"sales_id": "SO-1", "total_amount": 10})
    publish("payment.posted", {"payment_id": "PAY-1", "amount": 5, "currency": "EUR"})
    publish("customer.created", {"customer_account": "CUST-9"})
    fanout.fan_out(list(apps.get_model("events", "Event").objects.values_list("event_id", flat=True)))
    assert deliveries_of(sub["subscription_id"]) == ["payment.posted", "salesorder.created"]


def test_event_type_and_event_types_exclude_each_other(admin):
    for arguments in ({"event_type": "*", "event_types": ["*"]}, {}):
        with pytest.raises(ToolError) as refused:
            subscribe(admin, **arguments)
        assert refused.value.code == "VALIDATION_ERROR"
        assert "give event_type (one type or pattern) or event_types (a list), not both" in refused.value.message
    with pytest.raises(ToolError) as unknown:
        subscribe(admin, event_types=["salesorder.created", "nope.*"])
    assert (unknown.value.code, unknown.value.field) == ("VALIDATION_ERROR", "event_types.1")
    for bad in ([], ["*", "*"]):
        with pytest.raises(ToolError) as refused:
            subscribe(admin, event_types=bad)
        assert refused.value.code == "VALIDATION_ERROR"
    assert not Subscription.objects.exists()


def test_filters_may_use_the_fields_of_any_of_the_types(admin):
    sub = subscribe(admin, event_types=["salesorder.created", "payment.posted"],
                    filters={"payment_id": "PAY-1", "customer_account": "CUST-001"})
    assert sub["filters"] == {"payment_id": "PAY-1", "customer_account": "CUST-001"}
    with pytest.raises(ToolError) as refused:
        subscribe(admin, event_types=["salesorder.created", "payment.posted"], filters={"item_id": "ITEM-1"})
    assert "unknown filter 'item_id' for salesorder.created, payment.posted" in refused.value.message


def test_updating_replaces_the_types_and_checks_the_filters_again(admin):
    sub_id = subscribe(admin, event_type="payment.posted", filters={"payment_id": "PAY-1"})["subscription_id"]
    with pytest.raises(ToolError) as refused:
        call_tool("ax_update_webhook", {"subscription_id": sub_id, "event_types": ["customer.*"]}, admin)
    assert "unknown filter 'payment_id'" in refused.value.message
    updated = call_tool("ax_update_webhook", {"subscription_id": sub_id, "event_types": ["customer.*", "payment.*"]},
                        admin)
    assert updated["event_types"] == ["customer.*", "payment.*"] and updated["event_type"] == "customer.*"
    assert {"event_type", "event_types", "filters"} <= set(updated["changed"])
    with pytest.raises(ToolError) as both:
        call_tool("ax_update_webhook", {"subscription_id": sub_id, "event_type": "*", "event_types": ["*"]}, admin)
    assert "not both" in both.value.message
    one = call_tool("ax_update_webhook", {"subscription_id": sub_id, "event_type": "payment.posted"}, admin)
    assert one["event_types"] == ["payment.posted"]


def test_listing_by_event_type_finds_it_among_the_types(admin):
    several = subscribe(admin, event_types=["customer.created", "payment.posted"])["subscription_id"]
    one = subscribe(admin, event_type="payment.posted")["subscription_id"]
    subscribe(admin, event_type="*")
    found = call_tool("ax_list_webhooks", {"event_type": "payment.posted"}, admin)["subscriptions"]
    assert sorted(s["subscription_id"] for s in found) == sorted([several, one])


def test_a_row_written_with_only_event_type_listens_to_it(db):
    sub = Subscription.objects.create(subscription_id="sub_old", event_type="customer.*", url=URL,
                                      secret_encrypted="-")
    assert sub.patterns == ("customer.*",)
    assert services.subscription_data(sub)["event_types"] == ["customer.*"]
    assert services.listening_to("customer.*") == [sub.pk]


# ---- what a delivery is about -------------------------------------------------------------

@pytest.mark.parametrize(("event_type", "data", "expected"), [
    ("salesorder.created", {"sales_id": "SO-7", "customer_account": "C-1", "total_amount": Decimal("1234.5"),
                            "currency": "EUR"}, ("SO-7", Decimal("1234.50"), "EUR")),
    ("payment.posted", {"payment_id": "PAY-3", "amount": 10.25, "currency": "USD"}, ("PAY-3", Decimal("10.25"), "USD")),
    ("invoice.created", {"invoice_id": "INV-1", "sales_id": "SO-7", "amount": 5}, ("INV-1", Decimal("5.00"), "")),
    ("customer.updated", {"customer_account": "CUST-001", "currency": "EUR"}, ("CUST-001", None, "EUR")),
    ("inventory.low_stock", {"item_id": "ITEM-1", "unit_price": 3}, ("ITEM-1", None, "")),
    ("import.finished", {"job_id": "IMP-1"}, ("IMP-1", None, "")),
    ("webhook.test", {"message": "hi"}, ("", None, "")),
    ("other.thing", {"customer_account": "C-2", "amount": "not a number"}, ("C-2", None, "")),
    ("salesorder.created", {"sales_id": "SO-8", "total_amount": Decimal("1E+20")}, ("SO-8", None, "")),
])
def test_the_subject_of_an_event(event_type, data, expected):
    about = subjects.of(event_type, data)
    assert (about.subject, about.amount, about.currency) == expected


def test_deliveries_carry_the_subject_of_their_event(admin, erp, writer):
    subscribe(admin, event_types=["salesorder.created", "customer.created"])
    created = order(writer)
    call_tool("ax_create_customer", {"customer_account": "CUST-777", "name": "New", "currency": "EUR"}, writer)
    fanout.fan_out(list(apps.get_model("events", "Event").objects.values_list("event_id", flat=True)))
    rows = {d.event_type: d for d in Delivery.objects.all()}
    assert (rows["salesorder.created"].subject, rows["salesorder.created"].amount,
            rows["salesorder.created"].currency) == (created["sales_id"], Decimal(str(created["total_amount"])),
                                                     created["currency"])
    assert rows["salesorder.created"].subject_kind == "Order"
    assert (rows["customer.created"].subject, rows["customer.created"].amount) == ("CUST-777", None)
    found = call_tool("ax_get_webhook_delivery", {"delivery_id": rows["salesorder.created"].delivery_id}, admin)
    assert found["subject"] == created["sales_id"] and found["currency"] == created["currency"]


def test_the_migration_fills_subjects_of_deliveries_made_before_it(admin):
    sub = subscribe(admin, event_type="payment.posted")
    publish("payment.posted", {"payment_id": "PAY-9", "amount": 12, "currency": "EUR"})
    fanout.fan_out(list(apps.get_model("events", "Event").objects.values_list("event_id", flat=True)))
    Delivery.objects.update(subject="", amount=None, currency="")
    Subscription.objects.update(event_types=[])
    migration = importlib.import_module("core.webhooks.migrations.0004_event_types_and_subjects")
    migration.fill(apps, None)
    row = Delivery.objects.get()
    assert (row.subject, row.amount, row.currency) == ("PAY-9", Decimal("12.00"), "EUR")
    assert Subscription.objects.get(subscription_id=sub["subscription_id"]).event_types == ["payment.posted"]


# ---- retries ------------------------------------------------------------------------------

def _delivery(sub_id: str, status: str, n: int) -> Delivery:
    publish("customer.created", {"customer_account": f"C-{n}"})
    event = apps.get_model("events", "Event").objects.first()
    return Delivery.objects.create(delivery_id=f"dlv_{sub_id}_{n}", subscription=services.get_subscription(sub_id),
                                   event=event, event_type=event.type, status=status, attempts=1)


def test_a_succeeded_delivery_is_resent_as_a_manual_attempt_and_a_pending_one_is_refused(admin):
    sub_id = subscribe(admin, event_type="customer.created")["subscription_id"]
    done = _delivery(sub_id, "succeeded", 1)
    assert call_tool("ax_retry_webhook_delivery", {"delivery_id": done.delivery_id}, admin) == {
        "retried": 1, "delivery_ids": [done.delivery_id]}
    done.refresh_from_db()
    assert (done.status, done.next_trigger, done.cycle_attempts, done.finished) == ("pending", "manual:admin", 0, None)
    with pytest.raises(ToolError) as refused:
        call_tool("ax_retry_webhook_delivery", {"delivery_id": done.delivery_id}, admin)
    assert refused.value.code == "INVALID_STATE" and "succeeded ones resent" in refused.value.message


def test_all_failed_retries_every_failed_delivery_of_subscriptions_not_disabled(admin):
    first = subscribe(admin, event_type="customer.created")["subscription_id"]
    second = subscribe(admin, event_type="customer.*")["subscription_id"]
    off = subscribe(admin, event_type="*")["subscription_id"]
    failed = [_delivery(first, "failed", 1), _delivery(second, "failed", 2)]
    kept = [_delivery(first, "succeeded", 3), _delivery(off, "failed", 4)]
    Subscription.objects.filter(subscription_id=off).update(status="disabled", disabled_reason="410 Gone")
    result = call_tool("ax_retry_webhook_delivery", {"all_failed": True}, admin)
    assert sorted(result["delivery_ids"]) == sorted(d.delivery_id for d in failed) and result["retried"] == 2
    assert {d.status for d in Delivery.objects.filter(pk__in=[d.pk for d in failed])} == {"pending"}
    assert [Delivery.objects.get(pk=d.pk).status for d in kept] == ["succeeded", "failed"]
    with pytest.raises(ToolError) as refused:
        call_tool("ax_retry_webhook_delivery", {"all_failed": False}, admin)
    assert refused.value.code == "VALIDATION_ERROR"
