"""What an event is about, in the words a person looking for a delivery uses: the order, customer,
invoice, payment, item or import it concerns, and its amount and currency when it has one.

Copied onto each delivery when it is made (fan-out), so the deliveries page shows and searches it
with the delivery row alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from core.webhooks.filters import event_amount

# The field naming the record an event type is about, by the type's prefix, with the word for it.
KINDS: dict[str, tuple[str, str]] = {
    "salesorder": ("sales_id", "Order"),
    "invoice": ("invoice_id", "Invoice"),
    "payment": ("payment_id", "Payment"),
    "customer": ("customer_account", "Customer"),
    "inventory": ("item_id", "Item"),
    "import": ("job_id", "Import"),
}
# For an event type not listed above: the first of these fields its data carries.
FALLBACK = ("sales_id", "invoice_id", "payment_id", "item_id", "customer_account", "job_id")
MAX_LENGTH = 100
_LIMIT = Decimal(10) ** 16  # the largest amount the column holds (18 digits, 2 after the point)
_CENTS = Decimal("0.01")


@dataclass(frozen=True)
class Subject:
    subject: str = ""
    amount: Decimal | None = None
    currency: str = ""


def kind(event_type: str) -> str:
    """The word for what events of this type are about ("Order"), or "" when there is none."""
    return KINDS.get(event_type.split(".", 1)[0], ("", ""))[1]


def _amount(data: dict[str, Any]) -> Decimal | None:
    value = event_amount(data)
    if value is None:
        return None
    try:
        value = value.quantize(_CENTS)
    except InvalidOperation:
        return None
    return value if abs(value) < _LIMIT else None


def of(event_type: str, data: Any) -> Subject:
    """The subject of an event of `event_type` with `data` (its stored JSON object)."""
    if not isinstance(data, dict):
        return Subject()
    key = KINDS.get(event_type.split(".", 1)[0], ("", ""))[0]
    keys = (key,) if key else FALLBACK
    subject = next((data[k] for k in keys if isinstance(data.get(k), str | int) and data.get(k) != ""), "")
    currency = data.get("currency")
    currency = currency if isinstance(currency, str) and len(currency) == 3 else ""
    return Subject(str(subject)[:MAX_LENGTH], _amount(data), currency)
