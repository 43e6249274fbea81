"""The ERP tools: thin adapters from JSON arguments to core.erp services."""

from __future__ import annotations

from typing import Any

from core.accounts.roles import MCP_READ, MCP_WRITE
from core.erp import serializers as out
from core.erp import services
from core.tools.pipeline import CallContext
from core.tools.registry import obj, register

ACCOUNT = {"type": "string", "minLength": 1, "maxLength": 20, "description": "customer account, e.g. CUST-001"}
ITEM_ID = {"type": "string", "minLength": 1, "maxLength": 30, "description": "item number, e.g. ITEM-001"}
SALES_ID = {"type": "string", "minLength": 1, "maxLength": 30, "description": "sales order id, e.g. SO-2026-000123"}
MONEY = {"type": "number", "minimum": 0, "description": "amount with at most two decimals"}
CURRENCY = {"type": "string", "minLength": 3, "maxLength": 3, "description": "ISO 4217 code, e.g. EUR"}
STOCK = {"type": "integer", "minimum": 0, "maximum": services.MAX_STOCK}
LINES = {
    "type": "array",
    "minItems": 1,
    "maxItems": services.MAX_LINES,
    "items": obj(
        {
            "item_id": ITEM_ID,
            "quantity": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
            "unit_price": {**MONEY, "description": "overrides the item's price (converted to the order currency)"},
        },
        ["item_id", "quantity"],
    ),
}
CUSTOMER_FIELDS = {
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "currency": CURRENCY,
    "credit_limit": {**MONEY, "description": "0 means no limit"},
    "segment": {"type": "string", "maxLength": 40},
    "email": {"type": "string", "maxLength": 254},
}


@register("ax_get_customer", role=MCP_READ, description="Read one customer by account.",
          schema=obj({"customer_account": ACCOUNT}, ["customer_account"]))
def get_customer(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.customer_data(services.get_customer(args["customer_account"]))


@register("ax_create_customer", role=MCP_WRITE,
          description="Create a customer. Refuses an existing account (CUST_ALREADY_EXISTS) and unknown "
                      "currencies (INVALID_CURRENCY).",
          schema=obj({"customer_account": ACCOUNT, **CUSTOMER_FIELDS}, ["customer_account", "name", "currency"]))
def create_customer(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.customer_data(services.create_customer(**args))


@register("ax_update_customer", role=MCP_WRITE,
          description="Change fields of a customer; only the fields given change.",
          schema={**obj({"customer_account": ACCOUNT, **CUSTOMER_FIELDS, "blocked": {"type": "boolean"}},
                        ["customer_account"]), "minProperties": 2})
def update_customer(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    changes = dict(args)
    customer, changed = services.update_customer(changes.pop("customer_account"), **changes)
    return {**out.customer_data(customer), "changed": changed}


@register("ax_create_item", role=MCP_WRITE, description="Create an item with its price, stock and reorder point.",
          schema=obj({"item_id": ITEM_ID, "name": {"type": "string", "minLength": 1, "maxLength": 255},
                      "unit_price": MONEY, "on_hand": STOCK, "reorder_point": STOCK},
                     ["item_id", "name", "unit_price"]))
def create_item(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.item_data(services.create_item(**args))


@register("ax_check_inventory", role=MCP_READ,
          description="Stock of one item (item_id) or several (item_ids): on hand, reserved, available.",
          schema={**obj({"item_id": ITEM_ID, "item_ids": {"type": "array", "items": ITEM_ID, "minItems": 1,
                                                          "maxItems": 500, "uniqueItems": True}}),
                  "oneOf": [{"required": ["item_id"]}, {"required": ["item_ids"]}]})
def check_inventory(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    if "item_id" in args:
        return out.item_data(services.check_inventory([args["item_id"]])[0])
    return {"items": [out.item_data(item) for item in services.check_inventory(args["item_ids"])]}


@register("ax_adjust_inventory", role=MCP_WRITE,
          description="Add (positive) or remove (negative) stock on hand; never below what is reserved.",
          schema=obj({"item_id": ITEM_ID, "quantity_change": {"type": "integer", "minimum": -services.MAX_STOCK,
                                                              "maximum": services.MAX_STOCK, "not": {"const": 0}},
                      "reason": {"type": "string", "minLength": 1, "maxLength": 255}},
                     ["item_id", "quantity_change", "reason"]))
def adjust_inventory(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.item_data(services.adjust_inventory(**args))


@register("ax_create_salesorder", role=MCP_WRITE,
          description="Create a sales order in the customer's currency and reserve its stock. Errors: "
                      "CUST_NOT_FOUND, ITEM_NOT_FOUND, INSUFFICIENT_STOCK, CREDIT_LIMIT_EXCEEDED, CUST_BLOCKED.",
          schema=obj({"customer_account": ACCOUNT, "lines": LINES,
                      "customer_ref": {"type": "string", "maxLength": 60}}, ["customer_account", "lines"]))
def create_salesorder(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.order_data(services.create_sales_order(**args))


@register("ax_get_salesorder", role=MCP_READ, description="Read one sales order with its lines.",
          schema=obj({"sales_id": SALES_ID}, ["sales_id"]))
def get_salesorder(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.order_data(services.get_sales_order(args["sales_id"]))


@register("ax_update_salesorder", role=MCP_WRITE,
          description="Replace the lines of an open order, change its customer reference, or confirm it "
                      "(status 'confirmed'). Invoiced and cancelled orders cannot change (INVALID_STATE).",
          schema={**obj({"sales_id": SALES_ID, "lines": LINES, "customer_ref": {"type": "string", "maxLength": 60},
                         "status": {"enum": ["confirmed"]}}, ["sales_id"]), "minProperties": 2})
def update_salesorder(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    changes = dict(args)
    order, changed = services.update_sales_order(changes.pop("sales_id"), **changes)
    return {**out.order_data(order), "changed": changed}


@register("ax_cancel_salesorder", role=MCP_WRITE,
          description="Cancel an open or confirmed order and release its reserved stock.",
          schema=obj({"sales_id": SALES_ID, "reason": {"type": "string", "maxLength": 255}}, ["sales_id"]))
def cancel_salesorder(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.order_data(services.cancel_sales_order(**args))


@register("ax_create_invoice", role=MCP_WRITE,
          description="Invoice a sales order: ships its reserved stock and books the amount on the customer.",
          schema=obj({"sales_id": SALES_ID}, ["sales_id"]))
def create_invoice(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.invoice_data(services.create_invoice(args["sales_id"]))


@register("ax_post_payment", role=MCP_WRITE,
          description="Post a customer payment, optionally against one of the customer's open invoices.",
          schema=obj({"customer_account": ACCOUNT, "amount": {**MONEY, "exclusiveMinimum": 0},
                      "invoice_id": {"type": "string", "minLength": 1, "maxLength": 30}, "currency": CURRENCY,
                      "reference": {"type": "string", "maxLength": 100}}, ["customer_account", "amount"]))
def post_payment(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return out.payment_data(services.post_payment(**args))
