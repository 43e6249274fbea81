"""The filter language of subscriptions, read from the JSON column through a small typed class.

    {"customer_account": "CUST-001"}            data field equals the value
    {"currency": ["EUR", "USD"]}                a list means any of these values
    {"min_amount": 1000, "max_amount": 5000}    the event's amount (total_amount, else amount),
                                                inclusive bounds; an event without one never matches
All keys must hold at once. A key must be a data field of one of the subscribed event types; an
event whose data lacks the field does not match (a subscription to orders and payments filtered on
sales_id receives no payment).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core.errors import ToolError
from core.events.catalog import TEST_EVENT, matching_types

AMOUNT_KEYS = ("min_amount", "max_amount")
# The data fields that carry numbers, and yes/no values: a value typed into a form is read as the
# event carries it (1000 is a number for total_amount and text for customer_ref; a number never
# equals a text). Fields holding lists or objects cannot be compared and are left out of forms.
NUMBER_FIELDS = frozenset({"total_amount", "amount", "credit_limit", "balance", "customer_balance", "paid_amount",
                           "open_amount", "unit_price", "on_hand", "reserved", "available", "reorder_point", "total",
                           "successful", "failed"})
BOOLEAN_FIELDS = frozenset({"blocked", "validate_only", "below_reorder_point"})
STRUCTURED_FIELDS = frozenset({"lines", "changed", "records", "error_summary"})
MAX_VALUES = 100
MAX_EVENT_TYPES = 20
_SCALARS = (str, int, float, Decimal, bool, type(None))  # Decimal: a fraction as the HTTP API reads it


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return Decimal(str(value))


def comparable_fields(event_types: Sequence[str] | None = None) -> list[str]:
    """The data fields a filter can compare (sorted), of the given types and patterns or of all."""
    types = [t for p in event_types for t in matching_types(p)] if event_types else matching_types("*")
    return sorted({f for t in types for f in t.fields} - STRUCTURED_FIELDS)


def event_amount(data: dict[str, Any]) -> Decimal | None:
    """The amount a min/max filter compares: total_amount (orders), else amount (payments, invoices)."""
    value = data.get("total_amount", data.get("amount"))
    return _number(value)


def _same(a: Any, b: Any) -> bool:
    """JSON equality where 1000 equals 1000.0 but True never equals 1."""
    na, nb = _number(a), _number(b)
    if na is not None or nb is not None:
        return na is not None and nb is not None and na == nb
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class Filters:
    equals: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> Filters:
        """Read a stored (already validated) filter object."""
        raw = raw or {}
        equals = {k: tuple(v) if isinstance(v, list) else (v,) for k, v in raw.items() if k not in AMOUNT_KEYS}
        return cls(equals, _number(raw.get("min_amount")), _number(raw.get("max_amount")))

    def matches(self, data: dict[str, Any]) -> bool:
        if self.min_amount is not None or self.max_amount is not None:
            amount = event_amount(data)
            if amount is None:
                return False
            if self.min_amount is not None and amount < self.min_amount:
                return False
            if self.max_amount is not None and amount > self.max_amount:
                return False
        for key, accepted in self.equals.items():
            if key not in data or not any(_same(data[key], value) for value in accepted):
                return False
        return True


def validate(event_types: str | Sequence[str], raw: Any) -> dict[str, Any]:
    """Check a subscription's filters against the fields of its event types (a name or pattern, or
    several); returns them cleaned."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ToolError("VALIDATION_ERROR", "filters must be an object", field="filters")
    patterns = [event_types] if isinstance(event_types, str) else list(event_types)
    event_type = ", ".join(patterns)
    fields = sorted({f for pattern in patterns for t in matching_types(pattern) for f in t.fields})
    cleaned: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"filters.{key}"
        if key in AMOUNT_KEYS:
            if _number(value) is None:
                raise ToolError("VALIDATION_ERROR", f"{where} must be a number", field=where)
            cleaned[key] = value
            continue
        if key not in fields:
            raise ToolError("VALIDATION_ERROR",
                            f"unknown filter {key!r} for {event_type}: use min_amount, max_amount or one of "
                            f"{', '.join(fields)}", field=where)
        values = value if isinstance(value, list) else [value]
        if not values or len(values) > MAX_VALUES or not all(isinstance(v, _SCALARS) for v in values):
            raise ToolError("VALIDATION_ERROR", f"{where} must be a string, number, boolean or null, or a list "
                            f"of 1-{MAX_VALUES} of them", field=where)
        cleaned[key] = value
    low, high = _number(cleaned.get("min_amount")), _number(cleaned.get("max_amount"))
    if low is not None and high is not None and low > high:
        raise ToolError("VALIDATION_ERROR", "filters.min_amount is greater than filters.max_amount",
                        field="filters.min_amount")
    return cleaned


def validate_event_type(event_type: Any, where: str = "event_type") -> str:
    value = str(event_type or "").strip()
    if value == TEST_EVENT or not matching_types(value):
        raise ToolError("VALIDATION_ERROR", f"unknown {where.split('.')[0]} {event_type!r}: use *, a prefix like "
                        "salesorder.*, or one of the event types (see the README)", field=where)
    return value


def validate_event_types(event_types: Any) -> list[str]:
    """A subscription's event types and patterns: 1-20 of them, each known; repeats dropped, order kept."""
    if isinstance(event_types, str) or not isinstance(event_types, Sequence) or not event_types:
        raise ToolError("VALIDATION_ERROR", "event_types must be a list of 1-20 event types or patterns",
                        field="event_types")
    cleaned = [validate_event_type(value, f"event_types.{n}") for n, value in enumerate(event_types)]
    cleaned = list(dict.fromkeys(cleaned))
    if len(cleaned) > MAX_EVENT_TYPES:
        raise ToolError("VALIDATION_ERROR", f"event_types: at most {MAX_EVENT_TYPES} event types or patterns",
                        field="event_types")
    return cleaned
