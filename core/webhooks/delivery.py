"""Sending claimed deliveries: sign, POST through the transport, record the attempt, decide what next.

Success is 2xx. Timeouts, connection errors, 5xx and 429 are retried after
backoff_ms * 2^(n-1) (or Retry-After when that is longer); 410 disables the subscription;
any other answer fails without retry. After the last retry the delivery is failed (the dead
letter queue that ax_get_failed_webhooks lists and ax_retry_webhook_delivery empties).

An attempt whose sender died (the process was killed after the claim, before the outcome was
recorded) is logged when recovery finds its lease run out: an `interrupted` attempt row. It
counts like any failed attempt, toward max_retries and the backoff, because the receiver may
well have got the request; it does not mark the subscription failing, since the fault was ours.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import connection, transaction

from core import jsoncodec
from core.db import write_slot
from core.events.models import Event
from core.webhooks import clock, crypto, transport
from core.webhooks.models import Attempt, Delivery, Subscription

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted"
INTERRUPTED_ERROR = ("the sender stopped before the attempt finished (lease expired); the receiver may or may "
                     "not have got the request")
RETRYABLE = frozenset({"timeout", "connection", "dns", "tls", "http_5xx", "http_429", INTERRUPTED})
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
    return jsoncodec.dumps({"id": event.event_id, "event": event.type, "timestamp": stamp, "data": event.data},
                           separators=(",", ":")).encode()


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


def load_claimed(*tokens: str) -> list[Delivery]:
    """The deliveries moved to `sending` under these tokens, with their events, in one query,
    and their subscriptions in one more: a subscription is read once, not once per delivery
    (most deliveries of a backlog share a handful of subscriptions)."""
    rows = list(Delivery.objects.select_related("event").filter(claim__in=tokens, status=Delivery.Status.SENDING)
                .order_by("next_attempt_at"))
    subscriptions = Subscription.objects.in_bulk({d.subscription_id for d in rows})
    for d in rows:
        d.subscription = subscriptions[d.subscription_id]
    return rows


def send_one(pk: int, token: str, due: datetime | None = None, *, preclaimed: bool = False) -> bool:
    """Attempt one delivery if its claim still holds and record the outcome at once.
    `preclaimed`: the row is already `sending` under this token; else it is taken pending ->
    sending here (a django-q2 task)."""
    if not preclaimed:
        now = clock.now()
        with write_slot():
            claimed = Delivery.objects.filter(pk=pk, claim=token, status=Delivery.Status.PENDING).update(
                status=Delivery.Status.SENDING, claimed_until=now + sending_lease(), last_attempt_at=now)
        if claimed != 1:
            return False
    delivery = (Delivery.objects.select_related("subscription", "event")
                .filter(pk=pk, claim=token, status=Delivery.Status.SENDING).first())
    if delivery is None:
        return False
    outcome = attempt(delivery, token, due)
    record([outcome])
    return not outcome.release


@dataclass
class Outcome:
    """What one attempt did, waiting to be recorded."""

    delivery: Delivery
    token: str
    started: datetime
    result: transport.Result | None  # None: nothing was sent (expired, or released)
    error: str = ""
    release: bool = False  # the subscription was paused or disabled since the claim: back to the queue


def interrupted(delivery: Delivery) -> Outcome:
    """The outcome of an attempt whose sender stopped: `delivery` is still `sending` under the claim
    it was loaded with, and the attempt started when it was claimed (last_attempt_at)."""
    started = delivery.last_attempt_at or clock.now()
    return Outcome(delivery, delivery.claim, started, transport.Result(None, 0, INTERRUPTED, INTERRUPTED_ERROR))


def attempt(delivery: Delivery, token: str, due: datetime | None = None) -> Outcome:
    """Sign and POST one claimed delivery; no database writes. The dispatcher claims a little
    ahead of time, so wait for the due moment first."""
    if due is not None:
        wait = (due - clock.now()).total_seconds()
        if 0 < wait <= settings.WEBHOOK_LOOKAHEAD_MS / 1000 + 1:
            time.sleep(wait)
    now = clock.now()
    sub = delivery.subscription
    if sub.status != Subscription.Status.ACTIVE:
        return Outcome(delivery, token, now, None, release=True)
    if not delivery.next_trigger and delivery.created < now - expiry():
        return Outcome(delivery, token, now, None, error="expired: not delivered within "
                       f"{settings.WEBHOOK_EXPIRY_DAYS} days; retry it manually to send it again")
    body = payload(delivery.event)
    try:
        secrets = signing_secrets(sub, now)
    except InvalidToken:
        result = transport.Result(None, 0, "secret", "the signing secret cannot be decrypted (SECRET_KEY changed?); "
                                  "rotate the secret")
    else:
        result = transport.post(sub.url, body, headers_for(delivery.event.event_id, body, secrets))
    return Outcome(delivery, token, now, result)


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


_UPDATED = ["status", "attempts", "cycle_attempts", "last_status", "last_error", "last_attempt_at",
            "next_attempt_at", "finished", "claim", "claimed_until", "next_trigger"]


def _apply(o: Outcome, now: datetime, subs: dict[int, dict]) -> Attempt | None:
    """Move o.delivery on in memory; note subscription changes in `subs`; return the attempt row."""
    d, result = o.delivery, o.result
    d.claim, d.claimed_until = "", None
    if o.release:
        d.status = Delivery.Status.PENDING
        return None
    trigger, _, by = d.next_trigger.partition(":")
    d.next_trigger = ""
    if result is None:  # expired without sending
        d.status, d.finished, d.next_attempt_at, d.last_error = Delivery.Status.FAILED, now, None, o.error[:500]
        return None
    row = Attempt(delivery=d, number=d.attempts + 1, started=o.started, status_code=result.status,
                  duration_ms=result.duration_ms, success=result.ok, error_class=result.error_class,
                  error=result.error, response_excerpt=result.excerpt,
                  trigger=Attempt.Trigger.MANUAL if trigger == "manual" else Attempt.Trigger.AUTOMATIC,
                  triggered_by=by[:150])
    delay = None if result.ok or result.status == 410 else _retry_delay(d, result)
    d.attempts += 1
    d.cycle_attempts += 1
    d.last_status, d.last_error, d.last_attempt_at = result.status, result.error, o.started
    if result.ok:
        d.status, d.finished, d.next_attempt_at = Delivery.Status.SUCCEEDED, now, None
    elif delay is not None and d.created + expiry() > now + delay:
        d.status, d.next_attempt_at = Delivery.Status.PENDING, now + delay
    else:
        d.status, d.finished, d.next_attempt_at = Delivery.Status.FAILED, now, None
    if result.error_class == INTERRUPTED:  # says nothing about the endpoint
        return row
    sub = d.subscription
    state = subs.setdefault(sub.pk, {"sub": sub, "failing_since": sub.failing_since, "changes": {}})
    if result.ok:
        if state["failing_since"] or not sub.last_success_at or sub.last_success_at < now - _SUCCESS_WRITE_EVERY:
            state["changes"].update(last_success_at=now, failing_since=None)
        state["failing_since"] = None
    elif result.status == 410:
        state["gone"] = f"the endpoint answered 410 Gone on {now:%Y-%m-%d %H:%M:%S} UTC (delivery {d.delivery_id})"
    elif state["failing_since"] is None:
        state["failing_since"] = now
        state["changes"]["failing_since"] = now
    return row


class _ClaimLost(Exception):
    """Some outcome's claim no longer held: record the batch again, one outcome at a time."""


