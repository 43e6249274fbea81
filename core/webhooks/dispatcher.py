"""The dispatcher: a small loop (a Procfile process) that sends due deliveries and retries.

django-q2 cannot delay a task by seconds, so retries wait as `pending` rows with a due time.
Every WEBHOOK_DISPATCH_POLL_MS the loop claims the rows due within the next
WEBHOOK_LOOKAHEAD_MS (the sender waits for the exact moment, so retries fire on time) and
hands them to its own sender threads. (With WEBHOOK_SENDER=worker it enqueues one django-q2
task per chunk instead; on the embedded SQLite + ORM broker that path measured 62
deliveries/s and p95 550 ms against 200+/s and well under 100 ms for in-process senders,
see README "Webhooks".) Now and then it also:

- recovers deliveries left `sending` by a sender that died (lease ran out): the interrupted
  attempt is logged, and the delivery is sent again like after any failed attempt;
- fans out events whose after-commit fan-out never ran;
- fails deliveries older than WEBHOOK_EXPIRY_DAYS and disables subscriptions that have had
  no successful delivery for that long.

Any number of dispatchers may run: every claim is a conditional UPDATE.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from core.db import run_sql, write_slot
from core.webhooks import clock, fanout
from core.webhooks.delivery import Outcome, attempt, expiry, interrupted, load_claimed, record, sending_lease
from core.webhooks.models import Delivery, Subscription

log = logging.getLogger(__name__)

RECOVER_EVERY = 1.0
MAINTAIN_EVERY = 30.0


@dataclass(frozen=True)
class Claimed:
    token: str
    pks: list[int]


def claim_due(limit: int = 1000, *, sending: bool = False) -> list[Claimed]:
    """Claim due deliveries of active subscriptions, in chunks of WEBHOOK_TASK_BATCH.

    Each chunk is one statement: an UPDATE of the first due rows that are still pending and
    unclaimed (or whose lease ran out), writing a fresh token and returning the rows it took.
    On PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED, so dispatchers claiming at the
    same moment take different rows instead of queueing on the same ones and coming away
    empty; on SQLite the one writer serialises the claims. With sending=True (the
    dispatcher's own senders) the rows go straight to `sending`, which saves each delivery a
    second claim.
    """
    now = clock.now()
    horizon = now + _lookahead()
    adapt = connection.ops.adapt_datetimefield_value
    if sending:
        sets = [Delivery.Status.SENDING.value, adapt(now), adapt(horizon + sending_lease())]
    else:
        sets = [adapt(now + fanout.enqueue_lease())]
    where = [Delivery.Status.PENDING.value, adapt(horizon), adapt(now), Subscription.Status.ACTIVE.value]
    claimed: list[Claimed] = []
    size = settings.WEBHOOK_TASK_BATCH
    while limit > 0:
        token = fanout.new_token()
        with write_slot():
            rows = run_sql(_claim_sql(sending), [token, *sets, *where, min(size, limit)]) or []
        if not rows:
            break
        claimed.append(Claimed(token, [pk for (pk,) in rows]))
        if len(rows) < min(size, limit):
            break
        limit -= len(rows)
    return claimed


@functools.cache
def _claim_sql(sending: bool) -> str:
    quote = connection.ops.quote_name

    def column(name: str, model: type = Delivery) -> str:
        return quote(model._meta.get_field(name).column)

    table, subscriptions = quote(Delivery._meta.db_table), quote(Subscription._meta.db_table)
    sets = ["claim", *(("status", "last_attempt_at") if sending else ()), "claimed_until"]
    lock = ""
    if connection.features.has_select_for_update_skip_locked:
        lock = " " + connection.ops.for_update_sql(skip_locked=True, of=("d",))
    return (f"UPDATE {table} SET {', '.join(f'{column(name)} = %s' for name in sets)} "
            f"WHERE {column('id')} IN (SELECT d.{column('id')} FROM {table} d "
            f"JOIN {subscriptions} s ON s.{column('id', Subscription)} = d.{column('subscription')} "
            f"WHERE d.{column('status')} = %s AND d.{column('next_attempt_at')} <= %s "
            f"AND (d.{column('claimed_until')} IS NULL OR d.{column('claimed_until')} < %s) "
            f"AND s.{column('status', Subscription)} = %s "
            f"ORDER BY d.{column('next_attempt_at')} LIMIT %s{lock}) "
            f"RETURNING {column('id')}")


Submit = Callable[..., object]
Sink = Callable[[Outcome], None]


def _record_now(outcome: Outcome) -> None:
    record([outcome])


def _send(delivery: Delivery, token: str, due: datetime | None, sink: Sink) -> None:
    sink(attempt(delivery, token, due))


def dispatch_due(submit: Submit, limit: int = 1000, sink: Sink = _record_now) -> int:
    """Claim what is due and hand it on: each delivery to `submit(fn, …)` (the dispatcher's own
    sender threads), whose outcome goes to `sink` (the dispatcher's batching recorder); or, with
    WEBHOOK_SENDER=worker, one django-q2 task per chunk."""
    workers = fanout.workers_send()
    claimed = claim_due(limit, sending=not workers) if limit > 0 else []
    if workers:
        fanout.enqueue([c.token for c in claimed])
        return sum(len(c.pks) for c in claimed)
    sent = 0
    for delivery in load_claimed(*(c.token for c in claimed)) if claimed else []:
        submit(_send, delivery, delivery.claim, delivery.next_attempt_at, sink)
        sent += 1
    return sent


class Recorder:
    """Writes outcomes in batches from one thread: a transaction per batch rather than per
    delivery, which is what lets one SQLite writer keep up with many sender threads."""

    MAX_BATCH = 200

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Outcome | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="webhook-recorder", daemon=True)
        self._thread.start()

    def add(self, outcome: Outcome) -> None:
        self._queue.put(outcome)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            batch: list[Outcome] = []
            while True:
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
                if len(batch) >= self.MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._flush(batch)
        connection.close()

    def _flush(self, batch: list[Outcome]) -> None:
        for attempt_no in range(3):
            try:
                record(batch)
                return
            except DatabaseError:
                log.exception("webhook recorder: could not record %d outcome(s) (try %d)", len(batch), attempt_no + 1)
                close_old_connections()
                time.sleep(0.5)
        # The deliveries stay `sending`; recovery sends them again once their lease runs out.

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(30)


def _lookahead() -> timedelta:
    return timedelta(milliseconds=settings.WEBHOOK_LOOKAHEAD_MS)


def recover_stale(limit: int = 1000) -> int:
    """Deliveries whose sender died mid-send (lease over): each gets an `interrupted` attempt row,
    since the receiver may have seen the request, and moves on as after any failed attempt:
    back to the queue after the backoff, or failed when no retry is left. Returns how many."""
    now = clock.now()
    stale = list(Delivery.objects.select_related("subscription")
                 .filter(status=Delivery.Status.SENDING, claimed_until__lt=now)
                 .order_by("claimed_until")[:limit])
    return record([interrupted(d) for d in stale])


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


def tick(submit: Submit, state: dict[str, float] | None = None, limit: int = 1000,
         sink: Sink = _record_now) -> dict[str, int]:
    """One round of the loop (tests call it directly)."""
    state = state if state is not None else {}
    done = {"dispatched": dispatch_due(submit, limit, sink)}
    moment = time.monotonic()
    if moment - state.get("recovered", 0) >= RECOVER_EVERY:
        done["recovered"] = recover_stale()
        done["swept"] = fanout.sweep()
        state["recovered"] = moment
    if moment - state.get("maintained", 0) >= MAINTAIN_EVERY:
        done.update(expire_and_disable())
        state["maintained"] = moment
    return done


class _Senders:
    """The dispatcher's sender threads, with a count of rows handed out and not yet finished so
    that the loop claims no more than the threads can start soon (the rest stay claimable)."""

    def __init__(self, threads: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhook-sender")
        self.capacity = threads * 4
        self._busy = 0
        self._lock = threading.Lock()

    def free(self) -> int:
        with self._lock:
            return max(0, self.capacity - self._busy)

    def submit(self, fn: Callable[..., object], *args: object, **kwargs: object) -> None:
        with self._lock:
            self._busy += 1
        self.pool.submit(self._run, fn, *args, **kwargs)

    def _run(self, fn: Callable[..., object], *args: object, **kwargs: object) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:
            log.exception("webhook sender failed; the delivery is recovered when its lease runs out")
        finally:
            with self._lock:
                self._busy -= 1

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def run(stop: threading.Event | None = None) -> None:
    """Loop until `stop` is set (or forever). Database errors are logged and waited out."""
    stop = stop or threading.Event()
    poll = settings.WEBHOOK_DISPATCH_POLL_MS / 1000
    senders = _Senders(settings.WEBHOOK_SEND_THREADS)
    recorder = Recorder()
    state: dict[str, float] = {}
    log.info("webhook dispatcher started (poll %.0f ms, sender %s)", poll * 1000, settings.WEBHOOK_SENDER)
    try:
        while not stop.is_set():
            try:
                tick(senders.submit, state, limit=1000 if fanout.workers_send() else senders.free(),
                     sink=recorder.add)
            except DatabaseError:
                log.exception("webhook dispatcher: database error; retrying in 1 s")
                close_old_connections()
                stop.wait(1)
                continue
            stop.wait(poll)
    finally:
        senders.shutdown()
        recorder.close()
        connection.close()
