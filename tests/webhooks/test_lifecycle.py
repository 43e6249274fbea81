"""Time-driven rules with the injectable clock: retry schedule, 7-day expiry, rotation grace; pause;
and a worker or dispatcher process killed in the middle of a delivery."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from standardwebhooks import Webhook, WebhookVerificationError

from core.tools.pipeline import call_tool
from core.webhooks import clock, dispatcher, services
from core.webhooks.models import Attempt, Delivery
from tests.waiting import wait_until
from tests.webhooks.helpers import attempted, order, subprocess_env, subscribe, verify

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def test_default_policy_retries_after_1_2_and_4_seconds(erp, writer, receiver, worker):
    receiver.respond = lambda n, h, b: (503, {}, b"")
    sub, _ = subscribe(receiver.url, retry_policy=None)
    assert sub.retry_policy.as_dict() == {"max_retries": 3, "backoff_ms": 1000}
    clock.freeze()
    order(writer)
    worker.dispatch()
    waits = []
    for n in (1, 2, 3):
        delivery = attempted(n)
        waits.append(delivery.next_attempt_at - delivery.last_attempt_at)
        clock.advance(delivery.next_attempt_at - clock.now())
        worker.dispatch()
    delivery = attempted(4)
    assert waits == [timedelta(seconds=1), timedelta(seconds=2), timedelta(seconds=4)]
    assert delivery.status == "failed" and len(receiver.requests) == 4


def test_no_automatic_retry_reaches_past_7_days_and_the_subscription_is_disabled(erp, writer, receiver, worker):
    receiver.respond = lambda n, h, b: (503, {}, b"")
    sub, _ = subscribe(receiver.url, retry_policy={"max_retries": 20, "backoff_ms": 3_600_000})
    order(writer)
    worker.dispatch()
    n = 1
    while (delivery := attempted(n)).status == "pending":
        clock.advance(delivery.next_attempt_at - clock.now())
        worker.dispatch()
        n += 1
    # 1+2+4+…+64 hours = 5.3 days; the next wait (128 h) would end after the 7 days.
    assert delivery.attempts == 8 and delivery.status == "failed"
    sub.refresh_from_db()
    assert sub.status == "active" and sub.failing_since is not None
    clock.advance(timedelta(days=7) - (clock.now() - sub.failing_since) + timedelta(minutes=1))
    assert dispatcher.expire_and_disable()["disabled"] == 1
    sub.refresh_from_db()
    assert sub.status == "disabled" and "7 days without a success" in sub.disabled_reason
    assert services.subscription_data(sub)["disabled_reason"] == sub.disabled_reason


def test_waiting_deliveries_older_than_7_days_expire(erp, writer, admin, receiver, worker):
    sub, _ = subscribe(receiver.url)
    services.update(sub, status="paused")
    order(writer)
    assert Delivery.objects.get().status == "pending"
    clock.advance(timedelta(days=7, seconds=1))
    assert dispatcher.expire_and_disable()["expired"] == 1
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.last_error.startswith("expired")
    services.update(sub, status="active")
    # Manual retry still sends an expired delivery.
    call_tool("ax_retry_webhook_delivery", {"delivery_id": delivery.delivery_id}, admin)
    worker.dispatch()
    receiver.wait_for(1)
    wait_until(lambda: Delivery.objects.filter(status="succeeded").exists())


def test_a_paused_subscription_holds_its_deliveries_until_resumed(erp, writer, receiver, worker):
    sub, _ = subscribe(receiver.url)
    services.update(sub, status="paused")
    order(writer)
    assert worker.dispatch() == 0
    assert receiver.requests == []
    services.update(sub, status="active")
    assert worker.dispatch() == 1
    receiver.wait_for(1)


def test_rotation_signs_with_both_secrets_for_24_hours(erp, writer, receiver, worker):
    sub, old = subscribe(receiver.url)
    new, until = services.rotate_secret(sub)
    assert new != old and new.startswith("whsec_")
    assert timedelta(hours=23, minutes=59) < until - clock.now() <= timedelta(hours=24)
    order(writer)
    worker.dispatch()
    got = receiver.wait_for(1)[0]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    verify(old, got)
    verify(new, got)
    clock.advance(timedelta(hours=24, seconds=1))
    order(writer)
    worker.dispatch()
    got = receiver.wait_for(2)[1]
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    verify(new, got)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(got.body, got.headers)


def test_a_plain_secret_signs_with_its_utf8_bytes(erp, writer, receiver, worker):
    subscribe(receiver.url, secret="webhook-secret-key")
    order(writer)
    worker.dispatch()
    got = receiver.wait_for(1)[0]
    Webhook(b"webhook-secret-key").verify(got.body, got.headers)


def _killed_while_the_receiver_holds_the_request(proc: subprocess.Popen, receiver) -> None:
    try:
        receiver.wait_for(1, timeout=30)
        assert Delivery.objects.get().status == "sending"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()


def _recovered_and_delivered(receiver, worker) -> Delivery:
    """After the lease the interrupted attempt is logged and the delivery sent again, same webhook-id."""
    assert dispatcher.recover_stale() == 0  # the lease has not run out yet
    claimed_at = Delivery.objects.get().last_attempt_at
    clock.advance(timedelta(milliseconds=django_settings.WEBHOOK_TIMEOUT_MS + django_settings.WEBHOOK_LOOKAHEAD_MS,
                            seconds=31))
    assert dispatcher.recover_stale() == 1
    worker.dispatch()
    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    delivery = wait_until(lambda: Delivery.objects.filter(status="succeeded").first())
    # Two attempts, as the receiver saw them: the killed one, logged as interrupted, and the retry.
    assert delivery.attempts == 2
    rows = list(Attempt.objects.filter(delivery=delivery).values_list("number", "error_class", "status_code",
                                                                      "started"))
    assert rows[0] == (1, "interrupted", None, claimed_at)
    assert rows[1][:3] == (2, "", 200)
    return delivery


def test_a_worker_killed_mid_delivery_loses_nothing(erp, writer, receiver, worker):
    """A real OS process takes the delivery and is killed (SIGKILL) while the receiver holds the
    request."""
    receiver.respond = lambda n, h, b: (None, {}, b"") if n == 1 else (200, {}, b"")
    subscribe(receiver.url)
    order(writer)
    (claimed,) = dispatcher.claim_due()
    code = ("import django; django.setup(); from core.webhooks.tasks import send_claimed; "
            f"send_claimed({claimed.token!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=subprocess_env())
    _killed_while_the_receiver_holds_the_request(proc, receiver)
    _recovered_and_delivered(receiver, worker)


def test_a_dispatcher_killed_mid_delivery_loses_nothing(erp, writer, receiver, worker):
    """The dispatcher process itself claims and sends, and is killed mid-request."""
    receiver.respond = lambda n, h, b: (None, {}, b"") if n == 1 else (200, {}, b"")
    subscribe(receiver.url)
    order(writer)
    proc = subprocess.Popen([sys.executable, "manage.py", "webhook_dispatcher"], cwd=ROOT, env=subprocess_env(),
                            stdout=subprocess.DEVNULL)
    _killed_while_the_receiver_holds_the_request(proc, receiver)
    delivery = _recovered_and_delivered(receiver, worker)
    assert delivery.subscription.failing_since is None  # our crash, not the endpoint's failure
