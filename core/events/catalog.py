"""The event types the hub publishes and the data fields each carries (what filters may test)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

ORDER_FIELDS = ("sales_id", "customer_account", "status", "currency", "total_amount", "customer_ref", "created",
                "lines")
CUSTOMER_FIELDS = ("customer_account", "name", "currency", "credit_limit", "balance", "segment", "email", "blocked")


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    fields: tuple[str, ...]


EVENT_TYPES: dict[str, EventType] = {t.name: t for t in (
    EventType("salesorder.created", "a sales order was created (stock reserved)", ORDER_FIELDS),
    EventType("salesorder.updated", "lines, customer reference or status of an order changed",
              (*ORDER_FIELDS, "changed")),
    EventType("salesorder.cancelled", "an order was cancelled and its reservation released",
              (*ORDER_FIELDS, "cancel_reason")),
    EventType("customer.created", "a customer was created", CUSTOMER_FIELDS),
    EventType("customer.updated", "fields of a customer changed", (*CUSTOMER_FIELDS, "changed")),
    EventType("payment.posted", "a customer payment was posted",
              ("payment_id", "customer_account", "amount", "currency", "invoice_id", "reference",
               "customer_balance")),
    EventType("invoice.created", "an order was invoiced",
              ("invoice_id", "sales_id", "customer_account", "currency", "amount", "paid_amount", "open_amount",
               "status", "due_date", "lines")),
    EventType("inventory.low_stock", "available stock of an item fell below its reorder point",
              ("item_id", "name", "unit_price", "on_hand", "reserved", "available", "reorder_point",
               "below_reorder_point", "cause", "sales_id")),
    EventType("import.finished", "an import job completed, failed or was cancelled",
              ("job_id", "type", "mode", "status", "validate_only", "filename", "total", "successful", "failed",
               "records", "error_summary", "error")),
)}

# Sent to one subscription on request ("send test event"), never fanned out to others.
TEST_EVENT = "webhook.test"


def matching_types(pattern: str) -> list[EventType]:
    """The catalogued types a subscription pattern (`*`, `salesorder.*`, or a name) covers."""
    if pattern == "*":
        return list(EVENT_TYPES.values())
    if pattern.endswith(".*"):
        prefix = pattern[:-1]
        return [t for t in EVENT_TYPES.values() if t.name.startswith(prefix)]
    return [EVENT_TYPES[pattern]] if pattern in EVENT_TYPES else []


def type_q(pattern: str | None, field: str = "type") -> Q:
    """The rows whose `field` holds an event type the pattern (`*`, `salesorder.*`, or a
    name) covers; every row for no pattern."""
    if not pattern or pattern == "*":
        return Q()
    if pattern.endswith(".*"):
        return Q(**{f"{field}__startswith": pattern[:-1]})
    return Q(**{field: pattern})


def type_matches(pattern: str, event_type: str) -> bool:
    if pattern == "*":
        return event_type != TEST_EVENT
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type
