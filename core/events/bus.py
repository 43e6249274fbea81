"""The event bus: publish ERP events, store them, and hand them to subscribers after commit.

`publish` is cheap on the hot path: it only queues the event (inside a tool call) or inserts
it (elsewhere) in the caller's transaction, so a rolled-back operation publishes nothing.
Everything slower, matching subscriptions, creating deliveries, enqueueing, runs in
`transaction.on_commit` callbacks that log a failure and never raise into the caller.

Inside a tool call the pipeline opens a `collect()` scope around the handler: events are
held in memory and stored by `flush()` right after the call's AuditEntry is written (same
transaction), so each event names the audit entry and user that caused it.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, transaction
from django.utils import timezone

from core import jsoncodec
from core.db import insert_select_sql
from core.dialect import dialect
from core.events.models import Event

log = logging.getLogger(__name__)

Subscriber = Callable[[list[str]], None]
_subscribers: list[Subscriber] = []
# Per subscriber: a callable telling whether it would do anything with events published now
# (None: always assume it would).
_interest: dict[Subscriber, Callable[[], bool] | None] = {}
FAILURES_KEY = "events:publish_failures"
LAST_FAILURE_KEY = "events:last_publish_failure"


@dataclass
class CallScope:
    """The events one tool call published, waiting for its audit entry."""

    user: Any
    via: str
    pending: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


_scope: ContextVar[CallScope | None] = ContextVar("ax_event_scope", default=None)


def subscribe(subscriber: Subscriber, *, interested: Callable[[], bool] | None = None) -> None:
    """Register a callable that receives the event ids of every committed publish (once per process).

    `interested`, if given, tells (with a query in the publishing transaction) whether the
    subscriber would do anything with events published now, e.g. whether any webhook
    subscription exists; see `_nobody_listens`."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)
    _interest[subscriber] = interested


def _nobody_listens() -> bool:
    """True if no subscriber wants events published in the current transaction, which then stores
    them as already handed over (fanned_out) and skips the after-commit hand-off.

    Only on SQLite, where a write transaction starts IMMEDIATE and so holds the single writer
    lock from its first statement: no subscription can be created between this check and the
    commit, so the answer stays true for everything this transaction publishes. Elsewhere a
    concurrent subscription could commit in between, and the after-commit fan-out decides."""
    connection = transaction.get_connection()
    if not dialect(connection).one_writer or not connection.in_atomic_block:
        return False
    for subscriber in _subscribers:
        check = _interest.get(subscriber)
        try:
            if check is None or check():
                return False
        except Exception:  # noqa: BLE001 - cannot tell: assume it listens, the fan-out decides
            log.warning("could not ask subscriber %s whether it listens", getattr(subscriber, "__name__", "?"),
                        exc_info=True)
            return False
    return True


def new_event_id() -> str:
    """Time-ordered and unique: `evt_` + milliseconds (hex) + 64 random bits."""
    return f"evt_{time.time_ns() // 1_000_000:011x}{secrets.token_hex(8)}"


@contextmanager
def collect(user: Any, via: str = "") -> Iterator[CallScope]:
    scope = CallScope(user=user, via=via)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def flush(scope: CallScope, audit_id: int | None) -> None:
    """Store what a tool call published, naming its audit entry; called in the call's transaction."""
    if not scope.pending:
        return
    entries, scope.pending = scope.pending, []
    _store(entries, user=scope.user, via=scope.via, audit_ids=[audit_id] * len(entries))


def publish(event_type: str, data: dict[str, Any], *, user: Any = None, audit_id: int | None = None) -> None:
    """Publish one event. Never raises; see the module docstring for when it is stored and sent."""
    publish_many(event_type, [data], user=user, audit_ids=None if audit_id is None else [audit_id])


