"""Webhook subscriptions, their deliveries (one per matching event) and every delivery attempt.

Deliveries are a work queue: `status` + `next_attempt_at` say what is due, `claim` says who
enqueued it. The dispatcher claims due rows with a conditional UPDATE that writes a fresh
claim token (and pushes next_attempt_at out by a lease, so a lost task is re-enqueued); a
task then takes each row pending -> sending only while its token still holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core import jsoncodec
from core.events.models import Event
from core.webhooks import subjects


@dataclass(frozen=True)
class RetryPolicy:
    """The subscription's retry policy, as the stories name it."""

    max_retries: int
    backoff_ms: int

    def delay_ms(self, retry_number: int) -> int:
        """Wait before retry n (1-based): backoff_ms * 2^(n-1), i.e. 1 s, 2 s, 4 s by default."""
        return self.backoff_ms * 2 ** (retry_number - 1)

    def as_dict(self) -> dict[str, int]:
        return {"max_retries": self.max_retries, "backoff_ms": self.backoff_ms}


class Subscription(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"
        DISABLED = "disabled"

    subscription_id = models.CharField(max_length=40, unique=True)
    # The first of event_types, kept for readers that know one type per subscription.
    event_type = models.CharField(max_length=100, help_text="the first of event_types")
    # Event types and patterns (salesorder.created, salesorder.*, *); an event matching any is delivered.
    event_types = models.JSONField(default=list, blank=True)
    url = models.CharField(max_length=2000)
    filters = models.JSONField(default=dict, blank=True, encoder=jsoncodec.Encoder, decoder=jsoncodec.Decoder)
    description = models.CharField(max_length=255, blank=True)
    secret_encrypted = models.TextField()
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_expires = models.DateTimeField(null=True, blank=True)
    max_retries = models.PositiveSmallIntegerField(default=3)
    backoff_ms = models.PositiveIntegerField(default=1000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    disabled_reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)
    last_success_at = models.DateTimeField(null=True, blank=True)
    # The first failed attempt since the last success; None while healthy. Drives the 7-day rule.
    failing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.event_type} -> {self.url}"

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.backoff_ms)

    @property
    def patterns(self) -> tuple[str, ...]:
        """What the subscription listens to; a row written with only event_type listens to that."""
        if self.event_types:
            return tuple(str(p) for p in self.event_types)
        return (self.event_type,) if self.event_type else ()

    @property
    def host(self) -> str:
        """The endpoint's host (and port, when it has one): what a list of deliveries shows."""
        return urlsplit(self.url).netloc or self.url


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    delivery_id = models.CharField(max_length=40, unique=True)
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=60)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Attempts since the delivery (re)started its retry cycle; a manual retry starts a new one.
    cycle_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # Who asked for the next attempt: "" (automatic) or "manual:<username>".
    next_trigger = models.CharField(max_length=160, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    # What the event is about, copied from its data when the delivery is made (core/webhooks/subjects.py),
    # so that lists show it and search by it without reading the events.
    subject = models.CharField(max_length=100, blank=True, help_text="sales_id, customer_account, invoice_id, …")
    amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [models.UniqueConstraint(fields=["event", "subscription"], name="delivery_event_subscription")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="delivery_due"),
            models.Index(fields=["claimed_until"], condition=Q(status="sending"), name="delivery_sending"),
            models.Index(fields=["claim"]),
            models.Index(fields=["subscription", "status", "created"]),
            models.Index(fields=["status", "created"]),
            # Retention: finished deliveries by status and age (core/webhooks/retention.py).
            models.Index(fields=["status", "finished"], name="delivery_status_finished"),
            # The deliveries page: newest first, and a search by subject.
            models.Index(fields=["created"], name="delivery_created"),
            models.Index(fields=["subject", "created"], name="delivery_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.event_type} ({self.status})"

    @property
    def done(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)

    @property
    def subject_kind(self) -> str:
        """The word for what the event is about: Order, Customer, Invoice, Payment, Item, Import."""
        return subjects.kind(self.event_type)

    @property
    def held(self) -> str:
        """Why a waiting delivery is not being sent ("paused", "disabled"), else ""."""
        if self.status == self.Status.PENDING and self.subscription.status != Subscription.Status.ACTIVE:
            return self.subscription.status
        return ""


class Attempt(models.Model):
    class Trigger(models.TextChoices):
        AUTOMATIC = "automatic"
        MANUAL = "manual"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField()
    started = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    success = models.BooleanField(default=False)
    error_class = models.CharField(max_length=40, blank=True, help_text="timeout, connection, http_5xx, …")
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.TextField(blank=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.AUTOMATIC)
    triggered_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        indexes = [models.Index(fields=["delivery", "number"])]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error_class}"
