"""Forms of the webhook pages: a subscription (new and edit), and the delivery and event filters."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from core.events import catalog
from core.events.catalog import EVENT_TYPES
from core.tools import jsonio
from core.webhooks.models import Delivery, Subscription


def event_type_choices(with_any: str | None = None) -> list[tuple[str, str]]:
    prefixes = sorted({name.split(".")[0] for name in EVENT_TYPES})
    choices = [("*", "* (every event)")] + [(f"{p}.*", f"{p}.* (every {p} event)") for p in prefixes]
    choices += [(name, name) for name in EVENT_TYPES]
    return ([("", with_any)] if with_any else []) + choices


FILTERS_HELP = ('JSON object. {"customer_account": "CUST-001"} matches a data field; a list means any of '
                '({"currency": ["EUR", "USD"]}); min_amount / max_amount compare total_amount (or amount).')


class SubscriptionForm(forms.Form):
    """Subscribe (secret optional) or edit (no secret field: rotate it instead)."""

    event_type = forms.ChoiceField(choices=event_type_choices, initial="salesorder.created")
    webhook_url = forms.CharField(max_length=2000, label="Endpoint URL",
                                  widget=forms.URLInput(attrs={"placeholder": "https://n8n.example.com/webhook/order"}))
    filters = forms.CharField(required=False, label="Filters (JSON)", help_text=FILTERS_HELP,
                              widget=forms.Textarea(attrs={"rows": 3, "class": "code", "spellcheck": "false",
                                                           "placeholder": '{"customer_account": "CUST-001"}'}))
    max_retries = forms.IntegerField(min_value=0, max_value=20, initial=3, label="Retries")
    backoff_ms = forms.IntegerField(min_value=100, max_value=3_600_000, initial=1000, label="First backoff (ms)",
                                    help_text="Retry n waits backoff × 2^(n-1): 1 s, 2 s, 4 s by default.")
    description = forms.CharField(required=False, max_length=255)
    secret = forms.CharField(required=False, min_length=16, max_length=200, label="Secret (optional)",
                             help_text="Leave empty to have a whsec_ secret generated and shown once.",
                             widget=forms.PasswordInput(attrs={"autocomplete": "off"}))

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["secret"]

    @classmethod
    def for_subscription(cls, sub: Subscription) -> SubscriptionForm:
        return cls(editing=True, initial={
            "event_type": sub.event_type, "webhook_url": sub.url, "description": sub.description,
            "filters": jsonio.dumps(sub.filters) if sub.filters else "", "max_retries": sub.max_retries,
            "backoff_ms": sub.backoff_ms})

    def clean_filters(self) -> dict[str, Any]:
        text = (self.cleaned_data.get("filters") or "").strip()
        if not text:
            return {}
        try:
            value = jsonio.loads(text)
        except (ValueError, RecursionError) as exc:
            raise forms.ValidationError(f"This is not valid JSON: {str(exc)[:200]}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Filters must be a JSON object.")
        return value

    def arguments(self) -> dict[str, Any]:
        """Tool arguments (ax_subscribe_webhook, or ax_update_webhook without the id); after is_valid()."""
        data = self.cleaned_data
        args: dict[str, Any] = {
            "event_type": data["event_type"], "webhook_url": data["webhook_url"].strip(), "filters": data["filters"],
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


class DeliveryFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=DELIVERY_STATUS_CHOICES)
    subscription = forms.ChoiceField(required=False)
    event_type = forms.ChoiceField(required=False, label="Event")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["subscription"].choices = [("", "All subscriptions")] + [
            (s.subscription_id, f"{s.subscription_id} ({s.event_type})")
            for s in Subscription.objects.only("subscription_id", "event_type")[:200]]
        self.fields["event_type"].choices = [("", "Any event")] + [(n, n) for n in EVENT_TYPES] + [
            ("webhook.test", "webhook.test")]

    def filter(self, rows: QuerySet) -> QuerySet:
        data = {k: v for k, v in self.cleaned_data.items() if v}
        if data.get("status") == "open":
            rows = rows.filter(status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING])
        elif "status" in data:
            rows = rows.filter(status=data["status"])
        if "subscription" in data:
            rows = rows.filter(subscription__subscription_id=data["subscription"])
        if "event_type" in data:
            rows = rows.filter(event_type=data["event_type"])
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
