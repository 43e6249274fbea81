"""The read tools (ax_find_customers, ax_list_items, ax_list_salesorders, ax_get_invoice,
ax_list_invoices, ax_get_customer_balance, ax_list_payments): through call_tool and over HTTP,
with roles, audit rows and cursor paging. The filters themselves are tested on the services in
tests/erp/test_reads.py."""

from __future__ import annotations

import pytest

from core.accounts.roles import MCP_READ
from core.audit.models import AuditEntry
from core.erp import services
from core.errors import ToolError
from core.tools.pipeline import call_tool
from tests.helpers import make_api

pytestmark = pytest.mark.django_db

READ_TOOLS = {
    "ax_find_customers": {"query": "muller"},
    "ax_list_items": {"below_reorder_point": True},
    "ax_list_salesorders": {"customer_account": "CUST-001", "status": ["open", "invoiced"]},
    "ax_get_invoice": {"invoice_id": "?"},
    "ax_list_invoices": {"customer_account": "CUST-001", "status": "open", "overdue": False},
    "ax_get_customer_balance": {"customer_account": "CUST-001"},
    "ax_list_payments": {"customer_account": "CUST-001", "date_from": "2000-01-01", "date_to": "2999-12-31"},
}


@pytest.fixture
def billed(erp):
    """CUST-001 with an invoiced order (partly paid) and an open one; ITEM-002 below its reorder point."""
    first = services.create_sales_order("CUST-001", [{"item_id": "ITEM-001", "quantity": 2}], customer_ref="PO-7")
    invoice = services.create_invoice(first.sales_id)
    services.post_payment("CUST-001", 50, invoice_id=invoice.invoice_id, reference="part")
    services.create_sales_order("CUST-001", [{"item_id": "ITEM-002", "quantity": 4}])
    return {"invoice_id": invoice.invoice_id, "first": first.sales_id}


def arguments_of(tool: str, billed: dict) -> dict:
    arguments = dict(READ_TOOLS[tool])
    if tool == "ax_get_invoice":
        arguments["invoice_id"] = billed["invoice_id"]
    return arguments


def refused(tool: str, arguments: dict, user) -> ToolError:
    with pytest.raises(ToolError) as caught:
        call_tool(tool, arguments, user)
    return caught.value


def test_each_read_tool_answers_through_call_tool_and_is_audited(reader, billed):
    outputs = {tool: call_tool(tool, arguments_of(tool, billed), reader) for tool in READ_TOOLS}
    assert [c["name"] for c in outputs["ax_find_customers"]["items"]] == ["Müller GmbH"]
    assert [i["item_id"] for i in outputs["ax_list_items"]["items"]] == ["ITEM-002"]  # 1 available, reorder at 2
    orders = outputs["ax_list_salesorders"]["items"]
    assert [(o["status"], o["line_count"]) for o in orders] == [("open", 1), ("invoiced", 1)]
    invoice = outputs["ax_get_invoice"]
    assert (invoice["open_amount"], invoice["overdue"], len(invoice["payments"])) == (150.0, False, 1)
    assert [i["invoice_id"] for i in outputs["ax_list_invoices"]["items"]] == [billed["invoice_id"]]
    balance = outputs["ax_get_customer_balance"]
    assert (balance["balance"], balance["credit_available"], balance["open_orders"]) == (
        150.0, 9850.0, {"count": 1, "amount": 1802.0})
    assert [p["amount"] for p in outputs["ax_list_payments"]["items"]] == [50.0]
    for tool, output in outputs.items():
        if "items" in output:
            assert output["next_cursor"] is None, tool
    rows = list(AuditEntry.objects.order_by("id").values_list("tool", "username", "success"))
    assert rows == [(tool, "reader", True) for tool in READ_TOOLS]


def test_each_read_tool_answers_over_http(client, reader, billed):
    api = make_api(client, reader, MCP_READ)
    for tool in READ_TOOLS:
        response = api.call(tool, arguments_of(tool, billed))
        assert response.status_code == 200, (tool, response.content)
        assert response.json()
    assert AuditEntry.objects.filter(via="http", success=True).count() == len(READ_TOOLS)


@pytest.mark.parametrize("who", ["outsider", "stakeholder"])
def test_a_user_without_mcp_read_is_refused_every_read_tool(request, billed, who):
    user = request.getfixturevalue(who)
    for tool in READ_TOOLS:
        assert refused(tool, arguments_of(tool, billed), user).code == "FORBIDDEN", tool
    assert set(AuditEntry.objects.values_list("error_code", flat=True)) == {"FORBIDDEN"}
    assert AuditEntry.objects.count() == len(READ_TOOLS)


