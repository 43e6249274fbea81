"""Webhook subscription and dead-letter tools (MCP_Admin), and the event store's (MCP_Read)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.accounts.roles import MCP_ADMIN, MCP_READ
from core.errors import ToolError
from core.events import catalog
from core.events.models import Event
from core.tools.pipeline import CallContext
from core.tools.registry import obj, register
from core.tools.schemas import (
    AMOUNT,
    BOOLEAN,
    COUNT,
    JSON_OBJECT,
    NO_NUL,
    STRING,
    TIMESTAMP,
    date_time_input,
    listing,
    nullable,
    record,
    ref,
    text,
)
from core.webhooks import fanout, filters
from core.webhooks import services as webhooks
from core.webhooks.models import Attempt, Delivery, Subscription

EVENT_TYPE = ref(100, "an event type (salesorder.created, …), a prefix such as salesorder.*, or *")
TIME = date_time_input("RFC 3339 with a time zone, e.g. 2026-01-31T12:00:00Z")
LIMIT = {"type": "integer", "minimum": 1, "maximum": webhooks.MAX_LIST, "default": 100}
EVENT = record({"id": STRING, "event": STRING, "timestamp": TIMESTAMP, "data": JSON_OBJECT})


def parse_time(args: dict[str, Any], name: str) -> datetime | None:
    raw = args.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ToolError("VALIDATION_ERROR", f"{name} must be an ISO 8601 date-time", field=name) from None
    if value.tzinfo is None:
        raise ToolError("VALIDATION_ERROR", f"{name} needs a time zone (e.g. Z)", field=name)
    return value
EVENT_TYPES = {"type": "array", "items": EVENT_TYPE, "minItems": 1, "maxItems": filters.MAX_EVENT_TYPES,
               "uniqueItems": True,
               "description": "several event types or patterns; an event matching any of them is delivered"}
# Exactly one of event_type and event_types (allOf keeps the message to this rule alone).
ONE_TYPE_FIELD = {"oneOf": [{"required": ["event_type"]}, {"required": ["event_types"]}],
                  "x-message": "give event_type (one type or pattern) or event_types (a list), not both"}
AT_MOST_ONE_TYPE_FIELD = {"not": {"required": ["event_type", "event_types"]},
                          "x-message": "give event_type (one type or pattern) or event_types (a list), not both"}
SUB_ID = ref(40, "subscription id, e.g. sub_…")
DELIVERY_ID = ref(40, "delivery id, e.g. dlv_…")
URL = {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s\u0000-\u001f]+$",
       "description": "http(s) URL of the receiver, without whitespace or credentials; private, loopback and "
                      "link-local addresses are refused unless WEBHOOK_ALLOWED_NETWORKS allows them"}
_SCALAR = {"anyOf": [{"type": "string", "pattern": NO_NUL}, {"type": ["number", "boolean", "null"]}]}
FILTERS = {"type": "object", "propertyNames": {"minLength": 1, "pattern": NO_NUL},
           "properties": {"min_amount": {"type": "number"}, "max_amount": {"type": "number"}},
           "additionalProperties": {"anyOf": [_SCALAR, {"type": "array", "items": _SCALAR, "minItems": 1,
                                                        "maxItems": filters.MAX_VALUES}]},
           "description": "data field -> value (or list of values); min_amount / max_amount compare "
                          "total_amount (or amount). A field the event type does not carry is refused."}
SECRET = {"type": "string", "minLength": 16, "maxLength": 200, "pattern": NO_NUL,
          "description": "signing secret (whsec_<base64 of 24-64 bytes> or 16+ characters); generated when omitted"}
RETRY_POLICY = obj({"max_retries": {"type": "integer", "minimum": 0, "maximum": 20},
                    "backoff_ms": {"type": "integer", "minimum": 100, "maximum": 3_600_000}})
LIMIT = {"type": "integer", "minimum": 1, "maximum": webhooks.MAX_LIST, "default": 100}

# --- outputs: core/webhooks/services.py ---------------------------------------------------------

SUBSCRIPTION = record({
    "subscription_id": STRING,
    "event_type": {**STRING, "description": "the first of event_types (for clients of one type per subscription)"},
    "event_types": {"type": "array", "items": STRING, "minItems": 1}, "webhook_url": STRING, "filters": JSON_OBJECT,
    "retry_policy": record({"max_retries": COUNT, "backoff_ms": COUNT}), "description": STRING,
    "status": {"enum": list(Subscription.Status.values)},
    "disabled_reason": nullable(STRING), "created": TIMESTAMP, "last_success_at": nullable(TIMESTAMP),
    "failing_since": nullable(TIMESTAMP), "secret_rotation_ends": nullable(TIMESTAMP),
    "deliveries": record({"pending": COUNT, "failed": COUNT, "succeeded": COUNT}),
}, optional=("deliveries",))
NEW_SECRET = {"secret": {**STRING, "description": "the generated secret, shown this once"}, "secret_notice": STRING}
DELIVERY = record({
    "delivery_id": STRING, "subscription_id": STRING, "event": STRING, "event_id": STRING,
    "subject": {**nullable(STRING), "description": "what the event is about: sales_id, customer_account, invoice_id, "
                                                   "payment_id, item_id or job_id"},
    "amount": nullable(AMOUNT), "currency": nullable(STRING),
    "status": {"enum": list(Delivery.Status.values)}, "attempts": COUNT, "last_status": nullable(COUNT),
    "last_error": nullable(STRING), "created": TIMESTAMP, "last_attempt_at": nullable(TIMESTAMP),
    "next_attempt_at": nullable(TIMESTAMP), "finished": nullable(TIMESTAMP),
})
ATTEMPT = record({
    "number": COUNT, "started": TIMESTAMP, "status_code": nullable(COUNT), "duration_ms": COUNT, "success": BOOLEAN,
    "error_class": nullable(STRING), "error": nullable(STRING), "response_excerpt": STRING,
    "trigger": {"enum": list(Attempt.Trigger.values)}, "triggered_by": nullable(STRING),
})


@register("ax_subscribe_webhook", role=MCP_ADMIN,
          description="Subscribe a URL to ERP events: one type or pattern (event_type) or several (event_types). "
                      "Each matching event is POSTed as {id, event, timestamp, data} "
                      "with Standard Webhooks signature headers, retried on failure per retry_policy "
                      "(default 3 retries, 1 s, 2 s, 4 s). Returns subscription_id; a generated secret is "
                      "returned once, never again.",
          schema={**obj({"event_type": EVENT_TYPE, "event_types": EVENT_TYPES, "webhook_url": URL, "filters": FILTERS,
                         "secret": SECRET, "retry_policy": RETRY_POLICY, "description": text(255)},
                        ["webhook_url"]), "allOf": [ONE_TYPE_FIELD]},
          output=record({**SUBSCRIPTION["properties"], **NEW_SECRET},
                        optional=("deliveries", "secret", "secret_notice")))
def subscribe_webhook(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    sub, generated = webhooks.subscribe(event_type=args.get("event_type"), event_types=args.get("event_types"),
                                        webhook_url=args["webhook_url"],
                                        filters_=args.get("filters"), secret=args.get("secret"),
                                        retry_policy=args.get("retry_policy"),
                                        description=args.get("description", ""), user=ctx.user)
    data = webhooks.subscription_data(sub)
    if generated:
        data["secret"] = generated
        data["secret_notice"] = "store this secret now: it is never shown again"
    return data


@register("ax_list_webhooks", role=MCP_ADMIN,
          description="List webhook subscriptions with status, delivery counts and why a disabled one stopped; "
                      "event_type lists those listening to that type or pattern (among their event_types). "
                      "Secrets are never shown.",
          schema=obj({"status": {"enum": ["active", "paused", "disabled"]}, "event_type": EVENT_TYPE}),
          output=listing("subscriptions", SUBSCRIPTION))
def list_webhooks(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    qs = Subscription.objects.all()
    if args.get("status"):
        qs = qs.filter(status=args["status"])
    if args.get("event_type"):
        qs = qs.filter(pk__in=webhooks.listening_to(args["event_type"]))
    return {"subscriptions": [webhooks.subscription_data(s) for s in webhooks.with_stats(qs)[:webhooks.MAX_LIST]]}


@register("ax_update_webhook", role=MCP_ADMIN,
          description="Change a subscription: event_type or event_types (replace what it listens to), "
                      "webhook_url, filters, retry_policy, description, or "
                      "status 'paused' / 'active' (resume; also re-enables a disabled subscription). Deliveries "
                      "wait while paused and go out on resume.",
          schema={**obj({"subscription_id": SUB_ID, "event_type": EVENT_TYPE, "event_types": EVENT_TYPES,
                         "webhook_url": URL, "filters": FILTERS, "retry_policy": RETRY_POLICY,
                         "description": text(255), "status": {"enum": ["active", "paused"]}}, ["subscription_id"]),
                  "minProperties": 2, "allOf": [AT_MOST_ONE_TYPE_FIELD]},
          output=record({**SUBSCRIPTION["properties"], "changed": {"type": "array", "items": STRING}},
                        optional=("deliveries",)))
def update_webhook(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    sub = webhooks.get_subscription(args["subscription_id"])
    changed = webhooks.update(sub, event_type=args.get("event_type"), event_types=args.get("event_types"),
                              webhook_url=args.get("webhook_url"),
                              filters_=args.get("filters"), retry_policy=args.get("retry_policy"),
                              description=args.get("description"), status=args.get("status"))
    return {**webhooks.subscription_data(sub), "changed": changed}


@register("ax_rotate_webhook_secret", role=MCP_ADMIN,
          description="Replace a subscription's signing secret (generated unless given). For 24 hours every "
                      "request carries signatures with both the old and the new secret. The new secret is "
                      "returned once.",
          schema=obj({"subscription_id": SUB_ID, "secret": SECRET}, ["subscription_id"]),
          output=record({"subscription_id": STRING, "previous_secret_valid_until": nullable(TIMESTAMP), **NEW_SECRET},
                        optional=("secret", "secret_notice")))
def rotate_webhook_secret(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    sub = webhooks.get_subscription(args["subscription_id"])
    secret, old_until = webhooks.rotate_secret(sub, args.get("secret"))
    # None when the old secret could not be read any more (a lost key): it signs nothing.
    data = {"subscription_id": sub.subscription_id,
            "previous_secret_valid_until": old_until.isoformat() if old_until else None}
    if "secret" not in args:
        data["secret"] = secret
        data["secret_notice"] = "store this secret now: it is never shown again"
    return data


@register("ax_unsubscribe_webhook", role=MCP_ADMIN,
          description="Delete a subscription with its pending and past deliveries.",
          schema=obj({"subscription_id": SUB_ID}, ["subscription_id"]),
          output=record({"subscription_id": STRING, "deleted": {"const": True}}))
def unsubscribe_webhook(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    sub = webhooks.get_subscription(args["subscription_id"])
    webhooks.unsubscribe(sub)
    return {"subscription_id": args["subscription_id"], "deleted": True}


@register("ax_get_failed_webhooks", role=MCP_ADMIN,
          description="The dead letter queue: deliveries that failed for good (after their retries, a 4xx, or "
                      "7 days), newest first, optionally by subscription, event type and creation time.",
          schema=obj({"subscription_id": SUB_ID, "event_type": EVENT_TYPE, "since": TIME, "until": TIME,
                      "limit": LIMIT}),
          output=listing("deliveries", DELIVERY, count=COUNT))
def get_failed_webhooks(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    qs = webhooks.deliveries(status=Delivery.Status.FAILED, subscription_id=args.get("subscription_id"),
                             event_type=args.get("event_type"), since=parse_time(args, "since"),
                             until=parse_time(args, "until"))
    rows = [webhooks.delivery_data(d) for d in qs[:args.get("limit", 100)]]
    return {"deliveries": rows, "count": len(rows)}


@register("ax_get_webhook_delivery", role=MCP_ADMIN,
          description="One delivery with every attempt: time, status code, duration, error, response excerpt, "
                      "trigger.",
          schema=obj({"delivery_id": DELIVERY_ID}, ["delivery_id"]),
          output=record({**DELIVERY["properties"], "attempt_log": {"type": "array", "items": ATTEMPT}}))
def get_webhook_delivery(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    d = webhooks.get_delivery(args["delivery_id"])
    return {**webhooks.delivery_data(d), "attempt_log": [webhooks.attempt_data(a) for a in d.attempt_rows.all()]}


@register("ax_retry_webhook_delivery", role=MCP_ADMIN,
          description="Retry failed deliveries now: one (delivery_id; a succeeded one is resent, with the same "
                      "webhook-id), every failed delivery of a subscription (subscription_id), or of every "
                      "subscription that is not disabled (all_failed: true). Each gets a fresh retry cycle; the "
                      "attempt is logged as manual.",
          schema={**obj({"delivery_id": DELIVERY_ID, "subscription_id": SUB_ID,
                         "all_failed": {"type": "boolean", "const": True,
                                        "description": "every failed delivery of every subscription not disabled"}}),
                  "oneOf": [{"required": ["delivery_id"]}, {"required": ["subscription_id"]},
                            {"required": ["all_failed"]}]},
          output=record({"retried": COUNT, "delivery_ids": {"type": "array", "items": STRING,
                                                            "maxItems": webhooks.MAX_LIST}}))
def retry_webhook_delivery(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    ids = webhooks.retry(delivery_id=args.get("delivery_id"), subscription_id=args.get("subscription_id"),
                         all_failed=args.get("all_failed", False), user=ctx.user)
    return {"retried": len(ids), "delivery_ids": ids[:webhooks.MAX_LIST]}


@register("ax_send_test_webhook", role=MCP_ADMIN,
          description="Send a webhook.test event to one subscription (to check the receiver and its signature "
                      "check).",
          schema=obj({"subscription_id": SUB_ID}, ["subscription_id"]),
          output=record({"delivery_id": STRING, "event_id": STRING, "status": {"enum": list(Delivery.Status.values)}}))
def send_test_webhook(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    sub = webhooks.get_subscription(args["subscription_id"])
    if sub.status == Subscription.Status.DISABLED:
        raise ToolError("INVALID_STATE", f"subscription {sub.subscription_id} is disabled; resume it first",
                        field="subscription_id")
    delivery = fanout.send_test_event(sub, ctx.user)
    return {"delivery_id": delivery.delivery_id, "event_id": delivery.event.event_id, "status": delivery.status}


@register("ax_list_events", role=MCP_READ,
          description="Browse the event store (newest first) by type (or prefix.*) and time: catch up on what a "
                      "receiver missed.",
          schema=obj({"event_type": EVENT_TYPE, "since": TIME, "until": TIME, "limit": LIMIT}),
          output=listing("events", EVENT, count=COUNT))
def list_events(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    qs = Event.objects.exclude(type=catalog.TEST_EVENT).filter(catalog.type_q(args.get("event_type")))
    if (since := parse_time(args, "since")) is not None:
        qs = qs.filter(created__gte=since)
    if (until := parse_time(args, "until")) is not None:
        qs = qs.filter(created__lt=until)
    events = [{"id": e.event_id, "event": e.type, "timestamp": e.created.isoformat(), "data": e.data}
              for e in qs[:args.get("limit", 100)]]
    return {"events": events, "count": len(events)}
