"""Reading the system of record: the searches and lists behind the dashboard's records pages
and the read tools (ax_find_customers, ax_list_items, ax_list_salesorders, ax_get_invoice,
ax_list_invoices, ax_get_customer_balance, ax_list_payments). Services only: arguments in,
plain JSON-ready dicts out, in the field names of core/erp/serializers.py; a refusal is a
ToolError naming the argument.

Every list is paged by keyset, not by offset: rows come in a fixed order, (sort key, id),
and the opaque `cursor` of a page holds the position of its last row, so the next page starts
right after it. A row added between two pages (a new order, newest first) lands before the
position and never shifts what follows: no row is repeated or skipped. Each order has an index
that ends in it (see the models' Meta), so a page costs the same on page 1 and page 10,000.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import reduce
from typing import Any

from django.db.models import Case, Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.audit.models import AuditEntry
from core.erp import serializers, services, values
from core.erp.models import (
    VARIANT_SEPARATOR,
    Customer,
    Invoice,
    Item,
    Payment,
    SalesOrder,
    SalesOrderLine,
    search_variants,
)
from core.erp.values import as_float
from core.errors import ToolError
from core.events.models import Event

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Statuses of an order that still holds stock and is not yet on the customer's balance.
OPEN_ORDER = (SalesOrder.Status.OPEN, SalesOrder.Status.CONFIRMED)
# Search ranks, best first: the account or item id itself, its beginning, the name's beginning,
# the beginning of a word of the name, anywhere in the account or name.
EXACT_KEY, KEY_PREFIX, NAME_PREFIX, WORD_PREFIX, ANYWHERE, NO_MATCH = range(6)

Page = dict[str, Any]  # {"items": [...], "next_cursor": str | None}


# --- arguments ---------------------------------------------------------------------------------


def _invalid(field: str, message: str) -> ToolError:
    return ToolError("VALIDATION_ERROR", message, field=field)


def _limit(limit: Any) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise _invalid("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return limit


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise _invalid(field, f"{field} must be true or false")
    return value


def _day(value: Any, field: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise _invalid(field, f"{field} must be a date, YYYY-MM-DD: {value!r}") from None


def _midnight(day: date) -> datetime:
    """The start of a day in the hub's time zone (settings.TIME_ZONE)."""
    return timezone.make_aware(datetime.combine(day, time.min))


def _date_range(date_from: Any, date_to: Any) -> tuple[date | None, date | None]:
    start = None if date_from is None else _day(date_from, "date_from")
    end = None if date_to is None else _day(date_to, "date_to")
    if start and end and end < start:
        raise _invalid("date_to", "date_to is before date_from")
    return start, end


def _within(qs: QuerySet, start: date | None, end: date | None) -> QuerySet:
    """Rows created on the days from start to end, both included."""
    if start:
        qs = qs.filter(created__gte=_midnight(start))
    if end:
        qs = qs.filter(created__lt=_midnight(end + timedelta(days=1)))
    return qs


def _choices(value: Any, allowed: Iterable[str], field: str) -> list[str]:
    """One value or a list of them, each one of `allowed`."""
    allowed = list(allowed)
    wanted = [value] if isinstance(value, str) else value
    if not isinstance(wanted, list | tuple) or not wanted or not all(isinstance(v, str) for v in wanted):
        raise _invalid(field, f"{field} must be one of {', '.join(allowed)}, or a list of them")
    unknown = [v for v in wanted if v not in allowed]
    if unknown:
        raise _invalid(field, f"unknown {field} {unknown[0]!r}; choose from {', '.join(allowed)}")
    return sorted(set(wanted))


def _customer_pk(customer_account: str) -> int:
    return services.get_customer(customer_account).pk