@pytest.mark.parametrize("who", ["outsider", "stakeholder"])
def test_http_without_the_role_is_403(request, client, billed, who):
    # A token is capped by its user's role: one issued for MCP_Read gives no one the role.
    api = make_api(client, request.getfixturevalue(who), MCP_READ)
    response = api.call("ax_list_invoices", {})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"


def test_a_tool_pages_with_its_cursor_and_keeps_its_place_while_orders_are_added(reader, erp):
    made = [services.create_sales_order("CUST-002", [{"item_id": "ITEM-001", "quantity": 1}]).sales_id
            for _ in range(5)]
    first = call_tool("ax_list_salesorders", {"customer_account": "CUST-002", "limit": 2}, reader)
    seen = [o["sales_id"] for o in first["items"]]
    services.create_sales_order("CUST-002", [{"item_id": "ITEM-001", "quantity": 1}])  # lands before the cursor
    cursor = first["next_cursor"]
    while cursor:
        page = call_tool("ax_list_salesorders", {"customer_account": "CUST-002", "limit": 2, "cursor": cursor},
                         reader)
        seen += [o["sales_id"] for o in page["items"]]
        cursor = page["next_cursor"]
    assert seen == made[::-1]


def test_a_foreign_or_broken_cursor_is_invalid_cursor(reader, erp):
    customers = call_tool("ax_find_customers", {"limit": 1}, reader)
    assert customers["next_cursor"]
    foreign = refused("ax_list_items", {"cursor": customers["next_cursor"]}, reader)
    assert (foreign.code, foreign.field) == ("INVALID_CURSOR", "cursor")
    other_filters = refused("ax_find_customers", {"currency": "USD", "cursor": customers["next_cursor"]}, reader)
    assert other_filters.code == "INVALID_CURSOR"
    broken = refused("ax_find_customers", {"cursor": "eyJmIjoi"}, reader)
    assert broken.code == "INVALID_CURSOR"
    assert AuditEntry.objects.filter(error_code="INVALID_CURSOR").count() == 3


def test_a_range_that_ends_before_it_starts_is_invalid_date_range(reader, erp):
    for tool in ("ax_list_salesorders", "ax_list_payments"):
        error = refused(tool, {"date_from": "2026-03-02", "date_to": "2026-03-01"}, reader)
        assert (error.code, error.field) == ("INVALID_DATE_RANGE", "date_to")
    impossible = refused("ax_list_payments", {"date_from": "2026-02-30"}, reader)
    assert (impossible.code, impossible.field) == ("VALIDATION_ERROR", "date_from")


@pytest.mark.parametrize(("arguments", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"status": "shipped"}, "status"),
    ({"status": []}, "status"), ({"date_from": "01.03.2026"}, "date_from"), ({"cursor": ""}, "cursor"),
    ({"min_amount": -1}, "min_amount"), ({"colour": "red"}, None),
])
def test_the_schema_refuses_malformed_arguments(reader, erp, arguments, field):
    error = refused("ax_list_salesorders", arguments, reader)
    assert error.code in ("VALIDATION_ERROR", "INVALID_NUMBER")
    if field:
        assert error.field == field


def test_limit_defaults_to_50_and_allows_500(reader, erp):
    for n in range(60):
        services.create_customer(customer_account=f"BULK-{n:03}", name=f"Bulk {n}", currency="EUR")
    assert len(call_tool("ax_find_customers", {}, reader)["items"]) == 50
    everything = call_tool("ax_find_customers", {"limit": 500}, reader)
    assert (len(everything["items"]), everything["next_cursor"]) == (62, None)


def test_unknown_records_are_their_not_found_codes_over_http(client, reader, erp):
    api = make_api(client, reader, MCP_READ)
    for tool, arguments, code in [
        ("ax_get_invoice", {"invoice_id": "INV-404"}, "INVOICE_NOT_FOUND"),
        ("ax_get_customer_balance", {"customer_account": "CUST-404"}, "CUST_NOT_FOUND"),
        ("ax_list_salesorders", {"customer_account": "CUST-404"}, "CUST_NOT_FOUND"),
        ("ax_list_payments", {"invoice_id": "INV-404"}, "INVOICE_NOT_FOUND"),
    ]:
        response = api.call(tool, arguments)
        assert (response.status_code, response.json()["error"]["code"]) == (404, code), tool
