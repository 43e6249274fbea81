"""Is the hub up? One verdict per component, for `manage.py health`, /healthz and the Overview.

A component is healthy or not; its `detail` is one line a person reads. The public form
(`public()`, served without authentication by /healthz) carries verdicts, counts and ages only:
no host names, process ids, addresses or error texts.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.utils import timezone

from core.ops import heartbeat
from core.ops.models import Heartbeat


@dataclass
class Component:
    name: str
    ok: bool
    detail: str
    figures: dict = field(default_factory=dict)  # counts and ages, safe to publish


@dataclass
class Report:
    components: list[Component]
    checked: datetime

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.components)

    def lines(self) -> list[str]:
        width = max(len(c.name) for c in self.components)
        return [f"{c.name:<{width}}  {'ok  ' if c.ok else 'FAIL'}  {c.detail}" for c in self.components]

    def public(self) -> dict:
        return {"status": "ok" if self.ok else "fail", "checked": self.checked.isoformat(),
                "components": {c.name: {"status": "ok" if c.ok else "fail", **c.figures} for c in self.components}}

    def as_dict(self) -> dict:
        return {"ok": self.ok, "checked": self.checked, "components": [asdict(c) for c in self.components]}


def check(now: datetime | None = None) -> Report:
    now = now or timezone.now()
    components = [_database()]
    database_up = components[0].ok
    components.append(_cache())
    if database_up:
        components += [_workers(now), _dispatcher(now), _queued_tasks(now), _pending_deliveries(now)]
    else:
        components += [Component(name, False, "unknown: the database is not reachable")
                       for name in ("worker", "dispatcher", "tasks", "deliveries")]
    return Report(components, now)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _database() -> Component:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return Component("database", False, f"{connection.vendor}: {type(exc).__name__}: {str(exc)[:200]}")
    return Component("database", True, f"{connection.vendor}, answered in {_ms(started)} ms",
                     {"latency_ms": _ms(started)})


def _cache() -> Component:
    if not settings.REDIS_URL:
        return Component("cache", True, "in-process cache (no REDIS_URL); the task broker is the database",
                         {"backend": "local"})
    started = time.perf_counter()
    key = "axhub:health"
    try:
        cache.set(key, "1", 30)
        if cache.get(key) != "1":
            return Component("cache", False, "Redis answered but did not keep a value", {"backend": "redis"})
    except Exception as exc:  # redis-py raises its own errors, not Django's
        return Component("cache", False, f"Redis: {type(exc).__name__}: {str(exc)[:200]}", {"backend": "redis"})
    return Component("cache", True, f"Redis (cache and task broker), answered in {_ms(started)} ms",
                     {"backend": "redis", "latency_ms": _ms(started)})


def worker_state(row: Heartbeat, now: datetime) -> tuple[bool, str]:
    """Whether one worker process takes tasks, and why (busy counts as taking them)."""
    busy, workers = row.detail.get("busy", 0), row.detail.get("workers", 0)
    if row.probe_sent is None:
        return True, "starting"
    if row.probe_done is not None and row.probe_done >= row.probe_sent:
        ago = (now - row.probe_done).total_seconds()
        return True, f"took its last probe task {ago:.0f} s ago, {busy}/{workers} busy"
    waited = (now - row.probe_sent).total_seconds()
    if waited <= settings.WORKER_STALL_SECONDS:
        return True, f"probe task waiting {waited:.0f} s, {busy}/{workers} busy"
    if workers and busy >= workers:
        return True, f"all {workers} workers busy for {waited:.0f} s"
    return False, f"probe task waiting {waited:.0f} s with {workers - busy} of {workers} workers idle: stalled"


def _workers(now: datetime) -> Component:
    rows = heartbeat.alive(Heartbeat.Kind.WORKER, now)
    if not rows:
        return Component("worker", False, "no worker process has beaten in the last "
                                          f"{settings.HEARTBEAT_STALE_SECONDS} s (start: python manage.py worker)",
                         {"alive": 0, "taking_tasks": 0})
    states = [(row, *worker_state(row, now)) for row in rows]
    taking = sum(1 for _, ok, _ in states if ok)
    restarts = sum(row.restarts for row in rows)
    detail = "; ".join(f"{row.process}: {why}" + (f", {row.restarts} restarts" if row.restarts else "")
                       for row, _, why in states)
    return Component("worker", taking > 0, f"{len(rows)} alive, {taking} taking tasks ({detail})",
                     {"alive": len(rows), "taking_tasks": taking, "restarts": restarts})


def _dispatcher(now: datetime) -> Component:
    rows = heartbeat.alive(Heartbeat.Kind.DISPATCHER, now)
    if not rows:
        return Component("dispatcher", False, "no webhook dispatcher has beaten in the last "
                                              f"{settings.HEARTBEAT_STALE_SECONDS} s "
                                              "(start: python manage.py webhook_dispatcher)", {"alive": 0})
    return Component("dispatcher", True, f"{len(rows)} alive ({', '.join(r.process for r in rows)})",
                     {"alive": len(rows)})


def oldest_queued_task(now: datetime) -> tuple[int, datetime | None]:
    """How many tasks wait in the broker, and when the oldest of them was enqueued."""
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    broker = get_broker()
    if settings.REDIS_URL:
        count = broker.queue_size()
        head = broker.connection.lindex(broker.list_key, 0) if count else None
        return count, SignedPackage.loads(head)["started"] if head else None
    from django_q.models import OrmQ

    waiting = OrmQ.objects.filter(key=broker.list_key, lock__lte=now)
    oldest = waiting.order_by("lock", "id").first()
    return waiting.count(), oldest.task["started"] if oldest else None


def _queued_tasks(now: datetime) -> Component:
    limit = settings.HEALTH_MAX_TASK_WAIT_SECONDS
    try:
        count, oldest = oldest_queued_task(now)
    except Exception as exc:  # a broker that cannot be read: Redis errors are not Django's
        return Component("tasks", False, f"the task queue cannot be read: {type(exc).__name__}")
    age = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    figures = {"queued": count, "oldest_age_seconds": round(age)}
    if not count:
        return Component("tasks", True, "no task waiting", figures)
    return Component("tasks", age <= limit, f"{count} waiting, the oldest for {age:.0f} s (limit {limit} s)",
                     figures)


def _pending_deliveries(now: datetime) -> Component:
    from django.db.models import Min

    from core.webhooks.models import Delivery, Subscription

    limit = settings.HEALTH_MAX_DELIVERY_WAIT_SECONDS
    due = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now,
                                  subscription__status=Subscription.Status.ACTIVE)
    oldest = due.aggregate(oldest=Min("next_attempt_at"))["oldest"]
    age = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    figures = {"oldest_due_age_seconds": round(age)}
    if oldest is None:
        return Component("deliveries", True, "no webhook delivery overdue", figures)
    return Component("deliveries", age <= limit,
                     f"oldest due webhook delivery waiting {age:.0f} s (limit {limit} s)", figures)
