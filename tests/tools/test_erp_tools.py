"""The ERP tools through the one pipeline: outputs, database state and every business refusal."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.erp import services
from core.erp.models import Customer, Invoice, Item, Payment, SalesOrder, SalesOrderLine
from core.errors import ToolError
from core.tools.pipeline import call_tool

SALES_ID = re.compile(r"^SO-(\d{4})-(\d{6})$")
INVOICE_ID = re.compile(r"^INV-(\d{4})-(\d{6})$")
PAYMENT_ID = re.compile(r"^PAY-(\d{4})-(\d{6})$")


def refused(code: str, name: str, arguments, user) -> ToolError:
    """Call a tool that must fail with `code` and return the error."""
    with pytest.raises(ToolError) as exc:
        call_tool(name, arguments, user)
    assert exc.value.code == code, exc.value.message
    return exc.value


def order(user, lines, account: str = "CUST-001", **extra) -> dict:
    return call_tool("ax_create_salesorder", {"customer_account": account, "lines": lines, **extra}, user)


def stock(item_id: str) -> tuple[int, int]:
    item = Item.objects.get(item_id=item_id)
    return item.on_hand, item.reserved


def balance(account: str) -> Decimal:
    return Customer.objects.get(customer_account=account).balance


@pytest.fixture
def invoice(writer, erp) -> dict:
    """An open invoice of CUST-001 over 2 chairs: 200.00 EUR."""
    sales_id = order(writer, [{"item_id": "ITEM-001", "quantity": 2}])["sales_id"]
    return call_tool("ax_create_invoice", {"sales_id": sales_id}, writer)


# --- customers ---------------------------------------------------------------------------------


def test_get_customer_returns_its_fields(reader, erp):
    out = call_tool("ax_get_customer", {"customer_account": "CUST-001"}, reader)
    assert out == {"customer_account": "CUST-001", "name": "Müller GmbH", "currency": "EUR", "credit_limit": 10000.0,
                   "balance": 0.0, "segment": "", "email": "", "blocked": False}


def test_get_customer_unknown_account_is_cust_not_found(reader, erp):
    error = refused("CUST_NOT_FOUND", "ax_get_customer", {"customer_account": "CUST-999"}, reader)
    assert error.field == "customer_account"


def test_create_customer_stores_every_field(writer, db):
    out = call_tool("ax_create_customer", {"customer_account": "CUST-100", "name": "Fabrikam", "currency": "usd",
                                           "credit_limit": 2500.5, "segment": "retail", "email": "ap@fabrikam.test"},
                    writer)
    assert out == {"customer_account": "CUST-100", "name": "Fabrikam", "currency": "USD", "credit_limit": 2500.5,
                   "balance": 0.0, "segment": "retail", "email": "ap@fabrikam.test", "blocked": False}
    customer = Customer.objects.get(customer_account="CUST-100")
    assert (customer.currency, customer.credit_limit, customer.balance, customer.blocked) == (
        "USD", Decimal("2500.50"), Decimal("0.00"), False)


@pytest.mark.parametrize("name", ["Müller GmbH", "北京贸易有限公司", "Ærøskøbing Ålborg ÆØÅ", "Łódź Sp. z o.o. 🚚"])
def test_unicode_customer_names_round_trip(writer, reader, db, name):
    created = call_tool("ax_create_customer", {"customer_account": "CUST-U1", "name": name, "currency": "EUR"},
                        writer)
    assert created["name"] == name
    assert Customer.objects.get(customer_account="CUST-U1").name == name
    assert call_tool("ax_get_customer", {"customer_account": "CUST-U1"}, reader)["name"] == name


def test_create_customer_existing_account_is_cust_already_exists(writer, erp):
    refused("CUST_ALREADY_EXISTS", "ax_create_customer",
            {"customer_account": "CUST-001", "name": "Someone else", "currency": "EUR"}, writer)
    assert Customer.objects.get(customer_account="CUST-001").name == "Müller GmbH"


@pytest.mark.parametrize("currency", ["ABC", "EU1", "   "])
def test_create_customer_unknown_currency_is_invalid_currency(writer, db, currency):
    refused("INVALID_CURRENCY", "ax_create_customer",
            {"customer_account": "CUST-100", "name": "Fabrikam", "currency": currency}, writer)
    assert not Customer.objects.filter(customer_account="CUST-100").exists()


def test_create_customer_credit_limit_with_three_decimals_is_invalid_number(writer, db):
    error = refused("INVALID_NUMBER", "ax_create_customer", {"customer_account": "CUST-100", "name": "Fabrikam",
                                                              "currency": "EUR", "credit_limit": 100.123}, writer)
    assert error.field == "credit_limit"
    assert not Customer.objects.exists()


@pytest.mark.parametrize("arguments", [
    {"customer_account": "CUST 100", "name": "Fabrikam", "currency": "EUR"},  # space in the account
    {"customer_account": "-CUST", "name": "Fabrikam", "currency": "EUR"},  # must start with a letter or digit
    {"customer_account": "CUST-100", "currency": "EUR"},  # name missing
    {"customer_account": "CUST-100", "name": "Fabrikam", "currency": "EUR", "credit_limit": -1},
    {"customer_account": "CUST-100", "name": "Fabrikam", "currency": "EURO"},
])
def test_create_customer_bad_arguments_are_validation_errors(writer, db, arguments):
    refused("VALIDATION_ERROR", "ax_create_customer", arguments, writer)
    assert not Customer.objects.exists()


def test_update_customer_changes_only_the_given_fields(writer, erp):
    out = call_tool("ax_update_customer", {"customer_account": "CUST-001", "name": "Müller & Söhne GmbH",
                                           "credit_limit": 500, "blocked": True}, writer)
    assert out["changed"] == ["name", "credit_limit", "blocked"]
    assert (out["name"], out["credit_limit"], out["blocked"], out["currency"]) == (
        "Müller & Söhne GmbH", 500.0, True, "EUR")
    customer = Customer.objects.get(customer_account="CUST-001")
    assert (customer.name, customer.credit_limit, customer.blocked, customer.currency) == (
        "Müller & Söhne GmbH", Decimal("500.00"), True, "EUR")


def test_update_customer_unknown_account_is_cust_not_found(writer, erp):
    refused("CUST_NOT_FOUND", "ax_update_customer", {"customer_account": "CUST-999", "blocked": True}, writer)


def test_update_customer_unknown_currency_is_invalid_currency(writer, erp):
    refused("INVALID_CURRENCY", "ax_update_customer", {"customer_account": "CUST-001", "currency": "ABC"}, writer)
    assert Customer.objects.get(customer_account="CUST-001").currency == "EUR"


def test_update_customer_currency_of_a_customer_with_orders_is_invalid_state(writer, erp):
    order(writer, [{"item_id": "ITEM-001", "quantity": 1}])
    refused("INVALID_STATE", "ax_update_customer", {"customer_account": "CUST-001", "currency": "USD"}, writer)
    assert Customer.objects.get(customer_account="CUST-001").currency == "EUR"


def test_update_customer_without_a_change_is_validation_error(writer, erp):
    refused("VALIDATION_ERROR", "ax_update_customer", {"customer_account": "CUST-001"}, writer)


# --- items and inventory -----------------------------------------------------------------------


def test_create_item_stores_it(writer, db):
    out = call_tool("ax_create_item", {"item_id": "ITEM-100", "name": "Bürostuhl Ergonomisch", "unit_price": 249.9,
                                       "on_hand": 3, "reorder_point": 5}, writer)
    assert out == {"item_id": "ITEM-100", "name": "Bürostuhl Ergonomisch", "unit_price": 249.9, "on_hand": 3,
                   "reserved": 0, "available": 3, "reorder_point": 5, "below_reorder_point": True}
    item = Item.objects.get(item_id="ITEM-100")
    assert (item.name, item.unit_price, item.on_hand, item.reserved) == (
        "Bürostuhl Ergonomisch", Decimal("249.90"), 3, 0)


def test_create_item_existing_id_is_item_already_exists(writer, erp):
    refused("ITEM_ALREADY_EXISTS", "ax_create_item", {"item_id": "ITEM-001", "name": "Other", "unit_price": 1},
            writer)
    assert Item.objects.get(item_id="ITEM-001").name == "Chair"


def test_create_item_price_with_three_decimals_is_invalid_number(writer, db):
    refused("INVALID_NUMBER", "ax_create_item", {"item_id": "ITEM-100", "name": "Pen", "unit_price": 0.125}, writer)
    assert not Item.objects.exists()


def test_create_item_negative_stock_is_validation_error(writer, db):
    refused("VALIDATION_ERROR", "ax_create_item", {"item_id": "ITEM-100", "name": "Pen", "unit_price": 1,
                                                   "on_hand": -1}, writer)
    assert not Item.objects.exists()


@pytest.mark.parametrize("stock_field", ["on_hand", "reorder_point"])
def test_create_item_stock_beyond_the_cap_is_validation_error(writer, db, stock_field):
    # Unbounded integers used to reach the database: OverflowError on SQLite, an out-of-range
    # error on PostgreSQL that counted against the circuit breaker.
    refused("VALIDATION_ERROR", "ax_create_item", {"item_id": "ITEM-100", "name": "Pen", "unit_price": 1,
                                                   stock_field: 10**20}, writer)
    assert not Item.objects.exists()


def test_check_inventory_of_one_item(reader, erp):
    out = call_tool("ax_check_inventory", {"item_id": "ITEM-002"}, reader)
    assert (out["item_id"], out["on_hand"], out["reserved"], out["available"], out["below_reorder_point"]) == (
        "ITEM-002", 5, 0, 5, False)


def test_check_inventory_of_several_items_keeps_their_order(reader, writer, erp):
    order(writer, [{"item_id": "ITEM-001", "quantity": 45}])
    out = call_tool("ax_check_inventory", {"item_ids": ["ITEM-003", "ITEM-001"]}, reader)
    assert [(i["item_id"], i["on_hand"], i["reserved"], i["available"], i["below_reorder_point"])
            for i in out["items"]] == [("ITEM-003", 0, 0, 0, False), ("ITEM-001", 50, 45, 5, True)]


def test_check_inventory_unknown_item_is_item_not_found(reader, erp):
    error = refused("ITEM_NOT_FOUND", "ax_check_inventory", {"item_ids": ["ITEM-001", "ITEM-404"]}, reader)
    assert "ITEM-404" in error.message


@pytest.mark.parametrize("arguments", [{}, {"item_id": "ITEM-001", "item_ids": ["ITEM-002"]}, {"item_ids": []}])
def test_check_inventory_needs_exactly_one_selector(reader, erp, arguments):
    refused("VALIDATION_ERROR", "ax_check_inventory", arguments, reader)


def test_adjust_inventory_adds_and_removes_stock(writer, erp):
    out = call_tool("ax_adjust_inventory", {"item_id": "ITEM-003", "quantity_change": 12, "reason": "delivery"},
                    writer)
    assert (out["on_hand"], out["available"]) == (12, 12)
    out = call_tool("ax_adjust_inventory", {"item_id": "ITEM-003", "quantity_change": -2, "reason": "broken"},
                    writer)
    assert (out["on_hand"], out["available"]) == (10, 10)
    assert stock("ITEM-003") == (10, 0)


def test_adjust_inventory_below_reserved_is_insufficient_stock(writer, erp):
    order(writer, [{"item_id": "ITEM-002", "quantity": 3}])
    call_tool("ax_adjust_inventory", {"item_id": "ITEM-002", "quantity_change": -2, "reason": "count"}, writer)
    refused("INSUFFICIENT_STOCK", "ax_adjust_inventory",
            {"item_id": "ITEM-002", "quantity_change": -1, "reason": "count"}, writer)
    assert stock("ITEM-002") == (3, 3)


def test_adjust_inventory_unknown_item_is_item_not_found(writer, erp):
    refused("ITEM_NOT_FOUND", "ax_adjust_inventory", {"item_id": "ITEM-404", "quantity_change": 1, "reason": "x"},
            writer)


def test_adjust_inventory_beyond_the_stock_cap_is_validation_error(writer, erp):
    cap = services.MAX_STOCK
    call_tool("ax_adjust_inventory", {"item_id": "ITEM-001", "quantity_change": cap - 50, "reason": "fill"}, writer)
    assert stock("ITEM-001") == (cap, 0)
    refused("VALIDATION_ERROR", "ax_adjust_inventory", {"item_id": "ITEM-001", "quantity_change": 1,
                                                        "reason": "one more"}, writer)
    assert stock("ITEM-001") == (cap, 0)


@pytest.mark.parametrize("arguments", [
    {"item_id": "ITEM-001", "quantity_change": 0, "reason": "nothing"},
    {"item_id": "ITEM-001", "quantity_change": 10**20, "reason": "overflow"},
    {"item_id": "ITEM-001", "quantity_change": -(10**20), "reason": "overflow"},
    {"item_id": "ITEM-001", "quantity_change": 1},
    {"item_id": "ITEM-001", "quantity_change": 1.5, "reason": "half"},
])
def test_adjust_inventory_bad_arguments_are_validation_errors(writer, erp, arguments):
    refused("VALIDATION_ERROR", "ax_adjust_inventory", arguments, writer)
    assert stock("ITEM-001") == (50, 0)


# --- sales orders -----------------------------------------------------------------------------


def test_create_salesorder_prices_numbers_and_reserves(writer, erp):
    out = order(writer, [{"item_id": "ITEM-001", "quantity": 3}, {"item_id": "ITEM-002", "quantity": 2}],
                customer_ref="PO-4711")
    match = SALES_ID.match(out["sales_id"])
    assert match and int(match[1]) == timezone.now().year
    assert (out["customer_account"], out["status"], out["currency"], out["total_amount"], out["customer_ref"]) == (
        "CUST-001", "open", "EUR", 1201.0, "PO-4711")
    assert out["lines"] == [
        {"line_number": 1, "item_id": "ITEM-001", "quantity": 3, "unit_price": 100.0, "line_amount": 300.0},
        {"line_number": 2, "item_id": "ITEM-002", "quantity": 2, "unit_price": 450.5, "line_amount": 901.0},
    ]
    stored = SalesOrder.objects.get(sales_id=out["sales_id"])
    assert (stored.status, stored.total_amount, stored.customer.customer_account) == (
        "open", Decimal("1201.00"), "CUST-001")
    assert stored.lines.count() == 2
    assert stock("ITEM-001") == (50, 3) and stock("ITEM-002") == (5, 2)
    assert balance("CUST-001") == 0  # an order books nothing until it is invoiced


def test_sales_ids_follow_the_primary_key(writer, erp):
    first = order(writer, [{"item_id": "ITEM-001", "quantity": 1}])["sales_id"]
    second = order(writer, [{"item_id": "ITEM-001", "quantity": 1}])["sales_id"]
    assert int(SALES_ID.match(second)[2]) == int(SALES_ID.match(first)[2]) + 1
    assert SalesOrder.objects.get(sales_id=first).pk == int(SALES_ID.match(first)[2])


def test_create_salesorder_same_item_on_two_lines_reserves_the_sum(writer, erp):
    order(writer, [{"item_id": "ITEM-002", "quantity": 2}, {"item_id": "ITEM-002", "quantity": 3}])
    assert stock("ITEM-002") == (5, 5)
    refused("INSUFFICIENT_STOCK", "ax_create_salesorder",
            {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-002", "quantity": 1}]}, writer)


def test_create_salesorder_for_usd_customer_converts_item_prices(writer, erp):
    # 1.15 EUR * 1.1 = 1.265 USD: half-up gives 1.27 where banker's rounding would give 1.26.
    Item.objects.create(item_id="ITEM-HALF", name="Washer", unit_price=Decimal("1.15"), on_hand=100)
    out = order(writer, [{"item_id": "ITEM-001", "quantity": 1}, {"item_id": "ITEM-002", "quantity": 1},
                         {"item_id": "ITEM-HALF", "quantity": 10}], account="CUST-002")
    assert out["currency"] == "USD"
    assert [(line["unit_price"], line["line_amount"]) for line in out["lines"]] == [
        (110.0, 110.0), (495.55, 495.55), (1.27, 12.7)]
    assert out["total_amount"] == 618.25
    stored = SalesOrder.objects.get(sales_id=out["sales_id"])
    assert (stored.currency, stored.total_amount) == ("USD", Decimal("618.25"))
    assert list(stored.lines.values_list("unit_price", flat=True)) == [
        Decimal("110.00"), Decimal("495.55"), Decimal("1.27")]


def test_create_salesorder_price_override_is_taken_as_given(writer, erp):
    out = order(writer, [{"item_id": "ITEM-001", "quantity": 3, "unit_price": 89.99}])
    assert out["lines"][0]["unit_price"] == 89.99 and out["total_amount"] == 269.97
    assert SalesOrder.objects.get(sales_id=out["sales_id"]).total_amount == Decimal("269.97")


def test_create_salesorder_without_exchange_rate_is_no_exchange_rate(writer, erp):
    Customer.objects.create(customer_account="CUST-GBP", name="Tesco", currency="GBP")
    refused("NO_EXCHANGE_RATE", "ax_create_salesorder",
            {"customer_account": "CUST-GBP", "lines": [{"item_id": "ITEM-001", "quantity": 1}]}, writer)
    assert not SalesOrder.objects.exists() and stock("ITEM-001") == (50, 0)


def test_create_salesorder_unknown_customer_is_cust_not_found(writer, erp):
    refused("CUST_NOT_FOUND", "ax_create_salesorder",
            {"customer_account": "CUST-404", "lines": [{"item_id": "ITEM-001", "quantity": 1}]}, writer)
    assert not SalesOrder.objects.exists()


def test_create_salesorder_unknown_item_is_item_not_found_and_reserves_nothing(writer, erp):
    error = refused("ITEM_NOT_FOUND", "ax_create_salesorder", {"customer_account": "CUST-001", "lines": [
        {"item_id": "ITEM-001", "quantity": 1}, {"item_id": "ITEM-404", "quantity": 1}]}, writer)
    assert error.field == "lines[1].item_id"
    assert not SalesOrder.objects.exists() and stock("ITEM-001") == (50, 0)


def test_create_salesorder_beyond_stock_is_insufficient_stock_and_reserves_nothing(writer, erp):
    error = refused("INSUFFICIENT_STOCK", "ax_create_salesorder", {"customer_account": "CUST-001", "lines": [
        {"item_id": "ITEM-001", "quantity": 5}, {"item_id": "ITEM-003", "quantity": 1}]}, writer)
    assert error.details == {"item_id": "ITEM-003", "available": 0, "requested": 1}
    assert not SalesOrder.objects.exists() and stock("ITEM-001") == (50, 0)


def test_create_salesorder_over_credit_limit_is_credit_limit_exceeded(writer, erp):
    Customer.objects.filter(customer_account="CUST-001").update(balance=Decimal("9800.00"))
    refused("CREDIT_LIMIT_EXCEEDED", "ax_create_salesorder",
            {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 2, "unit_price": 100.01}]},
            writer)
    assert not SalesOrder.objects.exists() and stock("ITEM-001") == (50, 0)
    # Exactly up to the limit is allowed.
    assert order(writer, [{"item_id": "ITEM-001", "quantity": 2}])["total_amount"] == 200.0


def test_create_salesorder_for_blocked_customer_is_cust_blocked(writer, erp):
    call_tool("ax_update_customer", {"customer_account": "CUST-001", "blocked": True}, writer)
    refused("CUST_BLOCKED", "ax_create_salesorder",
            {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 1}]}, writer)
    assert not SalesOrder.objects.exists()


def test_create_salesorder_price_with_three_decimals_is_invalid_number(writer, erp):
    error = refused("INVALID_NUMBER", "ax_create_salesorder", {"customer_account": "CUST-001", "lines": [
        {"item_id": "ITEM-001", "quantity": 1, "unit_price": 9.999}]}, writer)
    assert error.field == "lines[0].unit_price"
    assert not SalesOrder.objects.exists()


@pytest.mark.parametrize("lines", [
    [],
    [{"item_id": "ITEM-001", "quantity": 0}],
    [{"item_id": "ITEM-001", "quantity": 1.5}],
    [{"item_id": "ITEM-001", "quantity": True}],
    [{"item_id": "ITEM-001"}],
    [{"item_id": "ITEM-001", "quantity": 1, "unit_price": -1}],
])
def test_create_salesorder_bad_lines_are_validation_errors(writer, erp, lines):
    refused("VALIDATION_ERROR", "ax_create_salesorder", {"customer_account": "CUST-001", "lines": lines}, writer)
    assert not SalesOrder.objects.exists()


def test_get_salesorder_returns_what_create_returned(writer, reader, erp):
    created = order(writer, [{"item_id": "ITEM-001", "quantity": 1}, {"item_id": "ITEM-002", "quantity": 1}])
    assert call_tool("ax_get_salesorder", {"sales_id": created["sales_id"]}, reader) == created


def test_get_salesorder_unknown_id_is_order_not_found(reader, erp):
    refused("ORDER_NOT_FOUND", "ax_get_salesorder", {"sales_id": "SO-2020-999999"}, reader)


def test_update_salesorder_lines_reserve_only_the_difference(writer, erp):
    sales_id = order(writer, [{"item_id": "ITEM-001", "quantity": 10}, {"item_id": "ITEM-002", "quantity": 1}])[
        "sales_id"]
    out = call_tool("ax_update_salesorder", {"sales_id": sales_id, "lines": [
        {"item_id": "ITEM-001", "quantity": 4}, {"item_id": "ITEM-002", "quantity": 5}]}, writer)
    assert out["changed"] == ["lines", "total_amount"]
    assert out["total_amount"] == 2652.5
    assert [(line["item_id"], line["quantity"]) for line in out["lines"]] == [("ITEM-001", 4), ("ITEM-002", 5)]
    assert stock("ITEM-001") == (50, 4) and stock("ITEM-002") == (5, 5)
    stored = SalesOrder.objects.get(sales_id=sales_id)
    assert stored.total_amount == Decimal("2652.50")
    assert list(stored.lines.values_list("item__item_id", "quantity")) == [("ITEM-001", 4), ("ITEM-002", 5)]
    # Dropping an item altogether gives all of its reservation back.
    call_tool("ax_update_salesorder", {"sales_id": sales_id, "lines": [{"item_id": "ITEM-001", "quantity": 4}]},
              writer)
    assert stock("ITEM-001") == (50, 4) and stock("ITEM-002") == (5, 0)


def test_update_salesorder_lines_beyond_stock_change_nothing(writer, erp):
    sales_id = order(writer, [{"item_id": "ITEM-002", "quantity": 2}])["sales_id"]
    refused("INSUFFICIENT_STOCK", "ax_update_salesorder",
            {"sales_id": sales_id, "lines": [{"item_id": "ITEM-002", "quantity": 6}]}, writer)
    assert stock("ITEM-002") == (5, 2)
    assert SalesOrder.objects.get(sales_id=sales_id).total_amount == Decimal("901.00")
    assert SalesOrderLine.objects.get(order__sales_id=sales_id).quantity == 2


def test_update_salesorder_lines_over_credit_limit_is_credit_limit_exceeded(writer, erp):
    sales_id = order(writer, [{"item_id": "ITEM-001", "quantity": 1}])["sales_id"]
    refused("CREDIT_LIMIT_EXCEEDED", "ax_update_salesorder",
            {"sales_id": sales_id, "lines": [{"item_id": "ITEM-001", "quantity": 11, "unit_price": 1000}]}, writer)
    assert stock("ITEM-001") == (50, 1)


def test_update_salesorder_confirm_then_lines_are_invalid_state(writer, erp):
    sales_id = order(writer, [{"item_id": "ITEM-001", "quantity": 2}])["sales_id"]
    out = call_tool("ax_update_salesorder", {"sales_id": sales_id, "status": "confirmed"}, writer)
    assert (out["status"], out["changed"]) == ("confirmed", ["status"])
    assert SalesOrder.objects.get(sales_id=sales_id).status == "confirmed"
    error = refused("INVALID_STATE", "ax_update_salesorder",
                    {"sales_id": sales_id, "lines": [{"item_id": "ITEM-001", "quantity": 3}]}, writer)
    assert error.field == "lines"
    assert stock("ITEM-001") == (50, 2)
    # The reference of a confirmed order may still change.
    out = call_tool("ax_update_salesorder", {"sales_id": sales_id, "customer_ref": "PO-99"}, writer)
    assert out["customer_ref"] == "PO-99" and SalesOrder.objects.get(sales_id=sales_id).customer_ref == "PO-99"


def test_update_salesorder_of_invoiced_or_cancelled_order_is_invalid_state(writer, erp):
    invoiced = order(writer, [{"item_id": "ITEM-001", "quantity": 1}])["sales_id"]
    call_tool("ax_create_invoice", {"sales_id": invoiced}, writer)
    cancelled = order(writer, [{"item_id": "ITEM-001", "quantity": 1}])["sales_id"]
    call_tool("ax_cancel_salesorder", {"sales_id": cancelled}, writer)
    for sales_id in (invoiced, cancelled):
        refused("INVALID_STATE", "ax_update_salesorder", {"sales_id": sales_id, "customer_ref": "late"}, writer)
    assert not SalesOrder.objects.filter(customer_ref="late").exists()


def test_update_salesorder_unknown_id_is_order_not_found(writer, erp):
    refused("ORDER_NOT_FOUND", "ax_update_salesorder", {"sales_id": "SO-2020-999999", "customer_ref": "x"}, writer)


@pytest.mark.parametrize("changes", [{}, {"status": "invoiced"}, {"status": "cancelled"}, {"lines": []}])
def test_update_salesorder_bad_changes_are_validation_errors(writer, erp, changes):
    sales_id = order(writer, [{"item_id": "ITEM-001", "quantity": 1}])["sales_id"]
    refused("VALIDATION_ERROR", "ax_update_salesorder", {"sales_id": sales_id, **changes}, writer)
    assert SalesOrder.objects.get(sales_id=sales_id).status == "open"


def test_cancel_salesorder_releases_its_stock(writer, erp):
    sales_id = order(writer, [{"item_id": "ITEM-001", "quantity": 7}, {"item_id": "ITEM-002", "quantity": 5}])[
        "sales_id"]
    call_tool("ax_update_salesorder", {"sales_id": sales_id, "status": "confirmed"}, writer)
    out = call_tool("ax_cancel_salesorder", {"sales_id": sales_id, "reason": "customer changed their mind"}, writer)
    assert out["status"] == "cancelled"
    stored = SalesOrder.objects.get(sales_id=sales_id)
    assert (stored.status, stored.cancel_reason) == ("cancelled", "customer changed their mind")
    assert stock("ITEM-001") == (50, 0) and stock("ITEM-002") == (5, 0)


def test_cancel_salesorder_twice_is_invalid_state_and_releases_once(writer, erp):
    first = order(writer, [{"item_id": "ITEM-002", "quantity": 2}])["sales_id"]
    order(writer, [{"item_id": "ITEM-002", "quantity": 3}])
    call_tool("ax_cancel_salesorder", {"sales_id": first}, writer)
    refused("INVALID_STATE", "ax_cancel_salesorder", {"sales_id": first}, writer)
    assert stock("ITEM-002") == (5, 3)


def test_cancel_salesorder_of_invoiced_order_is_invalid_state(writer, erp):
    sales_id = order(writer, [{"item_id": "ITEM-002", "quantity": 2}])["sales_id"]
    call_tool("ax_create_invoice", {"sales_id": sales_id}, writer)
    refused("INVALID_STATE", "ax_cancel_salesorder", {"sales_id": sales_id}, writer)
    assert SalesOrder.objects.get(sales_id=sales_id).status == "invoiced"
    assert stock("ITEM-002") == (3, 0)


def test_cancel_salesorder_unknown_id_is_order_not_found(writer, erp):
    refused("ORDER_NOT_FOUND", "ax_cancel_salesorder", {"sales_id": "SO-2020-999999"}, writer)


# --- invoices and payments ----------------------------------------------------------------------


def test_create_invoice_ships_stock_and_books_the_amount(writer, erp):
    sales_id = order(writer, [{"item_id": "ITEM-001", "quantity": 4}, {"item_id": "ITEM-002", "quantity": 1}])[
        "sales_id"]
    order(writer, [{"item_id": "ITEM-001", "quantity": 6}])  # another order's reservation stays
    out = call_tool("ax_create_invoice", {"sales_id": sales_id}, writer)
    match = INVOICE_ID.match(out["invoice_id"])
    assert match and int(match[1]) == timezone.now().year
    assert out == {"invoice_id": out["invoice_id"], "sales_id": sales_id, "customer_account": "CUST-001",
                   "currency": "EUR", "amount": 850.5, "paid_amount": 0.0, "open_amount": 850.5, "status": "open",
                   "due_date": (timezone.localdate() + timedelta(days=30)).isoformat()}
    assert stock("ITEM-001") == (46, 6) and stock("ITEM-002") == (4, 0)
    assert SalesOrder.objects.get(sales_id=sales_id).status == "invoiced"
    assert Invoice.objects.get(invoice_id=out["invoice_id"]).amount == Decimal("850.50")
    assert balance("CUST-001") == Decimal("850.50")


def test_create_invoice_twice_is_invalid_state(writer, erp, invoice):
    refused("INVALID_STATE", "ax_create_invoice", {"sales_id": invoice["sales_id"]}, writer)
    assert Invoice.objects.count() == 1
    assert stock("ITEM-001") == (48, 0) and balance("CUST-001") == Decimal("200.00")


def test_create_invoice_of_cancelled_order_is_invalid_state(writer, erp):
    sales_id = order(writer, [{"item_id": "ITEM-001", "quantity": 2}])["sales_id"]
    call_tool("ax_cancel_salesorder", {"sales_id": sales_id}, writer)
    refused("INVALID_STATE", "ax_create_invoice", {"sales_id": sales_id}, writer)
    assert not Invoice.objects.exists()
    assert stock("ITEM-001") == (50, 0) and balance("CUST-001") == 0


def test_create_invoice_unknown_order_is_order_not_found(writer, erp):
    refused("ORDER_NOT_FOUND", "ax_create_invoice", {"sales_id": "SO-2020-999999"}, writer)


def test_post_payment_in_parts_marks_the_invoice_paid(writer, erp, invoice):
    first = call_tool("ax_post_payment", {"customer_account": "CUST-001", "amount": 50.25,
                                          "invoice_id": invoice["invoice_id"], "currency": "eur",
                                          "reference": "Überweisung 1"}, writer)
    assert PAYMENT_ID.match(first["payment_id"])
    assert first == {"payment_id": first["payment_id"], "customer_account": "CUST-001", "amount": 50.25,
                     "currency": "EUR", "invoice_id": invoice["invoice_id"], "reference": "Überweisung 1",
                     "customer_balance": 149.75}
    stored = Invoice.objects.get(invoice_id=invoice["invoice_id"])
    assert (stored.paid_amount, stored.status) == (Decimal("50.25"), "open")
    second = call_tool("ax_post_payment", {"customer_account": "CUST-001", "amount": 149.75,
                                           "invoice_id": invoice["invoice_id"]}, writer)
    assert second["customer_balance"] == 0.0
    stored.refresh_from_db()
    assert (stored.paid_amount, stored.status, stored.open_amount) == (Decimal("200.00"), "paid", Decimal("0.00"))
    assert balance("CUST-001") == 0
    assert Payment.objects.filter(invoice=stored).count() == 2


def test_post_payment_in_cents_that_floats_cannot_add_up(writer, erp):
    sales_id = order(writer, [{"item_id": "ITEM-001", "quantity": 3, "unit_price": 0.1}])["sales_id"]
    invoice_id = call_tool("ax_create_invoice", {"sales_id": sales_id}, writer)["invoice_id"]
    for amount in (0.1, 0.2):  # 0.1 + 0.2 != 0.3 in binary floating point
        out = call_tool("ax_post_payment", {"customer_account": "CUST-001", "amount": amount,
                                            "invoice_id": invoice_id}, writer)
    stored = Invoice.objects.get(invoice_id=invoice_id)
    assert (stored.paid_amount, stored.status) == (Decimal("0.30"), "paid")
    assert balance("CUST-001") == 0
    # Not -0.0, which a drifting running sum (-2.8e-17) used to produce.
    assert json.dumps(out["customer_balance"]) == "0.0"
    assert json.dumps(call_tool("ax_get_customer", {"customer_account": "CUST-001"}, writer)["balance"]) == "0.0"


def test_post_payment_without_invoice_reduces_the_balance(writer, erp, invoice):
    out = call_tool("ax_post_payment", {"customer_account": "CUST-001", "amount": 80}, writer)
    assert (out["invoice_id"], out["customer_balance"]) == (None, 120.0)
    assert balance("CUST-001") == Decimal("120.00")
    assert Invoice.objects.get(invoice_id=invoice["invoice_id"]).paid_amount == 0


def test_post_payment_over_the_open_amount_is_overpayment(writer, erp, invoice):
    call_tool("ax_post_payment", {"customer_account": "CUST-001", "amount": 150, "invoice_id": invoice["invoice_id"]},
              writer)
    error = refused("OVERPAYMENT", "ax_post_payment",
                    {"customer_account": "CUST-001", "amount": 50.01, "invoice_id": invoice["invoice_id"]}, writer)
    assert error.field == "amount"
    assert Invoice.objects.get(invoice_id=invoice["invoice_id"]).paid_amount == Decimal("150.00")
    assert Payment.objects.count() == 1 and balance("CUST-001") == Decimal("50.00")


def test_post_payment_on_paid_invoice_is_invalid_state(writer, erp, invoice):
    call_tool("ax_post_payment", {"customer_account": "CUST-001", "amount": 200, "invoice_id": invoice["invoice_id"]},
              writer)
    refused("INVALID_STATE", "ax_post_payment",
            {"customer_account": "CUST-001", "amount": 1, "invoice_id": invoice["invoice_id"]}, writer)
    assert Payment.objects.count() == 1


def test_post_payment_unknown_invoice_is_invoice_not_found(writer, erp):
    refused("INVOICE_NOT_FOUND", "ax_post_payment",
            {"customer_account": "CUST-001", "amount": 1, "invoice_id": "INV-2020-999999"}, writer)
    assert not Payment.objects.exists() and balance("CUST-001") == 0


def test_post_payment_on_another_customers_invoice_is_invoice_customer_mismatch(writer, erp, invoice):
    refused("INVOICE_CUSTOMER_MISMATCH", "ax_post_payment",
            {"customer_account": "CUST-002", "amount": 10, "invoice_id": invoice["invoice_id"]}, writer)
    assert not Payment.objects.exists()
    assert Invoice.objects.get(invoice_id=invoice["invoice_id"]).paid_amount == 0


def test_post_payment_in_another_currency_is_currency_mismatch(writer, erp, invoice):
    error = refused("CURRENCY_MISMATCH", "ax_post_payment",
                    {"customer_account": "CUST-001", "amount": 10, "currency": "USD"}, writer)
    assert error.field == "currency"
    assert not Payment.objects.exists() and balance("CUST-001") == Decimal("200.00")


def test_post_payment_in_unknown_currency_is_invalid_currency(writer, erp):
    refused("INVALID_CURRENCY", "ax_post_payment", {"customer_account": "CUST-001", "amount": 10, "currency": "ABC"},
            writer)


def test_post_payment_unknown_customer_is_cust_not_found(writer, erp):
    refused("CUST_NOT_FOUND", "ax_post_payment", {"customer_account": "CUST-404", "amount": 10}, writer)


def test_post_payment_with_three_decimals_is_invalid_number(writer, erp, invoice):
    refused("INVALID_NUMBER", "ax_post_payment", {"customer_account": "CUST-001", "amount": 10.005}, writer)
    assert not Payment.objects.exists() and balance("CUST-001") == Decimal("200.00")


@pytest.mark.parametrize("amount", [1e30, 10**40, 10000000000000000.0])
def test_post_payment_of_an_absurd_amount_is_invalid_number(writer, erp, amount):
    # 1e30 used to overflow the Decimal context inside the check and end as INTERNAL_ERROR.
    refused("INVALID_NUMBER", "ax_post_payment", {"customer_account": "CUST-001", "amount": amount}, writer)
    assert not Payment.objects.exists()


@pytest.mark.parametrize("amount", [0, -5, "10"])
def test_post_payment_amount_must_be_a_positive_number(writer, erp, amount):
    refused("VALIDATION_ERROR", "ax_post_payment", {"customer_account": "CUST-001", "amount": amount}, writer)
    assert not Payment.objects.exists()


def test_usd_customer_is_invoiced_and_paid_in_usd(writer, erp):
    out = order(writer, [{"item_id": "ITEM-002", "quantity": 2}], account="CUST-002")
    assert (out["currency"], out["total_amount"]) == ("USD", 991.1)
    invoice = call_tool("ax_create_invoice", {"sales_id": out["sales_id"]}, writer)
    assert (invoice["currency"], invoice["amount"]) == ("USD", 991.1)
    paid = call_tool("ax_post_payment", {"customer_account": "CUST-002", "amount": 991.1, "currency": "USD",
                                         "invoice_id": invoice["invoice_id"]}, writer)
    assert (paid["currency"], paid["customer_balance"]) == ("USD", 0.0)
    assert Invoice.objects.get(invoice_id=invoice["invoice_id"]).status == "paid"