def record(outcomes: list[Outcome]) -> int:
    """Record attempts and move deliveries (and subscriptions) on, all in one transaction: one
    prepared update and one bulk insert whatever the number of outcomes. Returns how many
    outcomes still held their claim.

    A claim is lost only to recovery, after the lease ran out, which logged the attempt as
    `interrupted`. A late outcome then replaces that row with what really happened (the
    delivery itself stays as recovery left it); a recovery that lost to the real outcome logs
    nothing. Both are rare, so the batch is simply done again one outcome at a time; so is a
    batch holding the outcome of a delivery deleted meanwhile, which is dropped."""
    if not outcomes:
        return 0
    now = clock.now()
    subs: dict[int, dict] = {}
    rows = [_apply(o, now, subs) for o in outcomes]
    try:
        with write_slot(), transaction.atomic():
            if _update_claimed([(o.delivery, o.token) for o in outcomes]) != len(outcomes):
                raise _ClaimLost
            Attempt.objects.bulk_create([row for row in rows if row is not None])
            _update_subscriptions(subs, now)
        return len(outcomes)
    except _ClaimLost:
        pass
    held = 0
    with write_slot(), transaction.atomic():
        for outcome, row in zip(outcomes, rows, strict=True):
            if _update_claimed([(outcome.delivery, outcome.token)]) == 1:
                held += 1
                if row is not None:
                    row.save()
            elif row is not None and row.error_class != INTERRUPTED:
                _replace_interrupted(row)
        _update_subscriptions(subs, now)
    return held


def _replace_interrupted(row: Attempt) -> None:
    """Put a late outcome in place of the interrupted row recovery wrote for the same attempt."""
    fields = ["started", "status_code", "duration_ms", "success", "error_class", "error", "response_excerpt"]
    changed = Attempt.objects.filter(delivery_id=row.delivery_id, number=row.number, error_class=INTERRUPTED).update(
        **{name: getattr(row, name) for name in fields})
    # A delivery deleted meanwhile (its subscription was) has no log to write to; its row would
    # fail the whole batch's transaction on the foreign key.
    if not changed and Delivery.objects.filter(pk=row.delivery_id).exists():
        row.save()


def _update_subscriptions(subs: dict[int, dict], now: datetime) -> None:
    for pk, state in subs.items():
        if "gone" in state:
            Subscription.objects.filter(pk=pk, status=Subscription.Status.ACTIVE).update(
                status=Subscription.Status.DISABLED, disabled_reason=state["gone"], updated=now)
        elif state["changes"]:
            Subscription.objects.filter(pk=pk).update(**state["changes"])


@functools.cache
def _update_claimed_sql() -> str:
    def column(name: str) -> str:
        return connection.ops.quote_name(Delivery._meta.get_field(name).column)

    return (f"UPDATE {connection.ops.quote_name(Delivery._meta.db_table)} "
            f"SET {', '.join(f'{column(name)} = %s' for name in _UPDATED)} "
            f"WHERE {column('id')} = %s AND {column('status')} = %s AND {column('claim')} = %s")


def _update_claimed(rows: list[tuple[Delivery, str]]) -> int:
    """UPDATE each delivery's fields where it is still `sending` under its token: one prepared
    statement run with executemany (the ORM's bulk_update builds a CASE per field and row, which
    costs more CPU than the sending itself). Returns how many rows it changed."""
    fields = [Delivery._meta.get_field(name) for name in _UPDATED]
    params = [[f.get_db_prep_save(getattr(d, f.attname), connection) for f in fields]
              + [d.pk, Delivery.Status.SENDING.value, token] for d, token in rows]
    with connection.cursor() as cursor:
        cursor.executemany(_update_claimed_sql(), params)
        return cursor.rowcount  # the sum over all rows, with sqlite3 and psycopg alike