def publish_many(event_type: str, items: list[dict[str, Any]], *, user: Any = None,
                 audit_ids: list[int] | None = None, via: str = "") -> None:
    """Publish one event per item: stored with one bulk insert in the caller's transaction, and
    matched against subscriptions in bulk after commit. `audit_ids`, if given, pairs with items;
    `via` names the channel where no call scope does (a bulk writer outside a tool call)."""
    if not items:
        return
    if audit_ids is not None and len(audit_ids) != len(items):
        raise ValueError("audit_ids must have one entry per item")
    scope = _scope.get()
    if scope is not None and user is None and audit_ids is None:
        scope.pending.extend((event_type, item) for item in items)
        return
    _store([(event_type, item) for item in items], user=user, via=scope.via if scope else via,
           audit_ids=audit_ids or [None] * len(items))


def _store(entries: list[tuple[str, dict[str, Any]]], *, user: Any, via: str,
           audit_ids: list[int | None]) -> None:
    try:
        user = user if getattr(user, "pk", None) else None
        username = getattr(user, "username", "") or ""
        now = timezone.now()
        handed_over = _nobody_listens()
        # One JSON encoding per event, straight into the column.
        rows = [
            {"event_id": new_event_id(), "type": event_type, "created": now, "user_id": getattr(user, "pk", None),
             "username": username, "audit_id": audit_id, "fanned_out": handed_over, "fanout_error": "",
             "data": _json_text({**data, "caused_by": {"user": username or None, "audit_id": audit_id,
                                                      "via": via or None}})}
            for (event_type, data), audit_id in zip(entries, audit_ids, strict=True)
        ]
        from core.db import fast_insert

        connection = transaction.get_connection()
        if connection.in_atomic_block and (dialect(connection).failure_aborts_transaction or len(rows) > 1):
            # A savepoint, so that a failed insert cannot doom the operation's own transaction.
            # Not needed for one row where a failed statement undoes only itself (SQLite: the
            # common case of a tool call, which saves the savepoint's two statements).
            with transaction.atomic():
                fast_insert(Event, rows)
        else:
            fast_insert(Event, rows)
    except Exception as exc:  # noqa: BLE001 - publishing must never fail the operation
        if _transaction_lost():
            # SQLite rolled the whole transaction back (disk full, I/O error): the operation
            # cannot go on as if only the event had failed, or its later statements would
            # each commit on their own.
            raise
        _note_failure(entries[0][0], exc, "could not store %d %s event(s)", len(entries), entries[0][0])
        return
    if not handed_over:
        ids = [row["event_id"] for row in rows]
        transaction.on_commit(lambda: deliver(ids))


def _transaction_lost() -> bool:
    connection = transaction.get_connection()
    return dialect(connection).transaction_lost(connection)


def publish_rows(event_type: str, members: list[str], *, user: Any, via: str) -> None:
    """Publish one event per item of `members`, each event's data as the members of a JSON
    object (`"key":value,...`, not empty, encoded by the caller; caused_by is added here), in one
    INSERT ... SELECT over one JSON array in the caller's transaction: the database builds each
    event's id. For bulk writers (imports), which encode the data off their write transaction.

    Unlike publish(), this raises: a bulk writer's chunk must not commit without its events."""
    from django.db import connection

    user = user if getattr(user, "pk", None) else None
    username = getattr(user, "username", "") or ""
    handed_over = _nobody_listens()
    sql = _rows_sql() + ("" if handed_over else f" RETURNING {connection.ops.quote_name('event_id')}")
    caused_by = '"caused_by":' + jsoncodec.dumps({"user": username or None, "audit_id": None, "via": via or None})
    events = "[{" + f",{caused_by}}},{{".join(members) + f",{caused_by}}}]"
    params = [f"{time.time_ns() // 1_000_000:011x}", event_type,
              connection.ops.adapt_datetimefield_value(timezone.now()), getattr(user, "pk", None), username,
              handed_over, events]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if handed_over:
            return
        ids = [row[0] for row in cursor.fetchall()]
    transaction.on_commit(lambda: deliver(ids))


@functools.cache
def _rows_sql() -> str:
    return insert_select_sql(Event, (
        ("event_id", f"'evt_' || %s || {dialect().random_hex16()}"), ("type", "%s"), ("created", "%s"),
        ("data", "src.value"), ("user", "%s"), ("username", "%s"), ("audit_id", "NULL"), ("fanned_out", "%s"),
        ("fanout_error", "''")))


