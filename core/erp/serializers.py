"""Plain JSON-ready dicts of ERP records, in the stories' field names."""

from __future__ import annotations

from typing import Any

from core.erp.models import Customer, Invoice, Item, Payment, SalesOrder
from core.erp.services import order_lines
from core.erp.values import as_float


def customer_data(c: Customer) -> dict[str, Any]:
    return {
        "customer_account": c.customer_account,
        "name": c.name,
        "currency": c.currency,
        "credit_limit": as_float(c.credit_limit),
        "balance": as_float(c.balance),
        "segment": c.segment,
        "email": c.email,
        "blocked": c.blocked,
    }


def item_data(i: Item) -> dict[str, Any]:
    return {
        "item_id": i.item_id,
        "name": i.name,
        "unit_price": as_float(i.unit_price),
        "on_hand": i.on_hand,
        "reserved": i.reserved,
        "available": i.available,
        "reorder_point": i.reorder_point,
        "below_reorder_point": i.below_reorder_point,
    }


def order_data(o: SalesOrder) -> dict[str, Any]:
    return {
        "sales_id": o.sales_id,
        "customer_account": o.customer.customer_account,
        "status": o.status,
        "currency": o.currency,
        "total_amount": as_float(o.total_amount),
        "customer_ref": o.customer_ref,
        "created": o.created.isoformat() if o.created else None,
        "lines": [
            {
                "line_number": line.line_number,
                "item_id": line.item.item_id,
                "quantity": line.quantity,
                "unit_price": as_float(line.unit_price),
                "line_amount": as_float(line.line_amount),
            }
            for line in order_lines(o)
        ],
    }


def invoice_data(inv: Invoice) -> dict[str, Any]:
    return {
        "invoice_id": inv.invoice_id,
        "sales_id": inv.sales_order.sales_id,
        "customer_account": inv.customer.customer_account,
        "currency": inv.currency,
        "amount": as_float(inv.amount),
        "paid_amount": as_float(inv.paid_amount),
        "open_amount": as_float(inv.open_amount),
        "status": inv.status,
        "due_date": inv.due_date.isoformat(),
    }


def payment_data(p: Payment) -> dict[str, Any]:
    return {
        "payment_id": p.payment_id,
        "customer_account": p.customer.customer_account,
        "amount": as_float(p.amount),
        "currency": p.currency,
        "invoice_id": p.invoice.invoice_id if p.invoice else None,
        "reference": p.reference,
        "customer_balance": as_float(p.customer.balance),
    }
