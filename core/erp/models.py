"""The system of record: customers, items, sales orders, invoices and payments.

Money is Decimal with two places throughout; quantities are whole units.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q

MONEY = {"max_digits": 18, "decimal_places": 2}


class Customer(models.Model):
    customer_account = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=255)
    currency = models.CharField(max_length=3)
    credit_limit = models.DecimalField(**MONEY, default=Decimal("0"))
    balance = models.DecimalField(**MONEY, default=Decimal("0"))
    segment = models.CharField(max_length=40, blank=True)
    email = models.CharField(max_length=254, blank=True)
    blocked = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["customer_account"]

    def __str__(self) -> str:
        return f"{self.customer_account} {self.name}"


class Item(models.Model):
    item_id = models.CharField(max_length=30, unique=True)
    name = models.CharField(max_length=255)
    unit_price = models.DecimalField(**MONEY)
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    reorder_point = models.IntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["item_id"]
        constraints = [
            models.CheckConstraint(condition=Q(reserved__gte=0), name="item_reserved_not_negative"),
            models.CheckConstraint(condition=Q(on_hand__gte=F("reserved")), name="item_on_hand_covers_reserved"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} {self.name}"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def below_reorder_point(self) -> bool:
        return self.available < self.reorder_point


class ExchangeRate(models.Model):
    """How many units of `currency` one unit of the base currency buys."""

    currency = models.CharField(max_length=3, unique=True)
    rate = models.DecimalField(max_digits=18, decimal_places=6)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"1 base = {self.rate} {self.currency}"


class SalesOrder(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        CONFIRMED = "confirmed"
        INVOICED = "invoiced"
        CANCELLED = "cancelled"

    # Filled right after insert from the primary key, so numbering needs no lock.
    sales_id = models.CharField(max_length=30, unique=True, null=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="sales_orders")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    total_amount = models.DecimalField(**MONEY, default=Decimal("0"))
    customer_ref = models.CharField(max_length=60, blank=True)
    cancel_reason = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status"]), models.Index(fields=["customer", "status"])]

    def __str__(self) -> str:
        return self.sales_id or f"order #{self.pk}"


class SalesOrderLine(models.Model):
    order = models.ForeignKey(SalesOrder, on_delete=models.CASCADE, related_name="lines")
    line_number = models.PositiveIntegerField()
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(**MONEY)
    line_amount = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["order", "line_number"]
        constraints = [models.UniqueConstraint(fields=["order", "line_number"], name="order_line_unique")]

    def __str__(self) -> str:
        return f"line {self.line_number}: {self.quantity} x {self.item_id}"


class Invoice(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        PAID = "paid"

    invoice_id = models.CharField(max_length=30, unique=True, null=True)
    sales_order = models.OneToOneField(SalesOrder, on_delete=models.PROTECT, related_name="invoice")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(**MONEY)
    paid_amount = models.DecimalField(**MONEY, default=Decimal("0"))
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    due_date = models.DateField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.invoice_id or f"invoice #{self.pk}"

    @property
    def open_amount(self) -> Decimal:
        return self.amount - self.paid_amount


class Payment(models.Model):
    payment_id = models.CharField(max_length=30, unique=True, null=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=100, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.payment_id or f"payment #{self.pk}"
