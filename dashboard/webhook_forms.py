"""Forms of the webhook pages: a subscription (new and edit), and the delivery and event filters.

The subscription form speaks the tools' language exactly: its `arguments()` are what
ax_subscribe_webhook and ax_update_webhook take. Event types are ticked (plus patterns typed in),
and filters are rows of field, operator and value with amount bounds, read into the `filters`
object the filter engine (core/webhooks/filters.py) compares.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from core.events import catalog
from core.events.catalog import EVENT_TYPES, TEST_EVENT
from core.webhooks import filters as filter_engine
from core.webhooks import services
from core.webhooks.models import Delivery, Subscription

MIN_FILTER_ROWS = 4
MAX_FILTER_ROWS = 30
IS, ONE_OF = "is", "in"
OPERATORS = [(IS, "is"), (ONE_OF, "is one of")]
_ROW_FIELD = re.compile(r"^filter_(\d+)_field$")
_TRUE, _FALSE = {"true", "yes"}, {"false", "no"}


def event_type_choices(with_any: str | None = None) -> list[tuple[str, str]]:
    prefixes = sorted({name.split(".")[0] for name in EVENT_TYPES})
    choices = [("*", "* (every event)")] + [(f"{p}.*", f"{p}.* (every {p} event)") for p in prefixes]
    choices += [(name, name) for name in EVENT_TYPES]
    return ([("", with_any)] if with_any else []) + choices


def _number(text: str) -> int | Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise forms.ValidationError(f"{text!r} is not a number.") from None
    if not value.is_finite():
        raise forms.ValidationError(f"{text!r} is not a number.")
    return int(value) if value == value.to_integral_value() and abs(value) < 10**18 else value


def read_value(field: str, text: str) -> Any:
    """One value typed for `field`, as its events carry it: a number, true/false, null, or text."""
    if text == "null":
        return None
    if field in filter_engine.NUMBER_FIELDS:
        return _number(text)
    if field in filter_engine.BOOLEAN_FIELDS:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise forms.ValidationError(f"{field} is true or false, not {text!r}.")
    return text


def show_value(value: Any) -> str:
    """A stored filter value as the form shows it (the inverse of read_value)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def describe_filters(filters: dict[str, Any]) -> list[str]:
    """A subscription's filters in words, one per condition."""
    lines = []
    for key, value in filters.items():
        if key in filter_engine.AMOUNT_KEYS:
            lines.append(f"amount {'≥' if key == 'min_amount' else '≤'} {show_value(value)}")
        elif isinstance(value, list):
            lines.append(f"{key} is one of {', '.join(show_value(v) for v in value)}")
        else:
            lines.append(f"{key} is {show_value(value)}")
    return lines


