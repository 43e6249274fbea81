"""The system of record: customers, items, sales orders, invoices and payments.

Money is Decimal with two places throughout; quantities are whole units.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from decimal import Decimal

from django.db import models
from django.db.models import F, Q

MONEY = {"max_digits": 18, "decimal_places": 2}

# --- search text -------------------------------------------------------------------------------
# Names are searched through a stored, normalised copy (`search_name`), so the same plain LIKE
# finds "Müller GmbH" for "muller", "mueller" and "MÜLLER" on SQLite and PostgreSQL alike,
# without collations or extensions that only one of them has.

SEARCH_NAME_LENGTH = 600
# Between the spellings of one name in search_name; never part of a normalised spelling.
VARIANT_SEPARATOR = "|"
# Letters that Unicode does not decompose into a base letter and a mark.
_FOLD = str.maketrans({"æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ð": "d", "ł": "l", "ı": "i", "þ": "th"})
# The German way of writing umlauts without them: Müller is also written Mueller.
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})
_NOT_WORD = re.compile(r"[\W_]+")


class _Marks(dict):
    """A str.translate table that drops combining marks (accents and the like). A character is
    looked up once, on first sight, instead of building a table of all 1,114,112 code points
    (0.4 s in every process that searches or imports a name)."""

    def __missing__(self, cp: int) -> int | None:
        kept = None if unicodedata.combining(chr(cp)) else cp
        self[cp] = kept
        return kept


_MARKS = _Marks()


def _plain(folded: str) -> str:
    """Compatibility-decomposed, marks dropped, runs of punctuation and spaces as one space."""
    letters = unicodedata.normalize("NFKD", folded.translate(_FOLD)).translate(_MARKS)
    return " ".join(_NOT_WORD.sub(" ", letters).split())


def search_variants(text: str) -> list[str]:
    """The spellings a search compares: casefolded and without accents ("muller gmbh"), and for a
    text with umlauts also with ae/oe/ue ("mueller gmbh"). Used for stored names and queries alike."""
    text = str(text)
    if text.isascii():  # nothing to fold but case (most names: the fast way)
        plain = " ".join(_NOT_WORD.sub(" ", text.casefold()).split())
        return [plain] if plain else []
    folded = unicodedata.normalize("NFC", text.casefold())
    umlauts = folded.translate(_UMLAUTS)
    variants = [_plain(folded)] if umlauts == folded else [_plain(folded), _plain(umlauts)]
    return [v for v in dict.fromkeys(variants) if v]


@functools.lru_cache(maxsize=4096)
def search_text(name: str) -> str:
    """What search_name holds for a name: its spellings, joined by VARIANT_SEPARATOR."""
    return VARIANT_SEPARATOR.join(search_variants(name))[:SEARCH_NAME_LENGTH]


class SearchNameMixin:
    """Keeps search_name in step with name on every save, also a save(update_fields=["name"])."""

    def save(self, *args, **kwargs) -> None:
        update_fields: Sequence[str] | None = kwargs.get("update_fields")
        if update_fields is None or "name" in update_fields:
            self.search_name = search_text(self.name)
            if update_fields is not None and "search_name" not in update_fields:
                kwargs["update_fields"] = [*update_fields, "search_name"]
        super().save(*args, **kwargs)


class Customer(SearchNameMixin, models.Model):
    customer_account = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=255)
    # search_text(name): written with the name by save() and by the bulk import.
    search_name = models.CharField(max_length=SEARCH_NAME_LENGTH, db_index=True, editable=False, default="")
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


class Item(SearchNameMixin, models.Model):
    item_id = models.CharField(max_length=30, unique=True)
    name = models.CharField(max_length=255)
    search_name = models.CharField(max_length=SEARCH_NAME_LENGTH, db_index=True, editable=False, default="")
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
        # The lists (core/erp/reads.py) read newest first, (created, id) descending, by keyset:
        # each filter they take has an index that ends in (created, id).
        indexes = [
            models.Index(fields=["customer", "status"]),
            models.Index(fields=["created", "id"], name="salesorder_created"),
            models.Index(fields=["customer", "created", "id"], name="salesorder_customer_created"),
            models.Index(fields=["status", "created", "id"], name="salesorder_status_created"),
            models.Index(fields=["customer_ref", "created", "id"], name="salesorder_customer_ref"),
            # min_amount: finds the few orders above a high amount without walking every order.
            models.Index(fields=["total_amount"], name="salesorder_amount"),
        ]

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
        indexes = [
            models.Index(fields=["created", "id"], name="invoice_created"),
            models.Index(fields=["customer", "created", "id"], name="invoice_customer_created"),
            models.Index(fields=["status", "created", "id"], name="invoice_status_created"),
        ]

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
        indexes = [
            models.Index(fields=["created", "id"], name="payment_created"),
            models.Index(fields=["customer", "created", "id"], name="payment_customer_created"),
        ]

    def __str__(self) -> str:
        return self.payment_id or f"payment #{self.pk}"