def _json_text(data: dict[str, Any]):
    # One encoding, Decimal as its exact number, handed to the driver as it is.
    return dialect().json_param(json.dumps(data, cls=jsoncodec.Encoder))


def deliver(event_ids: list[str]) -> None:
    """Hand committed events to the subscribers: on a background thread of this process when
    EVENTS_FANOUT_IN_BACKGROUND is set (the default), so the operation that published them never
    waits for the matching, and events committed close together are matched in one go; inline
    otherwise. A process that is about to exit calls `drain()` first (and at interpreter exit
    it runs anyway); events whose hand-off still never ran (the process was killed) are found by
    the dispatcher's sweep, since they stay fanned_out=False."""
    if settings.EVENTS_FANOUT_IN_BACKGROUND:
        _background.add(event_ids)
    else:
        _run_subscribers(event_ids)


def _run_subscribers(event_ids: list[str]) -> None:
    """A failing subscriber is logged and counted, never raised."""
    for subscriber in _subscribers:
        try:
            subscriber(event_ids)
        except Exception as exc:  # noqa: BLE001
            _note_failure("", exc, "subscriber %s failed on %d event(s)", getattr(subscriber, "__name__", "?"),
                          len(event_ids))


class _Background:
    """One daemon thread per process that drains committed event ids to the subscribers."""

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._busy = False  # the thread has taken ids and not handed them over yet
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, event_ids: list[str]) -> None:
        with self._wakeup:
            self._ids.extend(event_ids)
            if not self._alive():  # first use, or after a fork
                self._busy = False
                self._thread = threading.Thread(target=self._run, name="event-fanout", daemon=True)
                self._thread.start()
            self._wakeup.notify()

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _take(self) -> list[str]:
        with self._wakeup:
            while not self._ids:
                self._wakeup.wait()
            ids, self._ids = self._ids, []
            self._busy = True
            return ids

    def _run(self) -> None:
        while True:
            ids = self._take()
            try:
                _run_subscribers(ids)
            finally:
                close_old_connections()
                with self._wakeup:
                    self._busy = False
                    self._wakeup.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Hand over everything queued so far: what the thread has not taken yet is handed over
        here, on the caller's thread, and the batch the thread is working on is waited for (at
        most `timeout` seconds). True if nothing is left; False if the thread's batch was still
        running when the time was up (its events then wait for the sweep)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._wakeup:
                ids, self._ids = self._ids, []
                if not ids:
                    while self._busy and self._alive() and not self._ids:
                        left = None if deadline is None else deadline - time.monotonic()
                        if left is not None and left <= 0:
                            return False
                        self._wakeup.wait(left)
                    if not self._ids:
                        return True
                    continue  # more arrived meanwhile
            _run_subscribers(ids)


_background = _Background()
DRAIN_TIMEOUT = 10.0


def drain(timeout: float = DRAIN_TIMEOUT) -> bool:
    """Hand every event committed in this process to the subscribers before returning, so that a
    short-lived process (a management command) exits with its webhook deliveries created rather
    than leaving them to the dispatcher's sweep. Returns False if that took longer than
    `timeout` seconds. Also runs at interpreter exit, as a safety net."""
    return _background.flush(timeout)


atexit.register(drain)


def _note_failure(event_type: str, exc: BaseException, message: str, *args: Any) -> None:
    log.exception("event publishing: " + message, *args)
    try:
        cache.add(FAILURES_KEY, 0, None)
        cache.incr(FAILURES_KEY)
        cache.set(LAST_FAILURE_KEY, {"at": timezone.now().isoformat(), "type": event_type,
                                     "error": f"{type(exc).__name__}: {exc}"[:300]}, None)
    except Exception:  # noqa: BLE001 - the cache being down must not turn this into a failure
        log.warning("could not record the publishing failure in the cache")


def failure_summary() -> dict[str, Any]:
    """Publishing failures seen (per cache; shared across processes with Redis), for the dashboard."""
    return {"count": cache.get(FAILURES_KEY, 0), "last": cache.get(LAST_FAILURE_KEY)}


def jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of data made of JSON values, as Event.data reads it back (dates -> ISO strings,
    numbers with a fraction -> Decimal)."""
    return jsoncodec.loads(jsoncodec.dumps(data))
