"""A send interrupted by a dying sender (claimed, then nothing recorded) shows in the attempt log as
an `interrupted` attempt once its lease runs out, and counts like any failed attempt."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings

from core.webhooks import clock, dispatcher
from core.webhooks.delivery import INTERRUPTED_ERROR, attempt, interrupted, load_claimed, record
from core.webhooks.models import Attempt, Delivery
from tests.waiting import wait_until
from tests.webhooks.helpers import order, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def _claimed_and_abandoned() -> Delivery:
    """What a dispatcher leaves behind when it dies right after its claim: a `sending` row."""
    (chunk,) = dispatcher.claim_due(sending=True)
    (delivery,) = load_claimed(chunk.token)
    return delivery


def _past_the_lease() -> None:
    clock.advance(timedelta(milliseconds=django_settings.WEBHOOK_LOOKAHEAD_MS + django_settings.WEBHOOK_TIMEOUT_MS,
                            seconds=31))


def _log() -> list[tuple]:
    return list(Attempt.objects.order_by("number").values_list("number", "error_class", "status_code"))


def test_a_send_cut_short_is_logged_as_interrupted_and_sent_again(erp, writer, receiver, worker):
    sub, _ = subscribe(receiver.url, retry_policy={"max_retries": 3, "backoff_ms": 100})
    order(writer)
    claimed = _claimed_and_abandoned()
    assert dispatcher.tick(worker.submit)["recovered"] == 0  # the lease still holds
    _past_the_lease()
    before = clock.now()
    done = dispatcher.tick(worker.submit)  # one round of the loop: recovery runs after dispatching
    after = clock.now()
    assert done["recovered"] == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 1, INTERRUPTED_ERROR)
    backoff = timedelta(milliseconds=100)  # retry 1 waits backoff_ms, as after any failed attempt
    assert before + backoff <= delivery.next_attempt_at <= after + backoff
    row = Attempt.objects.get()
    assert (row.number, row.error_class, row.error, row.success) == (1, "interrupted", INTERRUPTED_ERROR, False)
    assert row.started == claimed.last_attempt_at and row.trigger == "automatic"

    worker.dispatch()
    receiver.wait_for(1)
    delivery = wait_until(lambda: Delivery.objects.filter(status="succeeded").first())
    assert delivery.attempts == 2
    assert _log() == [(1, "interrupted", None), (2, "", 200)]
    sub.refresh_from_db()
    assert sub.failing_since is None and sub.last_success_at is not None


def test_an_interrupted_attempt_counts_toward_max_retries(erp, writer, receiver, worker):
    receiver.respond = lambda n, h, b: (503, {}, b"")
    subscribe(receiver.url, retry_policy={"max_retries": 1, "backoff_ms": 100})
    order(writer)
    _claimed_and_abandoned()
    _past_the_lease()
    assert dispatcher.recover_stale() == 1
    worker.dispatch()  # the one retry left
    delivery = wait_until(lambda: Delivery.objects.filter(status="failed").first())
    assert delivery.attempts == 2 and len(receiver.requests) == 1
    assert _log() == [(1, "interrupted", None), (2, "http_5xx", 503)]


def test_without_retries_an_interrupted_delivery_is_dead_lettered(erp, writer, receiver):
    subscribe(receiver.url, retry_policy={"max_retries": 0, "backoff_ms": 100})
    order(writer)
    _claimed_and_abandoned()
    _past_the_lease()
    assert dispatcher.recover_stale() == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.claim) == ("failed", 1, "")
    assert delivery.last_error == INTERRUPTED_ERROR and delivery.finished is not None
    assert _log() == [(1, "interrupted", None)]


def test_an_interrupted_manual_retry_keeps_who_asked(erp, writer, admin, receiver):
    from core.tools.pipeline import call_tool

    receiver.respond = lambda n, h, b: (400, {}, b"")
    subscribe(receiver.url)
    order(writer)
    (chunk,) = dispatcher.claim_due(sending=True)
    record([attempt(load_claimed(chunk.token)[0], chunk.token)])
    call_tool("ax_retry_webhook_delivery", {"delivery_id": Delivery.objects.get().delivery_id}, admin)
    _claimed_and_abandoned()
    _past_the_lease()
    assert dispatcher.recover_stale() == 1
    row = Attempt.objects.get(number=2)
    assert (row.error_class, row.trigger, row.triggered_by) == ("interrupted", "manual", "admin")


def test_an_outcome_recorded_after_recovery_replaces_the_interrupted_row(erp, writer, receiver):
    """The sender was only slow: its outcome arrives after recovery logged the attempt as
    interrupted. The log then shows what really happened, still as one attempt."""
    subscribe(receiver.url, retry_policy={"max_retries": 3, "backoff_ms": 100})
    order(writer)
    delivery = _claimed_and_abandoned()
    late = attempt(delivery, delivery.claim)  # sent and answered, not yet recorded
    _past_the_lease()
    assert dispatcher.recover_stale() == 1
    assert _log() == [(1, "interrupted", None)]
    assert record([late]) == 0  # the claim is gone: the delivery stays as recovery left it
    assert _log() == [(1, "", 200)]
    assert Delivery.objects.get().status == "pending"


def test_a_recovery_that_loses_to_the_real_outcome_logs_nothing(erp, writer, receiver):
    subscribe(receiver.url)
    order(writer)
    delivery = _claimed_and_abandoned()
    stale = interrupted(Delivery.objects.select_related("subscription").get())  # read while still sending
    assert record([attempt(delivery, delivery.claim)]) == 1
    assert record([stale]) == 0
    assert _log() == [(1, "", 200)]
    assert Delivery.objects.get().status == "succeeded"


def test_recovery_logs_each_stale_delivery_once(erp, writer, receiver):
    subscribe(receiver.url)
    for _ in range(3):
        order(writer)
    assert len(dispatcher.claim_due(sending=True)) == 1
    _past_the_lease()
    assert dispatcher.recover_stale() == 3
    assert dispatcher.recover_stale() == 0
    assert sorted(Attempt.objects.values_list("error_class", flat=True)) == ["interrupted"] * 3


def test_an_outcome_of_a_delivery_deleted_meanwhile_does_not_cost_the_others_theirs(erp, writer, receiver):
    """A subscription deleted while its deliveries were being sent takes them along; the outcomes
    the dispatcher then records for them are dropped, and the rest of its batch is recorded."""
    from core.webhooks import services

    gone, _ = subscribe(receiver.url)
    kept, _ = subscribe(receiver.url)
    order(writer)
    (chunk,) = dispatcher.claim_due(sending=True)
    outcomes = [attempt(d, chunk.token) for d in load_claimed(chunk.token)]
    assert len(outcomes) == 2
    services.unsubscribe(gone)
    assert record(outcomes) == 1
    delivery = Delivery.objects.get()
    assert (delivery.subscription_id, delivery.status) == (kept.pk, "succeeded")
    assert _log() == [(1, "", 200)]
