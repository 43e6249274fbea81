"""The ERP tools: thin adapters from JSON arguments to core.erp services."""

from __future__ import annotations

from datetime import date
from typing import Any

from core.accounts.roles import MCP_READ, MCP_WRITE
from core.erp import reads, services
from core.erp import serializers as out
from core.erp.models import Invoice, SalesOrder
from core.errors import ToolError
from core.tools.pipeline import CallContext
from core.tools.registry import obj, register
from core.tools.schemas import (
    AMOUNT,
    BOOLEAN,
    COUNT,
    CURRENCY_CODE,
    DAY,
    INTEGER,
    STRING,
    TIMESTAMP,
    currency,
    date_input,
    key,
    money,
    nullable,
    record,
    ref,
    text,
)

# --- inputs: what the services check, said in JSON Schema (core/erp/values.py) ---------------

ACCOUNT = ref(20, "customer account, e.g. CUST-001", "CUST-001")
ITEM_ID = ref(30, "item number, e.g. ITEM-001", "ITEM-001")
SALES_ID = ref(30, "sales order id, e.g. SO-2026-000123", "SO-2026-000123")
NEW_ACCOUNT = key(20, "the new customer's account, e.g. CUST-001", "CUST-100")
NEW_ITEM_ID = key(30, "the new item's number, e.g. ITEM-001", "ITEM-100")
CURRENCY = currency("ISO 4217 code, e.g. EUR (any case; returned in capitals)")
STOCK = {"type": "integer", "minimum": 0, "maximum": services.MAX_STOCK}
LINES = {
    "type": "array",
    "minItems": 1,
    "maxItems": services.MAX_LINES,
    "items": obj(
        {
            "item_id": ITEM_ID,
            "quantity": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
            "unit_price": money("overrides the item's price (in the order currency)"),
        },
        ["item_id", "quantity"],
    ),
}
CUSTOMER_FIELDS = {
    "name": text(255, required=True),
    "currency": CURRENCY,
    "credit_limit": money("0 means no limit"),
    "segment": text(40),
    "email": text(254),
}

# --- outputs: core/erp/serializers.py ----------------------------------------------------------

CUSTOMER = record({
    "customer_account": STRING, "name": STRING, "currency": CURRENCY_CODE, "credit_limit": AMOUNT,
    "balance": {**AMOUNT, "description": "open amount: invoices minus payments (negative when paid ahead)"},
    "segment": STRING, "email": STRING, "blocked": BOOLEAN,
})
ITEM = record({
    "item_id": STRING, "name": STRING, "unit_price": {**AMOUNT, "description": "in the base currency"},
    "on_hand": COUNT, "reserved": COUNT, "available": INTEGER, "reorder_point": COUNT,
    "below_reorder_point": BOOLEAN,
})
ORDER = record({
    "sales_id": STRING, "customer_account": STRING, "status": {"enum": list(SalesOrder.Status.values)},
    "currency": CURRENCY_CODE, "total_amount": AMOUNT, "customer_ref": STRING, "created": nullable(TIMESTAMP),
    "lines": {"type": "array", "items": record({
        "line_number": COUNT, "item_id": STRING, "quantity": COUNT, "unit_price": AMOUNT, "line_amount": AMOUNT})},
})
INVOICE = record({
    "invoice_id": STRING, "sales_id": STRING, "customer_account": STRING, "currency": CURRENCY_CODE,
    "amount": AMOUNT, "paid_amount": AMOUNT, "open_amount": AMOUNT, "status": {"enum": list(Invoice.Status.values)},
    "due_date": DAY,
})
PAYMENT = record({
    "payment_id": STRING, "customer_account": STRING, "amount": AMOUNT, "currency": CURRENCY_CODE,
    "invoice_id": nullable(STRING), "reference": STRING, "customer_balance": AMOUNT,
})


