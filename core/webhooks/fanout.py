"""From committed events to deliveries: match subscriptions (type + filters), one row per match.

Runs after the publishing transaction committed (an event-bus subscriber), in bulk: one
query for the subscriptions, one bulk insert for the deliveries, in a transaction that also
marks the events fanned out. The dispatcher picks the new rows up on its next poll; with
WEBHOOK_SENDER=worker they are instead created already claimed (a token per chunk) and
enqueued to django-q2 at once.
"""

from __future__ import annotations

import functools
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction

from core.db import run_sql, write_slot
from core.dialect import dialect
from core.events.catalog import TEST_EVENT, type_matches
from core.events.models import Event
from core.webhooks import clock, subjects
from core.webhooks.filters import Filters
from core.webhooks.models import Delivery, Subscription

log = logging.getLogger(__name__)

# Events not fanned out this long after they were stored are swept up by the dispatcher.
SWEEP_AFTER = timedelta(seconds=5)


def new_token() -> str:
    return secrets.token_hex(16)


def new_delivery_id() -> str:
    return "dlv_" + secrets.token_hex(12)


def workers_send() -> bool:
    """WEBHOOK_SENDER=worker: django-q2 tasks send, enqueued right at fan-out. The default,
    dispatcher, leaves new rows due now and the dispatcher's own threads send them."""
    return settings.WEBHOOK_SENDER == "worker"


def enqueue_lease() -> timedelta:
    """How long a claimed delivery waits for its task before the dispatcher enqueues it again."""
    return timedelta(seconds=settings.WEBHOOK_ENQUEUE_LEASE_SECONDS)


@functools.cache
def _any_listening_sql() -> str:
    from django.db import connection

    table = connection.ops.quote_name(Subscription._meta.db_table)
    return f"SELECT 1 FROM {table} WHERE status <> %s LIMIT 1"


def has_subscriptions() -> bool:
    """Whether any subscription could receive an event now (paused ones queue their deliveries).
    Asked once per publishing transaction, so one plain statement."""
    return bool(run_sql(_any_listening_sql(), [Subscription.Status.DISABLED.value]))


def on_events(event_ids: list[str]) -> None:
    """Event-bus subscriber. On failure the events keep fanned_out=False (the sweep retries them)
    and carry the error, which the Events page shows."""
    try:
        fan_out(event_ids)
    except Exception as exc:  # the bus logs it and counts it; the sweep retries these events
        try:
            Event.objects.filter(event_id__in=event_ids, fanned_out=False).update(
                fanout_error=f"{type(exc).__name__}: {exc}"[:500])
        except Exception:  # noqa: BLE001
            log.exception("could not record the fan-out failure")
        raise


def fan_out(event_ids: list[str]) -> int:
    """Create the deliveries of these events (those not fanned out yet); returns how many."""
    tokens: list[str] = []
    with write_slot(), transaction.atomic():
        if relaxed := dialect().commit_without_flush:
            # A fan-out lost in a crash leaves its events fanned_out=False and its deliveries
            # unwritten, together: the sweep fans them out again. So its commit need not wait
            # for the disk (on PostgreSQL a flush per write call, behind the call's own).
            run_sql(relaxed, [])
        subscriptions = [(s, s.patterns, Filters.from_json(s.filters)) for s in
                         Subscription.objects.exclude(status=Subscription.Status.DISABLED)]
        if not subscriptions:  # nothing to match: mark them done without reading their data
            Event.objects.filter(event_id__in=event_ids, fanned_out=False).update(fanned_out=True, fanout_error="")
            return 0
        events = Event.objects.filter(event_id__in=event_ids, fanned_out=False).only("pk", "type", "data")
        if not dialect().one_writer:  # one writer at a time (SQLite) already serialises the fan-out
            events = events.select_for_update(skip_locked=True)
        events = list(events)
        if not events:
            return 0
        rows = [row for event in events for row in _deliveries(event, subscriptions)]
        tokens = _prepare(rows)
        Delivery.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
        Event.objects.filter(pk__in=[e.pk for e in events]).update(fanned_out=True, fanout_error="")
        transaction.on_commit(lambda: enqueue(tokens))
    return len(rows)


def _deliveries(event: Event, subscriptions: list[tuple[Subscription, tuple[str, ...], Filters]]) -> list[Delivery]:
    """One delivery per subscription that listens to the event's type (any of its patterns) and
    whose filters hold, each carrying what the event is about."""
    if event.type == TEST_EVENT:
        return []
    matched = [sub for sub, patterns, filters in subscriptions
               if any(type_matches(p, event.type) for p in patterns) and filters.matches(event.data)]
    if not matched:
        return []
    about = subjects.of(event.type, event.data)
    return [Delivery(subscription=sub, event=event, event_type=event.type, subject=about.subject,
                     amount=about.amount, currency=about.currency) for sub in matched]


def _prepare(rows: list[Delivery]) -> list[str]:
    """Fill ids and times; claim the rows of active subscriptions in chunks, one token each."""
    now = clock.now()
    lease_end = now + enqueue_lease()
    tokens, in_chunk = [], settings.WEBHOOK_TASK_BATCH
    for row in rows:
        row.delivery_id = new_delivery_id()
        row.created = now
        row.next_attempt_at = now
        if row.subscription.status == Subscription.Status.ACTIVE and workers_send():
            if in_chunk >= settings.WEBHOOK_TASK_BATCH:
                tokens.append(new_token())
                in_chunk = 0
            row.claim, row.claimed_until = tokens[-1], lease_end
            in_chunk += 1
    return tokens


def enqueue(tokens: list[str]) -> None:
    """One django-q2 task per claimed chunk. A lost enqueue is harmless: the lease runs out and the
    dispatcher claims the rows again."""
    from django_q.tasks import async_task

    for token in tokens:
        try:
            with write_slot():  # the ORM broker writes to the database
                async_task("core.webhooks.tasks.send_claimed", token, group="webhooks", save=False)
        except Exception:
            log.exception("could not enqueue webhook deliveries (claim %s); the dispatcher will retry", token)


def sweep(limit: int = 500) -> int:
    """Fan out events whose after-commit fan-out never ran or failed."""
    cutoff = clock.now() - SWEEP_AFTER
    ids = list(Event.objects.filter(fanned_out=False, created__lt=cutoff).order_by("created")
               .values_list("event_id", flat=True)[:limit])
    return fan_out(ids) if ids else 0


def send_test_event(subscription: Subscription, user=None) -> Delivery:
    """Store a webhook.test event and deliver it to this one subscription."""
    from core.events.bus import jsonable, new_event_id

    now = clock.now()
    with write_slot(), transaction.atomic():
        event = Event.objects.create(
            event_id=new_event_id(), type=TEST_EVENT, created=now, fanned_out=True,
            user=user if getattr(user, "pk", None) else None, username=getattr(user, "username", "") or "",
            data=jsonable({"message": "a test event sent from the AX Integration Hub",
                           "subscription_id": subscription.subscription_id,
                           "caused_by": {"user": getattr(user, "username", None), "audit_id": None, "via": None}}))
        row = Delivery(subscription=subscription, event=event, event_type=TEST_EVENT,
                       next_trigger=f"manual:{getattr(user, 'username', '')}")
        tokens = _prepare([row])
        row.save()
        transaction.on_commit(lambda: enqueue(tokens))
    return row
