"""Subscriptions and the dead letter queue: what the tools and the dashboard call."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Q

from core.db import write_slot
from core.errors import ToolError
from core.events import catalog
from core.webhooks import clock, crypto, fanout, filters, urlcheck
from core.webhooks.models import Attempt, Delivery, Subscription

DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_MS = 1000
ROTATION_GRACE = timedelta(hours=24)
MAX_LIST = 1000


def _url(url: Any) -> str:
    try:
        return urlcheck.check_for_subscribe(str(url or ""))
    except urlcheck.UrlRefused as exc:
        raise ToolError("VALIDATION_ERROR", str(exc), field="webhook_url") from None


def _secret(secret: str | None) -> tuple[str, bool]:
    """The secret to store and whether it was generated (and so must be shown, once)."""
    if secret is None or secret == "":
        return crypto.generate_secret(), True
    problem = crypto.check_secret(secret)
    if problem:
        raise ToolError("VALIDATION_ERROR", problem, field="secret")
    return secret, False


def get_subscription(subscription_id: str) -> Subscription:
    sub = Subscription.objects.filter(subscription_id=str(subscription_id).strip()).first()
    if sub is None:
        raise ToolError("SUBSCRIPTION_NOT_FOUND", f"webhook subscription {subscription_id!r} does not exist",
                        field="subscription_id")
    return sub


def _event_types(event_type: str | None, event_types: list[str] | None) -> list[str]:
    """The patterns of `event_type` (one) or `event_types` (several): exactly one of the two."""
    if (event_type is None) == (event_types is None):
        raise ToolError("VALIDATION_ERROR", "give event_type (one type or pattern) or event_types (a list), "
                        "not both", field="event_type" if event_type is None else "event_types")
    if event_types is None:
        return [filters.validate_event_type(event_type)]
    return filters.validate_event_types(event_types)


def subscribe(*, event_type: str | None = None, event_types: list[str] | None = None, webhook_url: str,
              filters_: dict[str, Any] | None = None, secret: str | None = None,
              retry_policy: dict[str, int] | None = None, description: str = "",
              user=None) -> tuple[Subscription, str | None]:
    """Create a subscription to one event type or pattern (`event_type`) or several (`event_types`);
    returns it and the generated secret (None when the caller gave one)."""
    patterns = _event_types(event_type, event_types)
    cleaned = filters.validate(patterns, filters_)
    url = _url(webhook_url)
    value, generated = _secret(secret)
    policy = retry_policy or {}
    now = clock.now()
    sub = Subscription(
        subscription_id="sub_" + secrets.token_hex(12), event_type=patterns[0], event_types=patterns, url=url,
        filters=cleaned,
        description=(description or "")[:255], secret_encrypted=crypto.encrypt(value),
        max_retries=policy.get("max_retries", DEFAULT_MAX_RETRIES),
        backoff_ms=policy.get("backoff_ms", DEFAULT_BACKOFF_MS),
        created_by=user if getattr(user, "pk", None) else None, created=now, updated=now,
    )
    with write_slot():
        sub.save()
    return sub, value if generated else None


def update(sub: Subscription, *, event_type: str | None = None, event_types: list[str] | None = None,
           webhook_url: str | None = None, filters_: dict[str, Any] | None = None,
           retry_policy: dict[str, int] | None = None, description: str | None = None,
           status: str | None = None) -> list[str]:
    """Change what is given; `status` active (resume, also re-enables a disabled one) or paused.
    `event_type` or `event_types` replaces what the subscription listens to."""
    changed = []
    types_given = event_type is not None or event_types is not None
    if types_given:
        patterns = _event_types(event_type, event_types)
        sub.event_type, sub.event_types = patterns[0], patterns
        changed += ["event_type", "event_types"]
    if filters_ is not None or types_given:
        sub.filters = filters.validate(sub.patterns, sub.filters if filters_ is None else filters_)
        changed.append("filters")
    if webhook_url is not None:
        sub.url = _url(webhook_url)
        changed.append("url")
    if retry_policy is not None:
        sub.max_retries = retry_policy.get("max_retries", sub.max_retries)
        sub.backoff_ms = retry_policy.get("backoff_ms", sub.backoff_ms)
        changed += ["max_retries", "backoff_ms"]
    if description is not None:
        sub.description = description[:255]
        changed.append("description")
    if status is not None and status != sub.status:
        if status not in (Subscription.Status.ACTIVE, Subscription.Status.PAUSED):
            raise ToolError("VALIDATION_ERROR", "status must be active or paused", field="status")
        sub.status = status
        sub.disabled_reason = ""
        if status == Subscription.Status.ACTIVE:
            sub.failing_since = None  # a fresh start: the 7-day clock restarts
        changed += ["status", "disabled_reason", "failing_since"]
    if changed:
        sub.updated = clock.now()
        with write_slot():
            sub.save(update_fields=[*dict.fromkeys(changed), "updated"])
    return changed


def rotate_secret(sub: Subscription, secret: str | None = None) -> tuple[str, datetime | None]:
    """Replace the secret; the old one keeps signing alongside the new for 24 h. Returns the new
    secret (shown once) and when the old one stops being sent (None: it was unreadable)."""
    value, _ = _secret(secret)
    now = clock.now()
    # A current secret that no key decrypts any more (a lost key) cannot sign alongside the new
    # one; carrying it over would only make every delivery of the grace period fail.
    readable = crypto.keyring().index(sub.secret_encrypted) is not None
    sub.previous_secret_encrypted = sub.secret_encrypted if readable else ""
    sub.previous_secret_expires = now + ROTATION_GRACE if readable else None
    sub.secret_encrypted = crypto.encrypt(value)
    sub.updated = now
    with write_slot():
        sub.save(update_fields=["previous_secret_encrypted", "previous_secret_expires", "secret_encrypted",
                                "updated"])
    return value, sub.previous_secret_expires


def unsubscribe(sub: Subscription) -> None:
    with write_slot(), transaction.atomic():
        sub.delete()


def with_stats(queryset):
    return queryset.annotate(
        pending=Count("deliveries", filter=Q(deliveries__status__in=[Delivery.Status.PENDING,
                                                                     Delivery.Status.SENDING])),
        failed=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.FAILED)),
        succeeded=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.SUCCEEDED)),
    ).order_by("-created", "-id")


def subscription_data(sub: Subscription) -> dict[str, Any]:
    patterns = sub.patterns
    data = {
        "subscription_id": sub.subscription_id,
        "event_type": patterns[0] if patterns else sub.event_type,
        "event_types": list(patterns),
        "webhook_url": sub.url,
        "filters": sub.filters,
        "retry_policy": sub.retry_policy.as_dict(),
        "description": sub.description,
        "status": sub.status,
        "disabled_reason": sub.disabled_reason or None,
        "created": sub.created.isoformat(),
        "last_success_at": sub.last_success_at.isoformat() if sub.last_success_at else None,
        "failing_since": sub.failing_since.isoformat() if sub.failing_since else None,
        "secret_rotation_ends": (sub.previous_secret_expires.isoformat() if sub.previous_secret_expires
                                 and sub.previous_secret_expires > clock.now() else None),
    }
    if hasattr(sub, "pending"):
        data["deliveries"] = {"pending": sub.pending, "failed": sub.failed, "succeeded": sub.succeeded}
    return data


def delivery_data(d: Delivery) -> dict[str, Any]:
    return {
        "delivery_id": d.delivery_id,
        "subscription_id": d.subscription.subscription_id,
        "event": d.event_type,
        "event_id": d.event.event_id,
        "subject": d.subject or None,
        "amount": d.amount,
        "currency": d.currency or None,
        "status": d.status,
        "attempts": d.attempts,
        "last_status": d.last_status,
        "last_error": d.last_error or None,
        "created": d.created.isoformat(),
        "last_attempt_at": d.last_attempt_at.isoformat() if d.last_attempt_at else None,
        "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at and d.status == "pending" else None,
        "finished": d.finished.isoformat() if d.finished else None,
    }


def attempt_data(a: Attempt) -> dict[str, Any]:
    return {
        "number": a.number, "started": a.started.isoformat(), "status_code": a.status_code,
        "duration_ms": a.duration_ms, "success": a.success, "error_class": a.error_class or None,
        "error": a.error or None, "response_excerpt": a.response_excerpt, "trigger": a.trigger,
        "triggered_by": a.triggered_by or None,
    }


def deliveries(*, status: str | None = None, subscription_id: str | None = None, event_type: str | None = None,
               since: datetime | None = None, until: datetime | None = None):
    qs = Delivery.objects.select_related("subscription", "event")
    if status:
        qs = qs.filter(status=status)
    if subscription_id:
        qs = qs.filter(subscription=get_subscription(subscription_id))
    qs = qs.filter(catalog.type_q(event_type, "event_type"))
    if since:
        qs = qs.filter(created__gte=since)
    if until:
        qs = qs.filter(created__lt=until)
    return qs


def listening_to(pattern: str) -> list[int]:
    """The subscriptions (pks) with `pattern` among their event types. The table holds one row per
    receiving system, so reading its types is cheaper than a JSON query each database spells its own way."""
    return [pk for pk, types, first in Subscription.objects.values_list("pk", "event_types", "event_type")
            if pattern in (types or [first])]


def search_q(text: str) -> Q:
    """The deliveries a search box finds: an event id (evt_…), a delivery id (dlv_…), or a subject
    (SO-000123, CUST-001, …) as typed or in capitals. Each is one indexed equality."""
    text = text.strip()
    if text.startswith("evt_"):
        return Q(event__event_id=text)
    if text.startswith("dlv_"):
        return Q(delivery_id=text)
    return Q(subject__in=sorted({text, text.upper()}))


def get_delivery(delivery_id: str) -> Delivery:
    d = Delivery.objects.select_related("subscription", "event").filter(delivery_id=str(delivery_id).strip()).first()
    if d is None:
        raise ToolError("DELIVERY_NOT_FOUND", f"webhook delivery {delivery_id!r} does not exist",
                        field="delivery_id")
    return d


RETRYABLE = (Delivery.Status.FAILED, Delivery.Status.SUCCEEDED)
_CHUNK = 1000  # ids per statement: well below SQLite's limit on parameters


def retry(*, delivery_id: str | None = None, subscription_id: str | None = None, all_failed: bool = False,
          user=None) -> list[str]:
    """Put deliveries back in the queue for an attempt now, with a fresh retry cycle.

    One delivery (delivery_id): a failed one is retried, a succeeded one resent (the receiver gets
    the same event, with the same webhook-id, again). Every failed delivery of a subscription
    (subscription_id), or of every subscription that is not disabled (all_failed). The next
    attempt is recorded as manual, with who asked for it.
    """
    if delivery_id:
        d = get_delivery(delivery_id)
        if d.status not in RETRYABLE:
            raise ToolError("INVALID_STATE", f"delivery {d.delivery_id} is {d.status}; only failed deliveries are "
                            "retried and succeeded ones resent", field="delivery_id")
        _check_not_disabled(d.subscription)
        rows = Delivery.objects.filter(pk=d.pk, status=d.status)
    elif subscription_id:
        sub = get_subscription(subscription_id)
        _check_not_disabled(sub)
        rows = Delivery.objects.filter(subscription=sub, status=Delivery.Status.FAILED)
    elif all_failed:
        rows = Delivery.objects.filter(status=Delivery.Status.FAILED).exclude(
            subscription__status=Subscription.Status.DISABLED)
    else:
        raise ToolError("VALIDATION_ERROR", "give delivery_id, subscription_id or all_failed", field="delivery_id")
    now = clock.now()
    found = list(rows.values_list("pk", "delivery_id", "status", "subscription__status")[:100_000])
    by = f"manual:{getattr(user, 'username', '') or ''}"
    with write_slot(), transaction.atomic():
        for status in {row[2] for row in found}:
            pks = [row[0] for row in found if row[2] == status]
            for start in range(0, len(pks), _CHUNK):
                # Conditional: a delivery retried twice at once is put back once.
                Delivery.objects.filter(pk__in=pks[start:start + _CHUNK], status=status).update(
                    status=Delivery.Status.PENDING, next_attempt_at=now, cycle_attempts=0, claim="",
                    claimed_until=None, next_trigger=by[:160], finished=None)
        if fanout.workers_send():
            tokens = _claim_now([row[0] for row in found if row[3] == Subscription.Status.ACTIVE], now)
            transaction.on_commit(lambda: fanout.enqueue(tokens))
    return [row[1] for row in found]


def _check_not_disabled(sub: Subscription) -> None:
    if sub.status == Subscription.Status.DISABLED:
        raise ToolError("INVALID_STATE", f"subscription {sub.subscription_id} is disabled ({sub.disabled_reason}); "
                        "resume it first", field="subscription_id")


def _claim_now(pks: list[int], now: datetime) -> list[str]:
    from django.conf import settings

    tokens = []
    for start in range(0, len(pks), settings.WEBHOOK_TASK_BATCH):
        token = fanout.new_token()
        Delivery.objects.filter(pk__in=pks[start:start + settings.WEBHOOK_TASK_BATCH],
                                status=Delivery.Status.PENDING).update(
            claim=token, claimed_until=now + fanout.enqueue_lease())
        tokens.append(token)
    return tokens
