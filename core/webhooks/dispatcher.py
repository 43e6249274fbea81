"""The dispatcher: a small loop (a Procfile process) that turns due rows into django-q2 tasks.

django-q2 cannot delay a task by seconds, so retries wait as `pending` rows with a due time.
Every WEBHOOK_DISPATCH_POLL_MS the loop claims the rows due within the next
WEBHOOK_LOOKAHEAD_MS (the task waits for the exact moment, so retries fire on time despite
the broker's own latency), enqueues one task per chunk, and now and then:

- recovers deliveries left `sending` by a worker that died (lease ran out): sent again;
- fans out events whose after-commit fan-out never ran;
- fails deliveries older than WEBHOOK_EXPIRY_DAYS and disables subscriptions that have had
  no successful delivery for that long.

Any number of dispatchers may run: every claim is a conditional UPDATE.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.db.models import Q

from core.db import write_slot
from core.webhooks import clock, fanout
from core.webhooks.delivery import expiry
from core.webhooks.models import Delivery, Subscription

log = logging.getLogger(__name__)

RECOVER_EVERY = 1.0
MAINTAIN_EVERY = 30.0


def claim_due(limit: int = 1000) -> list[str]:
    """Claim due deliveries of active subscriptions in chunks; returns one token per chunk.

    Each chunk is taken by one conditional UPDATE (still pending, still unclaimed or its lease
    run out) that writes a fresh token, so two dispatchers never enqueue the same row twice.
    """
    now = clock.now()
    horizon = now + _lookahead()
    unclaimed = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    pks = list(Delivery.objects.filter(unclaimed, status=Delivery.Status.PENDING, next_attempt_at__lte=horizon,
                                       subscription__status=Subscription.Status.ACTIVE)
               .order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    tokens = []
    size = settings.WEBHOOK_TASK_BATCH
    for start in range(0, len(pks), size):
        token = fanout.new_token()
        with write_slot():
            changed = Delivery.objects.filter(unclaimed, pk__in=pks[start:start + size],
                                              status=Delivery.Status.PENDING).update(
                claim=token, claimed_until=now + fanout.enqueue_lease())
        if changed:
            tokens.append(token)
    fanout.enqueue(tokens)
    return tokens


def _lookahead() -> timedelta:
    return timedelta(milliseconds=settings.WEBHOOK_LOOKAHEAD_MS)


def recover_stale() -> int:
    """Deliveries whose worker died mid-send (lease over) go back to the queue, due now."""
    now = clock.now()
    with write_slot():
        return Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_until__lt=now).update(
            status=Delivery.Status.PENDING, claim="", claimed_until=None, next_attempt_at=now,
            last_error="the worker stopped during this attempt; sending again")


def expire_and_disable() -> dict[str, int]:
    """The 7-day rules: pending deliveries that old fail; subscriptions failing that long are disabled."""
    now = clock.now()
    cutoff = now - expiry()
    with write_slot():
        expired = Delivery.objects.filter(status=Delivery.Status.PENDING, created__lt=cutoff, next_trigger="").update(
            status=Delivery.Status.FAILED, finished=now, claim="", claimed_until=None, next_attempt_at=None,
            last_error=f"expired: not delivered within {settings.WEBHOOK_EXPIRY_DAYS} days; "
                       "retry it manually to send it again")
    disabled = 0
    for sub in Subscription.objects.filter(status=Subscription.Status.ACTIVE, failing_since__lt=cutoff):
        since = sub.last_success_at.strftime("%Y-%m-%d %H:%M") + " UTC" if sub.last_success_at else "never"
        reason = (f"disabled on {now:%Y-%m-%d %H:%M} UTC: every delivery has failed since "
                  f"{sub.failing_since:%Y-%m-%d %H:%M} UTC ({settings.WEBHOOK_EXPIRY_DAYS} days without a success; "
                  f"last success: {since}). Fix the endpoint, then resume the subscription.")
        with write_slot():
            disabled += Subscription.objects.filter(pk=sub.pk, status=Subscription.Status.ACTIVE).update(
                status=Subscription.Status.DISABLED, disabled_reason=reason, updated=now)
    return {"expired": expired, "disabled": disabled}


def tick(state: dict[str, float] | None = None) -> dict[str, int]:
    """One round of the loop (tests call it directly)."""
    state = state if state is not None else {}
    done = {"claimed": len(claim_due())}
    moment = time.monotonic()
    if moment - state.get("recovered", 0) >= RECOVER_EVERY:
        done["recovered"] = recover_stale()
        done["swept"] = fanout.sweep()
        state["recovered"] = moment
    if moment - state.get("maintained", 0) >= MAINTAIN_EVERY:
        done.update(expire_and_disable())
        state["maintained"] = moment
    return done


def run(stop: threading.Event | None = None) -> None:
    """Loop until `stop` is set (or forever). Database errors are logged and waited out."""
    stop = stop or threading.Event()
    poll = settings.WEBHOOK_DISPATCH_POLL_MS / 1000
    state: dict[str, float] = {}
    log.info("webhook dispatcher started (poll %.0f ms)", poll * 1000)
    while not stop.is_set():
        try:
            tick(state)
        except DatabaseError:
            log.exception("webhook dispatcher: database error; retrying in 1 s")
            close_old_connections()
            stop.wait(1)
            continue
        stop.wait(poll)
