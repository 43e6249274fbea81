"""Sending claimed deliveries: sign, POST through the transport, record the attempt, decide what next.

Success is 2xx. Timeouts, connection errors, 5xx and 429 are retried after
backoff_ms * 2^(n-1) (or Retry-After when that is longer); 410 disables the subscription;
any other answer fails without retry. After the last retry the delivery is failed (the dead
letter queue that ax_get_failed_webhooks lists and ax_retry_webhook_delivery empties).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from datetime import datetime, timedelta

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from core.db import write_slot
from core.events.models import Event
from core.webhooks import clock, crypto, transport
from core.webhooks.models import Attempt, Delivery, Subscription

log = logging.getLogger(__name__)

RETRYABLE = frozenset({"timeout", "connection", "dns", "tls", "http_5xx", "http_429"})
MAX_RETRY_AFTER = timedelta(days=1)
# Don't write last_success_at on every success of a busy subscription: once a minute is enough.
_SUCCESS_WRITE_EVERY = timedelta(minutes=1)


def expiry() -> timedelta:
    return timedelta(days=settings.WEBHOOK_EXPIRY_DAYS)


def sending_lease() -> timedelta:
    """How long a delivery may stay 'sending' before recovery assumes its worker died."""
    return timedelta(milliseconds=settings.WEBHOOK_TIMEOUT_MS) + timedelta(seconds=30)


def payload(event: Event) -> bytes:
    """The request body: {"id", "event", "timestamp", "data"}, compact UTF-8 JSON."""
    stamp = event.created.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"id": event.event_id, "event": event.type, "timestamp": stamp, "data": event.data},
                      separators=(",", ":"), ensure_ascii=False).encode()


def signing_secrets(sub: Subscription, now: datetime) -> list[str]:
    """The current secret, plus the previous one during the rotation grace period."""
    found = [crypto.decrypt(sub.secret_encrypted)]
    if sub.previous_secret_encrypted and sub.previous_secret_expires and sub.previous_secret_expires > now:
        found.append(crypto.decrypt(sub.previous_secret_encrypted))
    return found


def headers_for(msg_id: str, body: bytes, secrets: list[str], timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(crypto.sign(s, msg_id, timestamp, body) for s in secrets),
    }


def send_claimed(token: str) -> int:
    """The task body: send every delivery claimed with `token`, each no earlier than it is due,
    on up to WEBHOOK_SEND_THREADS threads. Returns how many were attempted."""
    rows = list(Delivery.objects.filter(claim=token, status=Delivery.Status.PENDING)
                .order_by("next_attempt_at").values_list("pk", "next_attempt_at"))
    if not rows:
        return 0
    if len(rows) == 1:
        return int(send_one(rows[0][0], token, rows[0][1]))
    pending: queue.SimpleQueue[tuple[int, datetime]] = queue.SimpleQueue()
    for row in rows:
        pending.put(row)
    sent = [0]
    lock = threading.Lock()

    def work() -> None:
        try:
            while True:
                try:
                    pk, due = pending.get_nowait()
                except queue.Empty:
                    return
                if send_one(pk, token, due):
                    with lock:
                        sent[0] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=work, name=f"webhooks-{token[:8]}-{n}", daemon=True)
               for n in range(min(settings.WEBHOOK_SEND_THREADS, len(rows)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent[0]


def send_one(pk: int, token: str, due: datetime | None = None, *, preclaimed: bool = False) -> bool:
    """Attempt one delivery if its claim still holds. The dispatcher claims a little ahead of
    time, so wait for the due moment first. `preclaimed`: the dispatcher already moved the row
    to `sending` under this token (its own senders); a task takes it pending -> sending here."""
    if due is not None:
        wait = (due - clock.now()).total_seconds()
        if 0 < wait <= settings.WEBHOOK_LOOKAHEAD_MS / 1000 + 1:
            time.sleep(wait)
    now = clock.now()
    if not preclaimed:
        with write_slot():
            claimed = Delivery.objects.filter(pk=pk, claim=token, status=Delivery.Status.PENDING).update(
                status=Delivery.Status.SENDING, claimed_until=now + sending_lease(), last_attempt_at=now)
        if claimed != 1:
            return False
    delivery = (Delivery.objects.select_related("subscription", "event")
                .filter(pk=pk, claim=token, status=Delivery.Status.SENDING).first())
    if delivery is None:
        return False
    if delivery.subscription.status != Subscription.Status.ACTIVE:  # paused or disabled since the claim
        with write_slot():
            Delivery.objects.filter(pk=pk, claim=token, status=Delivery.Status.SENDING).update(
                status=Delivery.Status.PENDING, claim="", claimed_until=None)
        return False
    automatic = not delivery.next_trigger
    if automatic and delivery.created < now - expiry():
        _finish(delivery, token, now, None, error="expired: not delivered within "
                f"{settings.WEBHOOK_EXPIRY_DAYS} days; retry it manually to send it again")
        return True
    body = payload(delivery.event)
    try:
        secrets = signing_secrets(delivery.subscription, now)
    except InvalidToken:
        result = transport.Result(None, 0, "secret", "the signing secret cannot be decrypted (SECRET_KEY changed?); "
                                  "rotate the secret")
    else:
        result = transport.post(delivery.subscription.url, body, headers_for(delivery.event.event_id, body, secrets))
    _finish(delivery, token, now, result)
    return True


def _retry_delay(delivery: Delivery, result: transport.Result) -> timedelta | None:
    """When to try again, or None for no retry."""
    policy = delivery.subscription.retry_policy
    retry_number = delivery.cycle_attempts + 1  # this attempt was number cycle_attempts + 1
    if result.error_class not in RETRYABLE or retry_number > policy.max_retries:
        return None
    delay = timedelta(milliseconds=policy.delay_ms(retry_number))
    if result.retry_after is not None:
        delay = max(delay, min(timedelta(seconds=result.retry_after), MAX_RETRY_AFTER))
    return delay


def _finish(delivery: Delivery, token: str, started: datetime, result: transport.Result | None, *,
            error: str = "") -> None:
    """Record the attempt and move the delivery (and maybe its subscription) on, in one transaction."""
    now = clock.now()
    sub = delivery.subscription
    trigger, _, by = delivery.next_trigger.partition(":")
    fields: dict = {"claim": "", "claimed_until": None, "next_trigger": ""}
    sub_changes: dict = {}
    sub_filter = Q()
    if result is None:  # expired without sending
        fields.update(status=Delivery.Status.FAILED, finished=now, last_error=error[:500])
    else:
        fields.update(attempts=delivery.attempts + 1, cycle_attempts=delivery.cycle_attempts + 1,
                      last_status=result.status, last_error=result.error, last_attempt_at=started)
        delay = None if result.ok or result.status == 410 else _retry_delay(delivery, result)
        if result.ok:
            fields.update(status=Delivery.Status.SUCCEEDED, finished=now, next_attempt_at=None)
            if sub.failing_since or not sub.last_success_at or sub.last_success_at < now - _SUCCESS_WRITE_EVERY:
                sub_changes = {"last_success_at": now, "failing_since": None}
        elif delay is not None and delivery.created + expiry() > now + delay:
            fields.update(status=Delivery.Status.PENDING, next_attempt_at=now + delay)
        else:
            fields.update(status=Delivery.Status.FAILED, finished=now, next_attempt_at=None)
        if not result.ok:
            if result.status == 410:
                sub_changes = {"status": Subscription.Status.DISABLED, "updated": now,
                               "disabled_reason": f"the endpoint answered 410 Gone on {now:%Y-%m-%d %H:%M:%S} UTC "
                                                  f"(delivery {delivery.delivery_id})"}
                sub_filter = Q(status=Subscription.Status.ACTIVE)
            elif sub.failing_since is None:
                sub_changes = {"failing_since": now}
                sub_filter = Q(failing_since__isnull=True)
    with write_slot(), transaction.atomic():
        if result is not None:
            Attempt.objects.create(
                delivery=delivery, number=delivery.attempts + 1, started=started, status_code=result.status,
                duration_ms=result.duration_ms, success=result.ok, error_class=result.error_class,
                error=result.error, response_excerpt=result.excerpt,
                trigger=Attempt.Trigger.MANUAL if trigger == "manual" else Attempt.Trigger.AUTOMATIC,
                triggered_by=by[:150])
        Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING, claim=token).update(**fields)
        if sub_changes:
            Subscription.objects.filter(sub_filter, pk=sub.pk).update(**sub_changes)