def changed(schema: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """An update's output: the record plus the fields that changed."""
    return record({**schema["properties"], "changed": {"type": "array", "items": {"enum": fields}}})


@register("ax_get_customer", role=MCP_READ, description="Read one customer by account.",
          schema=obj({"customer_account": ACCOUNT}, ["customer_account"]), output=CUSTOMER)
def get_customer(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.customer_data(services.get_customer(args["customer_account"]))


@register("ax_create_customer", role=MCP_WRITE,
          description="Create a customer. Refuses an existing account (CUST_ALREADY_EXISTS) and unknown "
                      "currencies (INVALID_CURRENCY).",
          schema=obj({"customer_account": NEW_ACCOUNT, **CUSTOMER_FIELDS}, ["customer_account", "name", "currency"]),
          output=CUSTOMER)
def create_customer(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.customer_data(services.create_customer(**args))


@register("ax_update_customer", role=MCP_WRITE,
          description="Change fields of a customer; only the fields given change.",
          schema={**obj({"customer_account": ACCOUNT, **CUSTOMER_FIELDS, "blocked": {"type": "boolean"}},
                        ["customer_account"]), "minProperties": 2},
          output=changed(CUSTOMER, ["name", "currency", "credit_limit", "segment", "email", "blocked"]))
def update_customer(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    changes = dict(args)
    customer, changed = services.update_customer(changes.pop("customer_account"), **changes)
    return {**out.customer_data(customer), "changed": changed}


@register("ax_create_item", role=MCP_WRITE, description="Create an item with its price, stock and reorder point.",
          schema=obj({"item_id": NEW_ITEM_ID, "name": text(255, required=True),
                      "unit_price": money("price in the base currency, at most two decimals"), "on_hand": STOCK,
                      "reorder_point": STOCK},
                     ["item_id", "name", "unit_price"]), output=ITEM)
def create_item(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.item_data(services.create_item(**args))


@register("ax_check_inventory", role=MCP_READ,
          description="Stock of one item (item_id) or several (item_ids): on hand, reserved, available.",
          schema={**obj({"item_id": ITEM_ID, "item_ids": {"type": "array", "items": ITEM_ID, "minItems": 1,
                                                          "maxItems": 500, "uniqueItems": True}}),
                  "oneOf": [{"required": ["item_id"]}, {"required": ["item_ids"]}]},
          output={"type": "object", "description": "one item (item_id) or {items: [...]} (item_ids)",
                  "oneOf": [ITEM, record({"items": {"type": "array", "items": ITEM}})]})
def check_inventory(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    if "item_id" in args:
        return out.item_data(services.check_inventory([args["item_id"]])[0])
    return {"items": [out.item_data(item) for item in services.check_inventory(args["item_ids"])]}


@register("ax_adjust_inventory", role=MCP_WRITE,
          description="Add (positive) or remove (negative) stock on hand; never below what is reserved.",
          schema=obj({"item_id": ITEM_ID, "quantity_change": {"type": "integer", "minimum": -services.MAX_STOCK,
                                                              "maximum": services.MAX_STOCK, "not": {"const": 0}},
                      "reason": text(255, required=True)},
                     ["item_id", "quantity_change", "reason"]), output=ITEM)
def adjust_inventory(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.item_data(services.adjust_inventory(**args))


@register("ax_create_salesorder", role=MCP_WRITE,
          description="Create a sales order in the customer's currency and reserve its stock. Errors: "
                      "CUST_NOT_FOUND, ITEM_NOT_FOUND, INSUFFICIENT_STOCK, CREDIT_LIMIT_EXCEEDED, CUST_BLOCKED.",
          schema=obj({"customer_account": ACCOUNT, "lines": LINES, "customer_ref": text(60)},
                     ["customer_account", "lines"]), output=ORDER)
def create_salesorder(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.order_data(services.create_sales_order(**args))


@register("ax_get_salesorder", role=MCP_READ, description="Read one sales order with its lines.",
          schema=obj({"sales_id": SALES_ID}, ["sales_id"]), output=ORDER)
def get_salesorder(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.order_data(services.get_sales_order(args["sales_id"]))


@register("ax_update_salesorder", role=MCP_WRITE,
          description="Replace the lines of an open order, change its customer reference, or confirm it "
                      "(status 'confirmed'). Invoiced and cancelled orders cannot change (INVALID_STATE).",
          schema={**obj({"sales_id": SALES_ID, "lines": LINES, "customer_ref": text(60),
                         "status": {"enum": ["confirmed"]}}, ["sales_id"]), "minProperties": 2},
          output=changed(ORDER, ["lines", "total_amount", "customer_ref", "status"]))
def update_salesorder(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    changes = dict(args)
    order, changed = services.update_sales_order(changes.pop("sales_id"), **changes)
    return {**out.order_data(order), "changed": changed}


@register("ax_cancel_salesorder", role=MCP_WRITE,
          description="Cancel an open or confirmed order and release its reserved stock.",
          schema=obj({"sales_id": SALES_ID, "reason": text(255)}, ["sales_id"]), output=ORDER)
def cancel_salesorder(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.order_data(services.cancel_sales_order(**args))


@register("ax_create_invoice", role=MCP_WRITE,
          description="Invoice a sales order: ships its reserved stock and books the amount on the customer.",
          schema=obj({"sales_id": SALES_ID}, ["sales_id"]), output=INVOICE)
def create_invoice(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.invoice_data(services.create_invoice(args["sales_id"]))


@register("ax_post_payment", role=MCP_WRITE,
          description="Post a customer payment, optionally against one of the customer's open invoices.",
          schema=obj({"customer_account": ACCOUNT,
                      "amount": money("amount with at most two decimals, more than 0", positive=True),
                      "invoice_id": ref(30, "one of the customer's open invoices, e.g. INV-2026-000042"),
                      "currency": {**CURRENCY, "description": "when given, must be the customer's currency "
                                                              "(else CURRENCY_MISMATCH)"},
                      "reference": text(100)}, ["customer_account", "amount"]), output=PAYMENT)
def post_payment(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.payment_data(services.post_payment(**args))


# --- reading: searches and lists (core/erp/reads.py) ---------------------------------------------

LIMIT = {"type": "integer", "minimum": 1, "maximum": reads.MAX_LIMIT, "default": reads.DEFAULT_LIMIT,
         "description": f"rows per page, 1 to {reads.MAX_LIMIT} (default {reads.DEFAULT_LIMIT})"}
# A cursor is base64url without padding; only one this list gave out for the same filters is read.
CURSOR = {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": "^[A-Za-z0-9_-]+$",
          "description": "next_cursor of the previous page, with the same filters; leave out for the first page"}
PAGING = {"limit": LIMIT, "cursor": CURSOR}
FLAG = {"type": "boolean"}
DAY_FROM = date_input("first day, YYYY-MM-DD in the hub's time zone (included)", years="19[0-9]{2}|2[0-9]{3}")
DAY_TO = date_input("last day, YYYY-MM-DD in the hub's time zone (included)", years="19[0-9]{2}|2[0-9]{3}")
ORDER_STATUS = {"enum": list(SalesOrder.Status.values)}
# One status or a list of them. Said with a type list rather than anyOf: `pattern` applies to a
# string only, `items` and `minItems` to an array only.
ORDER_STATUSES = {"type": ["string", "array"], "pattern": f"^({'|'.join(SalesOrder.Status.values)})$",
                  "items": ORDER_STATUS, "minItems": 1, "examples": ["open", ["open", "confirmed"]],
                  "description": f"one of {', '.join(SalesOrder.Status.values)}, or a list of them"}
INVOICE_ID = ref(30, "invoice id, e.g. INV-2026-000042", "INV-2026-000042")

ORDER_ROW = record({
    "sales_id": STRING, "customer_account": STRING, "customer_name": STRING, "status": ORDER_STATUS,
    "currency": CURRENCY_CODE, "total_amount": AMOUNT, "customer_ref": STRING, "created": TIMESTAMP,
    "line_count": COUNT,
})
INVOICE_ROW = record({**INVOICE["properties"], "overdue": BOOLEAN, "created": TIMESTAMP})
PAYMENT_ROW = record({
    "payment_id": STRING, "customer_account": STRING, "amount": AMOUNT, "currency": CURRENCY_CODE,
    "invoice_id": nullable(STRING), "reference": STRING, "created": TIMESTAMP,
})
INVOICE_DETAIL = record({
    **INVOICE_ROW["properties"], "customer_name": STRING,
    "lines": ORDER["properties"]["lines"], "payments": {"type": "array", "items": PAYMENT_ROW},
})
BALANCE = record({
    "customer_account": STRING, "name": STRING, "currency": CURRENCY_CODE,
    "balance": {**AMOUNT, "description": "invoiced minus paid (negative when paid ahead)"},
    "credit_limit": {**AMOUNT, "description": "0 means no limit"},
    "credit_available": {**nullable(AMOUNT), "description": "credit limit minus balance; null without a limit"},
    "blocked": BOOLEAN,
    "open_invoices": record({"count": COUNT, "amount": AMOUNT, "overdue_count": COUNT, "overdue_amount": AMOUNT}),
    "open_orders": {**record({"count": COUNT, "amount": AMOUNT}),
                    "description": "open and confirmed orders, not yet invoiced"},
})


def page_of(row: dict[str, Any]) -> dict[str, Any]:
    return record({"items": {"type": "array", "items": row}, "next_cursor": nullable(STRING)})


def _read(service: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Run a read service. A refused cursor is INVALID_CURSOR and a range that ends before it
    starts INVALID_DATE_RANGE: rules beyond the input schema, which an agent answers by starting
    from the first page or by swapping the dates, not by fixing an argument's shape."""
    start, end = args.get("date_from"), args.get("date_to")
    try:
        if start and end and date.fromisoformat(end) < date.fromisoformat(start):
            raise ToolError("INVALID_DATE_RANGE", "date_to is before date_from", field="date_to")
    except ValueError:
        pass  # the service names the day that is no date
    try:
        return service(**args)
    except ToolError as error:
        if error.code == "VALIDATION_ERROR" and error.field == "cursor":
            raise ToolError("INVALID_CURSOR", error.message, field="cursor") from None
        raise


@register("ax_find_customers", role=MCP_READ,
          description="Search customers: `query` matches account or name, case and accents ignored (muller finds "
                      "Müller GmbH), best matches first; without a query, every customer by account. Paged: pass "
                      "next_cursor back as cursor.",
          schema=obj({"query": text(255, description="part of the account or name"), "currency": CURRENCY,
                      "blocked": FLAG, "segment": text(40), **PAGING}),
          output=page_of(CUSTOMER))
def find_customers(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return _read(reads.find_customers, args)


@register("ax_list_items", role=MCP_READ,
          description="Items with their stock (on_hand, reserved, available, reorder_point); `query` matches item "
                      "id or name; below_reorder_point true lists what needs reordering. Paged.",
          schema=obj({"query": text(255, description="part of the item id or name"), "below_reorder_point": FLAG,
                      **PAGING}),
          output=page_of(ITEM))
def list_items(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return _read(reads.list_items, args)


@register("ax_list_salesorders", role=MCP_READ,
          description="Sales orders, newest first, with their line count; filter by customer, status (one or a "
                      "list), days created, customer reference and least total. Paged.",
          schema=obj({"customer_account": ACCOUNT,
                      "status": ORDER_STATUSES,
                      "date_from": DAY_FROM, "date_to": DAY_TO, "customer_ref": text(60),
                      "min_amount": money("least total_amount, in the order's currency"), **PAGING}),
          output=page_of(ORDER_ROW))
def list_salesorders(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return _read(reads.list_salesorders, args)


@register("ax_get_invoice", role=MCP_READ,
          description="Read one invoice: open amount, due date, whether it is overdue, the order's lines and the "
                      "payments on it.",
          schema=obj({"invoice_id": INVOICE_ID}, ["invoice_id"]), output=INVOICE_DETAIL)
def get_invoice(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return reads.get_invoice(args["invoice_id"])


@register("ax_list_invoices", role=MCP_READ,
          description="Invoices, newest first, with open amount and due date; overdue true lists the open ones "
                      "due before today. Paged.",
          schema=obj({"customer_account": ACCOUNT, "status": {"enum": list(Invoice.Status.values)},
                      "overdue": FLAG, **PAGING}),
          output=page_of(INVOICE_ROW))
def list_invoices(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return _read(reads.list_invoices, args)


@register("ax_get_customer_balance", role=MCP_READ,
          description="What a customer owes and may still order: balance, open and overdue invoices, open orders, "
                      "credit limit and what is left of it.",
          schema=obj({"customer_account": ACCOUNT}, ["customer_account"]), output=BALANCE)
def get_customer_balance(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return reads.customer_balance(args["customer_account"])


@register("ax_list_payments", role=MCP_READ,
          description="Payments, newest first; filter by customer, invoice and days. Paged.",
          schema=obj({"customer_account": ACCOUNT, "invoice_id": INVOICE_ID, "date_from": DAY_FROM,
                      "date_to": DAY_TO, **PAGING}),
          output=page_of(PAYMENT_ROW))
def list_payments(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return _read(reads.list_payments, args)