# --- keyset pages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One column of a list's order: its name in the query and how it travels in a cursor."""

    name: str
    kind: type = int  # int, str or datetime

    def dump(self, value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value

    def load(self, value: Any) -> Any:
        if self.kind is datetime:
            parsed = datetime.fromisoformat(value)  # TypeError for a non-string
            if timezone.is_naive(parsed):
                raise ValueError("a cursor's time has a time zone")
            return parsed
        if type(value) is not self.kind:  # not isinstance: a bool is no position
            raise TypeError(f"a cursor's {self.name} is a {self.kind.__name__}")
        return value


ID = Key("id")


def _fingerprint(kind: str, filters: dict[str, Any]) -> str:
    """Ties a cursor to the list and filters it was made for: another list's cursor, or this
    list's with other filters, is refused rather than silently giving a wrong page."""
    canonical = json.dumps([kind, filters], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _encode_cursor(fingerprint: str, position: list[Any]) -> str:
    raw = json.dumps({"f": fingerprint, "p": position}, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: Any, fingerprint: str, keys: tuple[Key, ...]) -> list[Any]:
    try:
        if not isinstance(cursor, str) or not cursor or len(cursor) > 2000:
            raise ValueError
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, dict) or not isinstance(data.get("p"), list) or len(data["p"]) != len(keys):
            raise ValueError
        if data.get("f") != fingerprint:
            raise ToolError("VALIDATION_ERROR", "this cursor belongs to another list or other filters; "
                            "repeat the first call with the same filters and follow its next_cursor", field="cursor")
        return [key.load(value) for key, value in zip(keys, data["p"], strict=True)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ToolError("VALIDATION_ERROR", "cursor is not a cursor this list gave out; leave it out to start "
                        "from the first page", field="cursor") from None


def _after(keys: tuple[Key, ...], position: list[Any], descending: bool) -> Q:
    """The rows that come after `position` in the order of `keys`: (a, b, c) > (x, y, z) written
    out, with the first key also bounded on its own so the database can range-scan the index."""
    op = "lt" if descending else "gt"
    branches = []
    for i, key in enumerate(keys):
        equal = {k.name: v for k, v in zip(keys[:i], position[:i], strict=True)}
        branches.append(Q(**equal, **{f"{key.name}__{op}": position[i]}))
    return Q(**{f"{keys[0].name}__{op}e": position[0]}) & reduce(operator.or_, branches)


def _page(qs: QuerySet, *, kind: str, filters: dict[str, Any], keys: tuple[Key, ...], descending: bool,
          cursor: Any, limit: Any, row: Callable[[dict[str, Any]], dict[str, Any]]) -> Page:
    """One page of `qs` (a .values() queryset holding the keys) in the order of `keys`."""
    size = _limit(limit)
    fingerprint = _fingerprint(kind, filters)
    if cursor is not None:
        qs = qs.filter(_after(keys, _decode_cursor(cursor, fingerprint, keys), descending))
    qs = qs.order_by(*(f"-{k.name}" if descending else k.name for k in keys))
    found = list(qs[:size + 1])
    more = len(found) > size
    found = found[:size]
    next_cursor = _encode_cursor(fingerprint, [k.dump(found[-1][k.name]) for k in keys]) if more else None
    return {"items": [row(r) for r in found], "next_cursor": next_cursor}


# --- search ---------------------------------------------------------------------------------------


def _rank(query: str, key_field: str) -> Case:
    """How well a row matches `query` (EXACT_KEY .. ANYWHERE, NO_MATCH): the key compared as it
    is stored, the name through search_name (casefolded, without accents, with ae/oe/ue)."""
    when = [When(**{f"{key_field}__iexact": query}, then=Value(EXACT_KEY)),
            When(**{f"{key_field}__istartswith": query}, then=Value(KEY_PREFIX))]
    name_prefix, word_prefix, anywhere = Q(), Q(), Q(**{f"{key_field}__icontains": query})
    for variant in search_variants(query):
        name_prefix |= Q(search_name__startswith=variant) | Q(search_name__contains=VARIANT_SEPARATOR + variant)
        word_prefix |= Q(search_name__contains=" " + variant)
        anywhere |= Q(search_name__contains=variant)
    if name_prefix:
        when += [When(name_prefix, then=Value(NAME_PREFIX)), When(word_prefix, then=Value(WORD_PREFIX))]
    when.append(When(anywhere, then=Value(ANYWHERE)))
    return Case(*when, default=Value(NO_MATCH), output_field=IntegerField())


def _searched(qs: QuerySet, query: Any, key_field: str) -> tuple[QuerySet, tuple[Key, ...], str]:
    """The rows matching `query`, best first; without one, every row by its key."""
    text = "" if query is None else str(query).strip()
    if len(text) > 255:
        raise _invalid("query", "query is longer than 255 characters")
    if not text:
        return qs, (Key(key_field, str), ID), ""
    # Within a rank: matches by key in the key's order, matches by name in the name's.
    qs = qs.annotate(rank=_rank(text, key_field)).filter(rank__lt=NO_MATCH).annotate(
        sort_text=Case(When(rank__lte=KEY_PREFIX, then=F(key_field)), default=F("search_name")))
    return qs, (Key("rank"), Key("sort_text", str), ID), text


CUSTOMER_COLUMNS = ("id", "customer_account", "name", "currency", "credit_limit", "balance", "segment", "email",
                    "blocked")


def _customer_row(r: dict[str, Any]) -> dict[str, Any]:
    return {"customer_account": r["customer_account"], "name": r["name"], "currency": r["currency"],
            "credit_limit": as_float(r["credit_limit"]), "balance": as_float(r["balance"]), "segment": r["segment"],
            "email": r["email"], "blocked": r["blocked"]}


def find_customers(query: str | None = None, currency: str | None = None, blocked: bool | None = None,
                   segment: str | None = None, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page:
    """Customers whose account or name matches `query` (case and accents ignored: `muller` and
    `mueller` find Müller GmbH), best matches first; without a query, every customer by account."""
    qs = Customer.objects.all()
    filters: dict[str, Any] = {}
    if currency is not None:
        filters["currency"] = values.currency(currency)
        qs = qs.filter(currency=filters["currency"])
    if blocked is not None:
        filters["blocked"] = _flag(blocked, "blocked")
        qs = qs.filter(blocked=filters["blocked"])
    if segment is not None and str(segment).strip():
        filters["segment"] = values.text(segment, "segment", 40)
        qs = qs.filter(segment__iexact=filters["segment"])
    qs, keys, filters["query"] = _searched(qs, query, "customer_account")
    columns = CUSTOMER_COLUMNS + (("rank", "sort_text") if filters["query"] else ())
    return _page(qs.values(*columns), kind="customers", filters=filters, keys=keys, descending=False,
                 cursor=cursor, limit=limit, row=_customer_row)


# --- items ------------------------------------------------------------------------------------------


def _item_row(r: dict[str, Any]) -> dict[str, Any]:
    available = r["on_hand"] - r["reserved"]
    return {"item_id": r["item_id"], "name": r["name"], "unit_price": as_float(r["unit_price"]),
            "on_hand": r["on_hand"], "reserved": r["reserved"], "available": available,
            "reorder_point": r["reorder_point"], "below_reorder_point": available < r["reorder_point"]}


def list_items(query: str | None = None, below_reorder_point: bool | None = None, limit: int = DEFAULT_LIMIT,
               cursor: str | None = None) -> Page:
    """Items with their stock; `query` matches item id or name as find_customers does;
    `below_reorder_point` true lists those whose available stock is under the reorder point."""
    qs = Item.objects.all()
    filters: dict[str, Any] = {}
    if below_reorder_point is not None:
        filters["below_reorder_point"] = _flag(below_reorder_point, "below_reorder_point")
        below = Q(reorder_point__gt=F("on_hand") - F("reserved"))
        qs = qs.filter(below if filters["below_reorder_point"] else ~below)
    qs, keys, filters["query"] = _searched(qs, query, "item_id")
    columns = ("id", "item_id", "name", "unit_price", "on_hand", "reserved", "reorder_point")
    columns += ("rank", "sort_text") if filters["query"] else ()
    return _page(qs.values(*columns), kind="items", filters=filters, keys=keys, descending=False, cursor=cursor,
                 limit=limit, row=_item_row)


def open_order_lines(item_id: str, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page:
    """The lines of open and confirmed orders that hold stock of an item, newest order first."""
    item = services.get_item(item_id)
    qs = (SalesOrderLine.objects.filter(item=item, order__status__in=OPEN_ORDER)
          .values("id", "line_number", "quantity", "unit_price", "line_amount", "order__sales_id",
                  "order__status", "order__currency", "order__customer__customer_account", "order__created"))
    return _page(qs, kind="open_order_lines", filters={"item_id": item.item_id},
                 keys=(Key("order__created", datetime), ID), descending=True, cursor=cursor, limit=limit,
                 row=lambda r: {"sales_id": r["order__sales_id"], "status": r["order__status"],
                                "customer_account": r["order__customer__customer_account"],
                                "created": r["order__created"].isoformat(), "line_number": r["line_number"],
                                "quantity": r["quantity"], "unit_price": as_float(r["unit_price"]),
                                "line_amount": as_float(r["line_amount"]), "currency": r["order__currency"]})


# --- sales orders -----------------------------------------------------------------------------------

NEWEST_FIRST = (Key("created", datetime), ID)


def _order_row(r: dict[str, Any]) -> dict[str, Any]:
    return {"sales_id": r["sales_id"], "customer_account": r["customer__customer_account"],
            "customer_name": r["customer__name"], "status": r["status"], "currency": r["currency"],
            "total_amount": as_float(r["total_amount"]), "customer_ref": r["customer_ref"],
            "created": r["created"].isoformat(), "line_count": r["line_count"]}


def list_salesorders(customer_account: str | None = None, status: str | list[str] | None = None,
                     date_from: Any = None, date_to: Any = None, customer_ref: str | None = None,
                     min_amount: Any = None, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page:
    """Sales orders, newest first, each with its line count. `status` is one status or a list;
    dates are days in the hub's time zone, both ends included; `min_amount` compares the total
    in the order's own currency."""
    qs = SalesOrder.objects.all()
    filters: dict[str, Any] = {}
    if customer_account is not None:
        filters["customer"] = _customer_pk(customer_account)
        qs = qs.filter(customer_id=filters["customer"])
    if status is not None:
        filters["status"] = _choices(status, SalesOrder.Status.values, "status")
        qs = qs.filter(status__in=filters["status"])
    start, end = _date_range(date_from, date_to)
    filters["dates"] = [start, end]
    qs = _within(qs, start, end)
    if customer_ref is not None and str(customer_ref).strip():
        filters["customer_ref"] = values.text(customer_ref, "customer_ref", 60)
        qs = qs.filter(customer_ref=filters["customer_ref"])
    if min_amount is not None:
        filters["min_amount"] = values.money(min_amount, "min_amount")
        qs = qs.filter(total_amount__gte=filters["min_amount"])
        if customer_account is None and filters.get("customer_ref") is None:
            qs = _few_above(qs, filters["min_amount"])
    # A correlated count per row of the page (the (order, line_number) index answers it), not a
    # GROUP BY over every matching order before the page is cut.
    lines = (SalesOrderLine.objects.filter(order=OuterRef("pk")).order_by().values("order")
             .annotate(n=Count("*")).values("n"))
    qs = qs.annotate(line_count=Coalesce(Subquery(lines, output_field=IntegerField()), 0)).values(
        "id", "sales_id", "customer__customer_account", "customer__name", "status", "currency", "total_amount",
        "customer_ref", "created", "line_count")
    return _page(qs, kind="salesorders", filters=filters, keys=NEWEST_FIRST, descending=True, cursor=cursor,
                 limit=limit, row=_order_row)


# Up to this many orders above a min_amount are read by the amount index and sorted; with more,
# enough of them lie among the newest orders for the walk down the created index to end soon.
FEW_ABOVE = 2000


def _few_above(qs, amount: Any):
    """qs narrowed to the ids of the orders at or above `amount` when they are few: a walk down
    the (created, id) index that must pass most orders to find a page's worth (a high
    min_amount) becomes one bounded range read of the amount index and a sort of what it found."""
    ids = list(SalesOrder.objects.filter(total_amount__gte=amount).order_by("total_amount")
               .values_list("id", flat=True)[:FEW_ABOVE + 1])
    return qs if len(ids) > FEW_ABOVE else qs.filter(id__in=ids)


# --- invoices ---------------------------------------------------------------------------------------

INVOICE_COLUMNS = ("id", "invoice_id", "sales_order__sales_id", "customer__customer_account", "currency", "amount",
                   "paid_amount", "status", "due_date", "created")


def _invoice_row(r: dict[str, Any], today: date | None = None) -> dict[str, Any]:
    today = today or timezone.localdate()
    return {"invoice_id": r["invoice_id"], "sales_id": r["sales_order__sales_id"],
            "customer_account": r["customer__customer_account"], "currency": r["currency"],
            "amount": as_float(r["amount"]), "paid_amount": as_float(r["paid_amount"]),
            "open_amount": as_float(r["amount"] - r["paid_amount"]), "status": r["status"],
            "due_date": r["due_date"].isoformat(),
            "overdue": r["status"] == Invoice.Status.OPEN and r["due_date"] < today,
            "created": r["created"].isoformat()}


def _overdue(today: date) -> Q:
    return Q(status=Invoice.Status.OPEN, due_date__lt=today)


def list_invoices(customer_account: str | None = None, status: str | None = None, overdue: bool | None = None,
                  limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page:
    """Invoices, newest first, with their open amount and due date. `overdue` true: open and due
    before today; false: paid, or due today or later."""
    qs = Invoice.objects.all()
    filters: dict[str, Any] = {}
    today = timezone.localdate()
    if customer_account is not None:
        filters["customer"] = _customer_pk(customer_account)
        qs = qs.filter(customer_id=filters["customer"])
    if status is not None:
        if status not in Invoice.Status.values:
            raise _invalid("status", f"status must be one of {', '.join(Invoice.Status.values)}")
        filters["status"] = status
        qs = qs.filter(status=status)
    if overdue is not None:
        filters["overdue"] = _flag(overdue, "overdue")
        qs = qs.filter(_overdue(today) if overdue else ~_overdue(today))
    return _page(qs.values(*INVOICE_COLUMNS), kind="invoices", filters=filters, keys=NEWEST_FIRST, descending=True,
                 cursor=cursor, limit=limit, row=lambda r: _invoice_row(r, today))


def get_invoice(invoice_id: str) -> dict[str, Any]:
    """One invoice with its open amount, due date, the order's lines and the payments on it."""
    invoice = services.get_invoice(str(invoice_id).strip())
    row = {name: getattr(invoice, name) for name in INVOICE_COLUMNS if "__" not in name}
    row.update(sales_order__sales_id=invoice.sales_order.sales_id,
               customer__customer_account=invoice.customer.customer_account)
    return {**_invoice_row(row), "customer_name": invoice.customer.name,
            "lines": [{"line_number": line.line_number, "item_id": line.item.item_id, "quantity": line.quantity,
                       "unit_price": as_float(line.unit_price), "line_amount": as_float(line.line_amount)}
                      for line in services.order_lines(invoice.sales_order)],
            "payments": list_payments(invoice_id=invoice.invoice_id, limit=MAX_LIMIT)["items"]}


def _money(total: Decimal) -> float | Decimal:
    """A sum as the hub writes an amount: SQLite adds decimals in binary floating point."""
    return as_float(values.round_money(Decimal(total)))


def customer_balance(customer_account: str) -> dict[str, Any]:
    """What a customer owes and may still order: the balance (invoiced minus paid), the open and
    overdue invoices, the open orders (not yet on the balance), the credit limit and what is
    left of it. An order is checked against balance + its amount, so credit_available is the
    limit minus the balance (null when the customer has no limit)."""
    customer = services.get_customer(customer_account)
    today = timezone.localdate()
    overdue = Q(due_date__lt=today)
    invoices = Invoice.objects.filter(customer=customer, status=Invoice.Status.OPEN).aggregate(
        n=Count("id"), owed=Coalesce(Sum("amount") - Sum("paid_amount"), Decimal(0)),
        overdue_n=Count("id", filter=overdue),
        overdue_owed=Coalesce(Sum("amount", filter=overdue) - Sum("paid_amount", filter=overdue), Decimal(0)))
    orders = SalesOrder.objects.filter(customer=customer, status__in=OPEN_ORDER).aggregate(
        n=Count("id"), total=Coalesce(Sum("total_amount"), Decimal(0)))
    limit = customer.credit_limit
    return {
        "customer_account": customer.customer_account, "name": customer.name, "currency": customer.currency,
        "balance": as_float(customer.balance), "credit_limit": as_float(limit),
        "credit_available": as_float(max(limit - customer.balance, Decimal(0))) if limit > 0 else None,
        "blocked": customer.blocked,
        "open_invoices": {"count": invoices["n"], "amount": _money(invoices["owed"]),
                          "overdue_count": invoices["overdue_n"], "overdue_amount": _money(invoices["overdue_owed"])},
        "open_orders": {"count": orders["n"], "amount": _money(orders["total"])},
    }


# --- payments ---------------------------------------------------------------------------------------


def _payment_row(r: dict[str, Any]) -> dict[str, Any]:
    return {"payment_id": r["payment_id"], "customer_account": r["customer__customer_account"],
            "amount": as_float(r["amount"]), "currency": r["currency"], "invoice_id": r["invoice__invoice_id"],
            "reference": r["reference"], "created": r["created"].isoformat()}


def list_payments(customer_account: str | None = None, invoice_id: str | None = None, date_from: Any = None,
                  date_to: Any = None, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page:
    """Payments, newest first; dates are days in the hub's time zone, both ends included."""
    qs = Payment.objects.all()
    filters: dict[str, Any] = {}
    if customer_account is not None:
        filters["customer"] = _customer_pk(customer_account)
        qs = qs.filter(customer_id=filters["customer"])
    if invoice_id is not None:
        filters["invoice"] = services.get_invoice(str(invoice_id).strip()).pk
        qs = qs.filter(invoice_id=filters["invoice"])
    start, end = _date_range(date_from, date_to)
    filters["dates"] = [start, end]
    qs = _within(qs, start, end).values("id", "payment_id", "customer__customer_account", "amount", "currency",
                                        "invoice__invoice_id", "reference", "created")
    return _page(qs, kind="payments", filters=filters, keys=NEWEST_FIRST, descending=True, cursor=cursor,
                 limit=limit, row=_payment_row)


# --- a record's history -------------------------------------------------------------------------------


def record_history(match: dict[str, str], *, since: datetime | None = None, limit: int = 20) -> dict[str, Any]:
    """The latest events whose data names the record (`match`: data key -> value, any of them,
    e.g. {"sales_id": ..., "invoice_id": ...}) as dicts, and the AuditEntry rows of the calls
    that caused them, newest first. `since` (the record's creation) bounds the scan of the event
    store: no event about a record is older than the record."""
    named = reduce(operator.or_, (Q(**{f"data__{key}": value}) for key, value in match.items()))
    events = Event.objects.filter(named)
    if since is not None:
        events = events.filter(created__gte=since - timedelta(seconds=1))
    found = list(events.order_by("-created", "-id").annotate(via=KT("data__caused_by__via"))
                 .values("event_id", "type", "created", "username", "audit_id", "via")[:_limit(limit)])
    audit_ids = {e["audit_id"] for e in found if e["audit_id"]}
    audit = list(AuditEntry.objects.filter(pk__in=audit_ids).order_by("-created", "-id")) if audit_ids else []
    return {"events": found, "audit": audit}


def salesorder_detail(sales_id: str) -> dict[str, Any]:
    """One order with its lines, its customer's name, why it was cancelled, and its invoice
    (get_invoice(), with the payments on it) or None."""
    order = services.get_sales_order(sales_id)
    invoice_id = Invoice.objects.filter(sales_order=order).values_list("invoice_id", flat=True).first()
    return {**serializers.order_data(order), "customer_name": order.customer.name,
            "cancel_reason": order.cancel_reason, "invoice": get_invoice(invoice_id) if invoice_id else None}