class SubscriptionForm(forms.Form):
    """Subscribe (secret optional) or edit (no secret field: rotate it instead)."""

    event_types = forms.MultipleChoiceField(
        required=False, label="Event types", widget=forms.CheckboxSelectMultiple,
        choices=lambda: [(name, name) for name in EVENT_TYPES])
    patterns = forms.CharField(
        required=False, max_length=500, label="Or patterns",
        widget=forms.TextInput(attrs={"placeholder": "salesorder.*"}),
        help_text="salesorder.* is every order event, * every event; several separated by commas.")
    webhook_url = forms.CharField(max_length=2000, label="Endpoint URL",
                                  widget=forms.URLInput(attrs={"placeholder": "https://n8n.example.com/webhook/order"}))
    min_amount = forms.DecimalField(required=False, label="Amount at least",
                                    help_text="Compares the order's total_amount, else the amount (payments, "
                                              "invoices); events without one do not match.")
    max_amount = forms.DecimalField(required=False, label="Amount at most")
    max_retries = forms.IntegerField(min_value=0, max_value=20, initial=3, label="Retries")
    backoff_ms = forms.IntegerField(min_value=100, max_value=3_600_000, initial=1000, label="First backoff (ms)",
                                    help_text="Retry n waits backoff × 2^(n-1): 1 s, 2 s, 4 s by default.")
    description = forms.CharField(required=False, max_length=255)
    secret = forms.CharField(required=False, min_length=16, max_length=200, label="Secret (optional)",
                             help_text="Leave empty to have a whsec_ secret generated and shown once.",
                             widget=forms.PasswordInput(attrs={"autocomplete": "off"}))

    def __init__(self, data: Any = None, *, editing: bool = False, initial: dict[str, Any] | None = None,
                 rows: int = 0) -> None:
        super().__init__(data, initial=initial)
        if editing:
            del self.fields["secret"]
        posted = [int(m.group(1)) + 1 for key in (data or {}) if (m := _ROW_FIELD.match(key))]
        self.row_count = min(MAX_FILTER_ROWS, max(MIN_FILTER_ROWS, rows, *posted))
        field_choices = [("", "—")] + [(name, name) for name in filter_engine.comparable_fields()]
        for n in range(self.row_count):
            self.fields[f"filter_{n}_field"] = forms.ChoiceField(required=False, choices=field_choices,
                                                                 label="Field")
            self.fields[f"filter_{n}_op"] = forms.ChoiceField(required=False, choices=OPERATORS, label="Operator")
            self.fields[f"filter_{n}_value"] = forms.CharField(
                required=False, max_length=2000, label="Value",
                widget=forms.TextInput(attrs={"placeholder": "CUST-001"}))

    @classmethod
    def for_subscription(cls, sub: Subscription) -> SubscriptionForm:
        patterns = sub.patterns
        initial: dict[str, Any] = {
            "event_types": [p for p in patterns if p in EVENT_TYPES],
            "patterns": ", ".join(p for p in patterns if p not in EVENT_TYPES),
            "webhook_url": sub.url, "description": sub.description, "max_retries": sub.max_retries,
            "backoff_ms": sub.backoff_ms, "min_amount": sub.filters.get("min_amount"),
            "max_amount": sub.filters.get("max_amount")}
        rows = [(k, v) for k, v in sub.filters.items() if k not in filter_engine.AMOUNT_KEYS]
        for n, (key, value) in enumerate(rows):
            values = value if isinstance(value, list) else [value]
            initial.update({f"filter_{n}_field": key, f"filter_{n}_op": ONE_OF if isinstance(value, list) else IS,
                            f"filter_{n}_value": ", ".join(show_value(v) for v in values)})
        return cls(editing=True, initial=initial, rows=len(rows) + 2)

    def filter_rows(self) -> list[tuple[forms.BoundField, forms.BoundField, forms.BoundField]]:
        return [(self[f"filter_{n}_field"], self[f"filter_{n}_op"], self[f"filter_{n}_value"])
                for n in range(self.row_count)]

    def clean_patterns(self) -> list[str]:
        text = self.cleaned_data.get("patterns") or ""
        return [p for p in (part.strip() for part in re.split(r"[,\s]+", text)) if p]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        types = list(dict.fromkeys([*data.get("event_types", []), *data.get("patterns", [])]))
        if not types and "patterns" not in self.errors:
            self.add_error("event_types", "Tick at least one event type, or give a pattern.")
        data["types"] = types
        data["filters"] = self._filters(data)
        return data

    def _filters(self, data: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for n in range(self.row_count):
            field, value = data.get(f"filter_{n}_field") or "", (data.get(f"filter_{n}_value") or "").strip()
            if not field and not value:
                continue
            if not field:
                self.add_error(f"filter_{n}_field", "Pick the field this value is compared with.")
                continue
            if field in found:
                self.add_error(f"filter_{n}_field", f"{field} is in two rows: use one row with “is one of”.")
                continue
            texts = [t.strip() for t in value.split(",")] if data.get(f"filter_{n}_op") == ONE_OF else [value]
            texts = [t for t in texts if t]
            if not texts:
                self.add_error(f"filter_{n}_value", f"Give the value {field} is compared with.")
                continue
            try:
                values = [read_value(field, t) for t in texts]
            except forms.ValidationError as error:
                self.add_error(f"filter_{n}_value", error)
                continue
            found[field] = values if data.get(f"filter_{n}_op") == ONE_OF else values[0]
        for key in filter_engine.AMOUNT_KEYS:
            if data.get(key) is not None:
                found[key] = _number(str(data[key]))
        return found

    def arguments(self) -> dict[str, Any]:
        """Tool arguments (ax_subscribe_webhook, or ax_update_webhook without the id); after is_valid()."""
        data = self.cleaned_data
        args: dict[str, Any] = {
            "event_types": data["types"], "webhook_url": data["webhook_url"].strip(), "filters": data["filters"],
            "retry_policy": {"max_retries": data["max_retries"], "backoff_ms": data["backoff_ms"]},
            "description": data["description"],
        }
        if data.get("secret"):
            args["secret"] = data["secret"]
        return args


DELIVERY_STATUS_CHOICES = [("", "Any status"), ("open", "Pending or sending"),
                           *[(s.value, s.label) for s in Delivery.Status]]


def _start_of(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _subscription_choices() -> list[tuple[str, str]]:
    subs = Subscription.objects.only("subscription_id", "url", "description")[:200]
    return [("", "All endpoints")] + [
        (s.subscription_id, f"{s.host} · {s.description}" if s.description else f"{s.host} · {s.subscription_id}")
        for s in subs]


class DeliveryFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search",
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "SO-000123, CUST-001, evt_…"}))
    status = forms.ChoiceField(required=False, choices=DELIVERY_STATUS_CHOICES)
    # Choices are read only when the form is shown or a subscription is chosen: the live list's
    # fragment, polled every few seconds, does not pay for them.
    subscription = forms.ChoiceField(required=False, label="Endpoint", choices=_subscription_choices)
    event_type = forms.ChoiceField(required=False, label="Event",
                                   choices=lambda: [("", "Any event"), *event_type_choices(), (TEST_EVENT, TEST_EVENT)])
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def filter(self, rows: QuerySet) -> QuerySet:
        data = {k: v for k, v in self.cleaned_data.items() if v}
        if data.get("status") == "open":
            rows = rows.filter(status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING])
        elif "status" in data:
            rows = rows.filter(status=data["status"])
        if "subscription" in data:
            rows = rows.filter(subscription__subscription_id=data["subscription"])
        if "event_type" in data:
            rows = rows.filter(catalog.type_q(data["event_type"], "event_type"))
        if "q" in data:
            rows = rows.filter(services.search_q(data["q"]))
        if "date_from" in data:
            rows = rows.filter(created__gte=_start_of(data["date_from"]))
        if "date_to" in data:
            rows = rows.filter(created__lt=_start_of(data["date_to"] + timedelta(days=1)))
        return rows


class EventFilterForm(forms.Form):
    type = forms.ChoiceField(required=False, choices=lambda: event_type_choices("Any type"), label="Type")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def filter(self, events: QuerySet) -> QuerySet:
        data = {k: v for k, v in self.cleaned_data.items() if v}
        events = events.filter(catalog.type_q(data.get("type")))
        if "date_from" in data:
            events = events.filter(created__gte=_start_of(data["date_from"]))
        if "date_to" in data:
            events = events.filter(created__lt=_start_of(data["date_to"] + timedelta(days=1)))
        return events
