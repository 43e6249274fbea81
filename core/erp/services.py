"""ERP workflows. Each write is atomic and refuses bad input with a ToolError code.

Writes run inside the caller's transaction without a savepoint of their own (a refusal
rolls back the whole transaction), which keeps the hot path to the statements it needs.

Stock is reserved with conditional UPDATEs (`on_hand >= reserved + qty`) rather than row
locks, so concurrent orders for different items never wait on each other and concurrent
orders for the same item can never oversell.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Round
from django.utils import timezone

from core.erp import rows, values
from core.erp.models import Customer, Invoice, Item, Payment, SalesOrder, SalesOrderLine
from core.errors import ToolError
from core.events.bus import publish

PAYMENT_TERMS_DAYS = 30
HALF_CENT = Decimal("0.005")
MAX_LINES = 200
# Stock quantities stay far inside a 32-bit integer column (PostgreSQL `integer`), so no
# arithmetic on them can overflow into a database error.
MAX_STOCK = 1_000_000_000


def document_id(prefix: str, pk: int, when=None) -> str:
    year = (when or timezone.now()).year
    return f"{prefix}-{year}-{pk:06d}"


def _plus_money(field: str, amount: Decimal) -> Round:
    """`field + amount` in SQL, rounded to cents. SQLite does decimal arithmetic in binary floating
    point, so unrounded running sums drift: 0.30 - 0.10 - 0.20 is stored as -2.8e-17 and shown as -0.0."""
    return Round(F(field) + amount, 2)


# --- customers -------------------------------------------------------------------------


def get_customer(customer_account: str, *, lock: bool = False) -> Customer:
    customer = rows.customer_by_account(str(customer_account).strip(), lock=lock)
    if customer is None:
        raise ToolError("CUST_NOT_FOUND", f"customer {customer_account!r} does not exist", field="customer_account")
    return customer


@transaction.atomic(savepoint=False)
def create_customer(customer_account: str, name: str, currency: str, credit_limit: Any = 0,
                    segment: str = "", email: str = "") -> Customer:
    account = values.key(customer_account, "customer_account", 20)
    customer = Customer(
        customer_account=account,
        name=values.text(name, "name", 255),
        currency=values.currency(currency),
        credit_limit=values.money(credit_limit, "credit_limit"),
        segment=values.text(segment, "segment", 40, required=False),
        email=values.email(email),
    )
    if Customer.objects.filter(customer_account=account).exists():
        raise ToolError("CUST_ALREADY_EXISTS", f"customer {account!r} already exists", field="customer_account")
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError:  # lost a race with a concurrent create of the same account
        raise ToolError("CUST_ALREADY_EXISTS", f"customer {account!r} already exists",
                        field="customer_account") from None
    publish("customer.created", _out().customer_data(customer))
    return customer


@transaction.atomic(savepoint=False)
def update_customer(customer_account: str, **changes: Any) -> tuple[Customer, list[str]]:
    # Locked: the output and the customer.updated event describe the record as stored, and the
    # currency rule sees the balance as it is, even when another writer changed it meanwhile.
    customer = get_customer(customer_account, lock=True)
    changed = []
    if "name" in changes:
        customer.name = values.text(changes["name"], "name", 255)
        changed.append("name")
    if "currency" in changes:
        new_currency = values.currency(changes["currency"])
        if new_currency != customer.currency and (
            customer.balance != 0 or customer.sales_orders.exclude(status=SalesOrder.Status.CANCELLED).exists()
        ):
            raise ToolError("INVALID_STATE", "the currency of a customer with orders or a balance cannot change",
                            field="currency")
        customer.currency = new_currency
        changed.append("currency")
    if "credit_limit" in changes:
        customer.credit_limit = values.money(changes["credit_limit"], "credit_limit")
        changed.append("credit_limit")
    if "segment" in changes:
        customer.segment = values.text(changes["segment"], "segment", 40, required=False)
        changed.append("segment")
    if "email" in changes:
        customer.email = values.email(changes["email"])
        changed.append("email")
    if "blocked" in changes:
        customer.blocked = bool(changes["blocked"])
        changed.append("blocked")
    if changed:
        customer.save(update_fields=[*changed, "updated"])
        publish("customer.updated", {**_out().customer_data(customer), "changed": changed})
    return customer, changed


# --- items and inventory -----------------------------------------------------------------


def get_item(item_id: str) -> Item:
    item = Item.objects.filter(item_id=str(item_id).strip()).first()
    if item is None:
        raise ToolError("ITEM_NOT_FOUND", f"item {item_id!r} does not exist", field="item_id")
    return item


@transaction.atomic(savepoint=False)
def create_item(item_id: str, name: str, unit_price: Any, on_hand: int = 0, reorder_point: int = 0) -> Item:
    key = values.key(item_id, "item_id", 30)
    if not (0 <= on_hand <= MAX_STOCK and 0 <= reorder_point <= MAX_STOCK):
        raise ToolError("VALIDATION_ERROR", f"on_hand and reorder_point must be between 0 and {MAX_STOCK}")
    item = Item(item_id=key, name=values.text(name, "name", 255), unit_price=values.money(unit_price, "unit_price"),
                on_hand=on_hand, reorder_point=reorder_point)
    if Item.objects.filter(item_id=key).exists():
        raise ToolError("ITEM_ALREADY_EXISTS", f"item {key!r} already exists", field="item_id")
    try:
        with transaction.atomic():
            item.save()
    except IntegrityError:
        raise ToolError("ITEM_ALREADY_EXISTS", f"item {key!r} already exists", field="item_id") from None
    return item


def check_inventory(item_ids: list[str]) -> list[Item]:
    found = Item.objects.in_bulk(item_ids, field_name="item_id")
    missing = [i for i in item_ids if i not in found]
    if missing:
        raise ToolError("ITEM_NOT_FOUND", f"unknown item(s): {', '.join(missing)}", field="item_id")
    return [found[i] for i in item_ids]


@transaction.atomic(savepoint=False)
def adjust_inventory(item_id: str, quantity_change: int, reason: str) -> Item:
    item = get_item(item_id)
    if quantity_change == 0 or abs(quantity_change) > MAX_STOCK:
        raise ToolError("VALIDATION_ERROR", f"quantity_change must be between -{MAX_STOCK} and {MAX_STOCK}, not 0",
                        field="quantity_change")
    values.text(reason, "reason", 255)
    updated = Item.objects.filter(pk=item.pk, on_hand__gte=F("reserved") - quantity_change,
                                  on_hand__lte=MAX_STOCK - quantity_change).update(
        on_hand=F("on_hand") + quantity_change, updated=timezone.now()
    )
    if not updated:
        item.refresh_from_db()
        if item.on_hand + quantity_change > MAX_STOCK:
            raise ToolError("VALIDATION_ERROR", f"item {item.item_id}: on hand would exceed {MAX_STOCK}",
                            field="quantity_change")
        raise ToolError(
            "INSUFFICIENT_STOCK",
            f"item {item.item_id}: on hand {item.on_hand}, reserved {item.reserved}; "
            f"cannot remove {-quantity_change}",
            field="quantity_change",
        )
    item.refresh_from_db()
    if quantity_change < 0:
        _publish_low_stock([item], {item.pk: -quantity_change}, cause="inventory adjustment: " + reason.strip()[:200])
    return item


def _reserve(item_quantities: Counter[int]) -> dict[int, tuple[int, int, int]]:
    """Reserve stock for each item, or refuse the whole call. Returns per item its
    (on_hand, reserved, reorder_point) after the change, for the low-stock check."""
    now = timezone.now()
    after = {}
    for pk, qty in sorted(item_quantities.items()):  # fixed order: no deadlock between two orders
        if qty <= 0:
            continue
        state = rows.reserve(pk, qty, now)
        if state is None:
            item = Item.objects.get(pk=pk)
            raise ToolError(
                "INSUFFICIENT_STOCK",
                f"item {item.item_id}: {item.available} available, {qty} requested",
                details={"item_id": item.item_id, "available": item.available, "requested": qty},
            )
        after[pk] = state
    return after


def _release(item_quantities: Counter[int], *, ship: bool = False) -> None:
    """Give reserved stock back, or with ship=True take it out of on-hand (invoicing)."""
    now = timezone.now()
    for pk, qty in sorted(item_quantities.items()):
        changes = {"reserved": F("reserved") - qty, "updated": now}
        if ship:
            changes["on_hand"] = F("on_hand") - qty
        Item.objects.filter(pk=pk).update(**changes)


# --- sales orders ------------------------------------------------------------------------


@dataclass(frozen=True)
class LineInput:
    item_id: str
    quantity: int
    unit_price: Decimal | None


def _parse_lines(lines: list[dict[str, Any]]) -> list[LineInput]:
    if not lines:
        raise ToolError("VALIDATION_ERROR", "an order needs at least one line", field="lines")
    if len(lines) > MAX_LINES:
        raise ToolError("VALIDATION_ERROR", f"an order has at most {MAX_LINES} lines", field="lines")
    parsed = []
    for n, line in enumerate(lines):
        quantity = line.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ToolError("VALIDATION_ERROR", "quantity must be a whole number >= 1", field=f"lines[{n}].quantity")
        price = line.get("unit_price")
        parsed.append(LineInput(
            item_id=str(line.get("item_id", "")).strip(),
            quantity=quantity,
            unit_price=None if price is None else values.money(price, f"lines[{n}].unit_price"),
        ))
    return parsed


def exchange_rate(currency: str) -> Decimal:
    if currency == settings.BASE_CURRENCY:
        return Decimal(1)
    rate = rows.exchange_rate(currency)
    if rate is None:
        raise ToolError("NO_EXCHANGE_RATE", f"no exchange rate from {settings.BASE_CURRENCY} to {currency}")
    return rate


def _priced_lines(parsed: list[LineInput], currency: str) -> tuple[list[SalesOrderLine], Counter[int]]:
    items = rows.items_by_item_id(line.item_id for line in parsed)
    rate = None
    order_lines, quantities = [], Counter()
    for n, line in enumerate(parsed):
        item = items.get(line.item_id)
        if item is None:
            raise ToolError("ITEM_NOT_FOUND", f"item {line.item_id!r} does not exist", field=f"lines[{n}].item_id")
        price = line.unit_price
        if price is None:
            rate = exchange_rate(currency) if rate is None else rate
            price = values.round_money(item.unit_price * rate)
        quantities[item.pk] += line.quantity
        order_lines.append(SalesOrderLine(line_number=n + 1, item=item, quantity=line.quantity, unit_price=price,
                                          line_amount=values.round_money(price * line.quantity)))
    return order_lines, quantities


def _check_credit(customer: Customer, amount: Decimal) -> None:
    if customer.credit_limit > 0 and customer.balance + amount > customer.credit_limit:
        raise ToolError(
            "CREDIT_LIMIT_EXCEEDED",
            f"customer {customer.customer_account}: balance {customer.balance} + order {amount} exceeds "
            f"credit limit {customer.credit_limit}",
        )


@transaction.atomic(savepoint=False)
def create_sales_order(customer_account: str, lines: list[dict[str, Any]], customer_ref: str = "") -> SalesOrder:
    customer = get_customer(customer_account)
    if customer.blocked:
        raise ToolError("CUST_BLOCKED", f"customer {customer.customer_account} is blocked for new orders")
    order_lines, quantities = _priced_lines(_parse_lines(lines), customer.currency)
    total = sum((line.line_amount for line in order_lines), Decimal("0.00"))
    _check_credit(customer, total)
    after = _reserve(quantities)
    now = timezone.now()
    order = SalesOrder(customer=customer, currency=customer.currency, total_amount=total, created=now, updated=now,
                       customer_ref=values.text(customer_ref, "customer_ref", 60, required=False))
    order.pk = rows.insert_order(order)
    order._state.adding, order._state.db = False, DEFAULT_DB_ALIAS  # saved, as objects.create() leaves it
    order.sales_id = document_id("SO", order.pk, now)
    rows.set_sales_id(order.pk, order.sales_id)
    for line in order_lines:
        line.order = order
    rows.insert_lines(order_lines)
    order._prefetched_lines = order_lines
    publish("salesorder.created", _out().order_data(order))
    items = {line.item_id: line.item for line in order_lines}
    for pk, (on_hand, reserved, reorder_point) in after.items():
        items[pk].on_hand, items[pk].reserved, items[pk].reorder_point = on_hand, reserved, reorder_point
    _publish_low_stock(sorted((items[pk] for pk in after if items[pk].reorder_point > 0), key=lambda i: i.item_id),
                       quantities, cause="sales order", sales_id=order.sales_id)
    return order


def get_sales_order(sales_id: str, *, for_update: bool = False) -> SalesOrder:
    qs = SalesOrder.objects.select_related("customer")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    order = qs.filter(sales_id=str(sales_id).strip()).first()
    if order is None:
        raise ToolError("ORDER_NOT_FOUND", f"sales order {sales_id!r} does not exist", field="sales_id")
    return order


def order_lines(order: SalesOrder) -> list[SalesOrderLine]:
    cached = getattr(order, "_prefetched_lines", None)
    if cached is None:
        cached = list(order.lines.select_related("item"))
        order._prefetched_lines = cached
    return cached


def _line_quantities(order: SalesOrder) -> Counter[int]:
    quantities: Counter[int] = Counter()
    for line in order_lines(order):
        quantities[line.item_id] += line.quantity
    return quantities


@transaction.atomic(savepoint=False)
def update_sales_order(sales_id: str, *, lines: list[dict[str, Any]] | None = None,
                       customer_ref: str | None = None, status: str | None = None) -> tuple[SalesOrder, list[str]]:
    order = get_sales_order(sales_id, for_update=True)
    if order.status not in (SalesOrder.Status.OPEN, SalesOrder.Status.CONFIRMED):
        raise ToolError("INVALID_STATE", f"sales order {order.sales_id} is {order.status} and cannot change")
    changed = []
    if lines is not None:
        if order.status != SalesOrder.Status.OPEN:
            raise ToolError("INVALID_STATE", f"sales order {order.sales_id} is confirmed; its lines cannot change",
                            field="lines")
        new_lines, new_quantities = _priced_lines(_parse_lines(lines), order.currency)
        total = sum((line.line_amount for line in new_lines), Decimal("0.00"))
        _check_credit(order.customer, total)
        delta = Counter(new_quantities)
        delta.subtract(_line_quantities(order))
        reserved_more = Counter({pk: q for pk, q in delta.items() if q > 0})
        _reserve(reserved_more)
        _release(Counter({pk: -q for pk, q in delta.items() if q < 0}))
        order.lines.all().delete()
        for line in new_lines:
            line.order = order
        SalesOrderLine.objects.bulk_create(new_lines)
        order._prefetched_lines = new_lines
        order.total_amount = total
        changed += ["lines", "total_amount"]
    if customer_ref is not None:
        order.customer_ref = values.text(customer_ref, "customer_ref", 60, required=False)
        changed.append("customer_ref")
    if status is not None and status != order.status:
        if (order.status, status) != (SalesOrder.Status.OPEN, SalesOrder.Status.CONFIRMED):
            raise ToolError("INVALID_STATE", f"cannot move sales order {order.sales_id} from {order.status} to "
                            f"{status}; cancel or invoice it instead", field="status")
        order.status = status
        changed.append("status")
    if changed:
        order.save(update_fields=[f for f in changed if f != "lines"] + ["updated"])
        publish("salesorder.updated", {**_out().order_data(order), "changed": changed})
        if lines is not None:
            _check_low_stock(reserved_more, cause="sales order change", sales_id=order.sales_id)
    return order, changed


@transaction.atomic(savepoint=False)
def cancel_sales_order(sales_id: str, reason: str = "") -> SalesOrder:
    order = get_sales_order(sales_id, for_update=True)
    if order.status not in (SalesOrder.Status.OPEN, SalesOrder.Status.CONFIRMED):
        raise ToolError("INVALID_STATE", f"sales order {order.sales_id} is {order.status} and cannot be cancelled")
    _release(_line_quantities(order))
    order.status = SalesOrder.Status.CANCELLED
    order.cancel_reason = values.text(reason, "reason", 255, required=False)
    order.save(update_fields=["status", "cancel_reason", "updated"])
    publish("salesorder.cancelled", {**_out().order_data(order), "cancel_reason": order.cancel_reason})
    return order


# --- invoices and payments -----------------------------------------------------------------


@transaction.atomic(savepoint=False)
def create_invoice(sales_id: str) -> Invoice:
    order = get_sales_order(sales_id, for_update=True)
    if order.status not in (SalesOrder.Status.OPEN, SalesOrder.Status.CONFIRMED):
        raise ToolError("INVALID_STATE", f"sales order {order.sales_id} is {order.status} and cannot be invoiced")
    _release(_line_quantities(order), ship=True)
    invoice = Invoice.objects.create(
        sales_order=order, customer=order.customer, currency=order.currency, amount=order.total_amount,
        due_date=timezone.localdate() + timedelta(days=PAYMENT_TERMS_DAYS),
    )
    invoice.invoice_id = document_id("INV", invoice.pk, invoice.created)
    Invoice.objects.filter(pk=invoice.pk).update(invoice_id=invoice.invoice_id)
    Customer.objects.filter(pk=order.customer_id).update(balance=_plus_money("balance", order.total_amount),
                                                         updated=timezone.now())
    order.status = SalesOrder.Status.INVOICED
    order.save(update_fields=["status", "updated"])
    invoice.sales_order = order
    publish("invoice.created", {**_out().invoice_data(invoice), "lines": _out().order_data(order)["lines"]})
    return invoice


def get_invoice(invoice_id: str) -> Invoice:
    invoice = Invoice.objects.select_related("customer", "sales_order").filter(invoice_id=invoice_id).first()
    if invoice is None:
        raise ToolError("INVOICE_NOT_FOUND", f"invoice {invoice_id!r} does not exist", field="invoice_id")
    return invoice


@transaction.atomic(savepoint=False)
def post_payment(customer_account: str, amount: Any, invoice_id: str | None = None, currency: str | None = None,
                 reference: str = "") -> Payment:
    customer = get_customer(customer_account)
    value = values.money(amount, "amount", allow_zero=False)
    if currency is not None and values.currency(currency) != customer.currency:
        raise ToolError("CURRENCY_MISMATCH", f"customer {customer.customer_account} pays in {customer.currency}",
                        field="currency")
    invoice = None
    if invoice_id:
        invoice = get_invoice(invoice_id)
        if invoice.customer_id != customer.pk:
            raise ToolError("INVOICE_CUSTOMER_MISMATCH",
                            f"invoice {invoice_id} belongs to another customer", field="invoice_id")
        if invoice.status == Invoice.Status.PAID:
            raise ToolError("INVALID_STATE", f"invoice {invoice_id} is already paid", field="invoice_id")
        # Conditional update: two concurrent payments can never together exceed the invoice.
        # SQLite does this arithmetic in binary floating point (0.30 - 0.20 < 0.10), so the bound
        # has half a cent of slack; amounts are whole cents, so the slack admits no overpayment.
        if not Invoice.objects.filter(pk=invoice.pk, paid_amount__lt=F("amount") - value + HALF_CENT).update(
            paid_amount=_plus_money("paid_amount", value)
        ):
            invoice.refresh_from_db()
            raise ToolError("OVERPAYMENT", f"invoice {invoice_id} has {invoice.open_amount} open; {value} is too much",
                            field="amount")
        invoice.refresh_from_db()
        if invoice.paid_amount == invoice.amount:
            invoice.status = Invoice.Status.PAID
            invoice.save(update_fields=["status"])
    payment = Payment.objects.create(customer=customer, invoice=invoice, amount=value, currency=customer.currency,
                                     reference=values.text(reference, "reference", 100, required=False))
    payment.payment_id = document_id("PAY", payment.pk, payment.created)
    Payment.objects.filter(pk=payment.pk).update(payment_id=payment.payment_id)
    Customer.objects.filter(pk=customer.pk).update(balance=_plus_money("balance", -value), updated=timezone.now())
    customer.refresh_from_db(fields=["balance"])
    payment.customer = customer
    publish("payment.posted", _out().payment_data(payment))
    return payment


# --- events --------------------------------------------------------------------------------
# Published inside the operation's transaction: stored with it (a rollback publishes nothing),
# matched and delivered after commit, and never raising into the operation.


def _out():
    from core.erp import serializers  # it imports this module, so it cannot be imported at the top

    return serializers


def _check_low_stock(taken: Counter[int], *, cause: str, sales_id: str | None = None) -> None:
    """After stock was reserved: one query for the items with a reorder point among those touched."""
    pks = [pk for pk, qty in taken.items() if qty > 0]
    if pks:
        _publish_low_stock(list(Item.objects.filter(pk__in=pks, reorder_point__gt=0)), taken, cause=cause,
                           sales_id=sales_id)


def _publish_low_stock(items: list[Item], taken: Counter[int] | dict[int, int], *, cause: str,
                       sales_id: str | None = None) -> None:
    """inventory.low_stock for each item whose available stock fell below its reorder point with this
    change (it was at or above before), so a run of orders on a low item sends one event, not many."""
    for item in items:
        before = item.available + taken.get(item.pk, 0)
        if item.available < item.reorder_point <= before:
            publish("inventory.low_stock", {**_out().item_data(item), "cause": cause, "sales_id": sales_id})
