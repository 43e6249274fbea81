"""Delivery end to end: a tool call commits, the receiver on 127.0.0.1 gets a signed POST."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.webhooks import clock
from core.webhooks.models import Attempt, Delivery, Subscription
from tests.waiting import wait_until
from tests.webhooks.helpers import attempted, body, order, subscribe, verify

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_order_is_delivered_signed_with_the_standard_webhooks_headers(erp, writer, receiver,
                                                                        running_dispatcher):
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


def test_with_worker_sender_a_django_q2_task_is_enqueued_on_commit(erp, writer, receiver, worker, settings):
    settings.WEBHOOK_SENDER = "worker"
    sub, secret = subscribe(receiver.url)
    order(writer)
    assert len(worker.tokens) == 1  # no dispatcher involved: enqueued when the order committed
    verify(secret, receiver.wait_for(1)[0])
    wait_until(lambda: Delivery.objects.filter(status="succeeded").exists())


def _statuses(*codes, headers=None):
    """A responder answering with these status codes in turn (the last one repeats)."""
    def respond(n, _headers, _body):
        return codes[min(n, len(codes)) - 1], (headers or {}), b"nope" if codes[min(n, len(codes)) - 1] >= 300 else b""
    return respond


def test_failures_are_retried_at_backoff_doubling_each_time(erp, writer, receiver, worker):
    receiver.respond = _statuses(500, 502, 503, 200)
    subscribe(receiver.url, retry_policy={"max_retries": 3, "backoff_ms": 200})
    clock.freeze()
    order(writer)
    waits = []
    for n in (1, 2, 3):
        worker.dispatch()
        delivery = attempted(n)
        waits.append(delivery.next_attempt_at - delivery.last_attempt_at)
        clock.advance(delivery.next_attempt_at - clock.now())
    worker.dispatch()
    delivery = wait_until(lambda: Delivery.objects.filter(status="succeeded").first())
    assert waits == [timedelta(milliseconds=200), timedelta(milliseconds=400), timedelta(milliseconds=800)]
    assert delivery.attempts == 4
    assert [a.status_code for a in delivery.attempt_rows.all()] == [500, 502, 503, 200]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1  # stable across retries


def test_retry_after_is_honoured_when_longer_than_the_backoff(erp, writer, receiver, worker):
    receiver.respond = _statuses(429, 200, headers={"Retry-After": "1"})
    subscribe(receiver.url, retry_policy={"max_retries": 3, "backoff_ms": 100})
    clock.freeze()
    order(writer)
    worker.dispatch()
    delivery = attempted(1)
    assert delivery.next_attempt_at - delivery.last_attempt_at == timedelta(seconds=1)
    clock.advance(timedelta(seconds=1))
    worker.dispatch()
    wait_until(lambda: Delivery.objects.filter(status="succeeded").exists())


def test_after_the_last_retry_the_delivery_is_dead_lettered(erp, writer, admin, receiver, running_dispatcher):
    from core.tools.pipeline import call_tool

    receiver.respond = _statuses(503)
    sub, _ = subscribe(receiver.url, retry_policy={"max_retries": 2, "backoff_ms": 100})
    order(writer)
    receiver.wait_for(3)
    delivery = wait_until(lambda: Delivery.objects.filter(status="failed").first())
    assert delivery.attempts == 3 and delivery.last_status == 503
    failed = call_tool("ax_get_failed_webhooks", {"subscription_id": sub.subscription_id}, admin)["deliveries"]
    assert [(d["delivery_id"], d["attempts"], d["last_status"], d["event"]) for d in failed] == [
        (delivery.delivery_id, 3, 503, "salesorder.created")]
    assert failed[0]["last_error"] == "HTTP 503"
    assert call_tool("ax_get_failed_webhooks", {"event_type": "customer.created"}, admin)["deliveries"] == []
    assert len(receiver.requests) == 3


def test_other_4xx_fail_at_once_without_retry(erp, writer, receiver, running_dispatcher):
    receiver.respond = _statuses(400)
    subscribe(receiver.url)
    order(writer)
    delivery = wait_until(lambda: Delivery.objects.filter(status="failed").first())
    assert delivery.attempts == 1 and delivery.last_status == 400
    assert Attempt.objects.get(delivery=delivery).response_excerpt == "nope"


def test_410_gone_disables_the_subscription(erp, writer, receiver, running_dispatcher):
    receiver.respond = _statuses(410)
    sub, _ = subscribe(receiver.url)
    order(writer)
    wait_until(lambda: Delivery.objects.filter(status="failed").exists())
    sub.refresh_from_db()
    assert sub.status == "disabled" and "410" in sub.disabled_reason
    order(writer)  # no delivery for a disabled subscription
    assert Delivery.objects.count() == 1 and len(receiver.requests) == 1


def test_a_redirect_is_not_followed(erp, writer, receiver, running_dispatcher):
    receiver.respond = lambda n, h, b: (302, {"Location": "http://169.254.169.254/latest/meta-data"}, b"")
    subscribe(receiver.url)
    order(writer)
    delivery = wait_until(lambda: Delivery.objects.filter(status="failed").first())
    assert delivery.last_status == 302 and "redirect" in delivery.last_error
    assert len(receiver.requests) == 1


def test_a_slow_receiver_times_out_and_is_retried(erp, writer, receiver, running_dispatcher, settings):
    settings.WEBHOOK_TIMEOUT_MS = 500
    receiver.respond = lambda n, h, b: (200, {}, b"", 1.5 if n == 1 else 0)
    subscribe(receiver.url)
    order(writer)
    receiver.wait_for(2)
    delivery = wait_until(lambda: Delivery.objects.filter(status="succeeded").first())
    first = delivery.attempt_rows.first()
    assert first.error_class == "timeout" and first.status_code is None and first.duration_ms < 1400


def test_manual_retry_of_one_failed_delivery(erp, writer, admin, receiver, running_dispatcher):
    from core.tools.pipeline import call_tool

    receiver.respond = _statuses(400, 200)
    subscribe(receiver.url)
    order(writer)
    delivery = wait_until(lambda: Delivery.objects.filter(status="failed").first())
    result = call_tool("ax_retry_webhook_delivery", {"delivery_id": delivery.delivery_id}, admin)
    assert result == {"retried": 1, "delivery_ids": [delivery.delivery_id]}
    delivery = wait_until(lambda: Delivery.objects.filter(status="succeeded").first())
    last = delivery.attempt_rows.last()
    assert (last.number, last.trigger, last.triggered_by, last.status_code) == (2, "manual", "admin", 200)
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


def test_retry_all_failed_of_a_subscription(erp, writer, admin, receiver, running_dispatcher):
    from core.errors import ToolError
    from core.tools.pipeline import call_tool

    receiver.respond = lambda n, h, b: (400 if n <= 3 else 200, {}, b"")
    sub, _ = subscribe(receiver.url)
    for _ in range(3):
        order(writer)
    wait_until(lambda: Delivery.objects.filter(status="failed").count() == 3)
    result = call_tool("ax_retry_webhook_delivery", {"subscription_id": sub.subscription_id}, admin)
    assert result["retried"] == 3
    wait_until(lambda: Delivery.objects.filter(status="succeeded").count() == 3)
    assert call_tool("ax_retry_webhook_delivery", {"subscription_id": sub.subscription_id}, admin)["retried"] == 0
    Subscription.objects.filter(pk=sub.pk).update(status="disabled", disabled_reason="gone")
    with pytest.raises(ToolError) as refused:
        call_tool("ax_retry_webhook_delivery", {"delivery_id": Delivery.objects.first().delivery_id}, admin)
    assert refused.value.code == "INVALID_STATE"


def test_resending_a_succeeded_delivery_sends_the_same_event_again(erp, writer, admin, receiver, running_dispatcher):
    from core.tools.pipeline import call_tool

    sub, _ = subscribe(receiver.url)
    order(writer)
    delivery = wait_until(lambda: Delivery.objects.filter(status="succeeded").first())
    assert call_tool("ax_retry_webhook_delivery", {"delivery_id": delivery.delivery_id}, admin)["retried"] == 1
    wait_until(lambda: Delivery.objects.filter(status="succeeded", attempts=2).first())
    first, second = delivery.attempt_rows.all()
    assert (first.trigger, second.trigger, second.triggered_by, second.success) == (
        "automatic", "manual", "admin", True)
    assert [r.headers["webhook-id"] for r in receiver.requests] == [delivery.event.event_id] * 2
    assert receiver.requests[0].body == receiver.requests[1].body
