"""Ordinary client input over every way in: numbers with a fraction in every tool's arguments,
integral numbers where integers are expected, text that is not valid Unicode, and bodies sent
with Transfer-Encoding: chunked. None of them may end in a 500 or INTERNAL_ERROR, and money
must come back exactly as it went in.

HTTP goes through Django's test client (and, for chunked bodies, through a real server), MCP
through the SDK's client talking to the hub's MCP server in this process, the CLI through
`call_command("call_tool", ...)`. Transactional: the MCP server answers on worker threads,
which only see committed data.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import json
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import anyio
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import RequestFactory
from mcp import Client

from core import jsoncodec
from core.accounts.models import ApiToken
from core.accounts.roles import MCP_ADMIN, MCP_WRITE, ROLE_LEVEL
from core.api import mcp as hub_mcp
from core.api import views
from core.audit.models import AuditEntry
from core.tools import tasks
from core.tools.models import BatchRun
from core.tools.pipeline import call_tool
from core.tools.registry import all_tools
from core.webhooks.models import Delivery, Subscription
from tests import livehub

pytestmark = pytest.mark.django_db(transaction=True)

Answer = tuple[dict[str, Any] | None, dict[str, Any]]  # (the error or None, the whole body)


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch, settings, tmp_path):
    """Nothing leaves for django-q2 (async batches are run by hand below); a local receiver may
    be subscribed; import files go to a temporary directory."""
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: None)
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    settings.MEDIA_ROOT = tmp_path / "media"


# --- the three ways in ---------------------------------------------------------------------------


class Http:
    via = "http"

    def __init__(self, client, user) -> None:
        self.client = client
        self.token = ApiToken.issue(user, MCP_ADMIN)[1]

    def call(self, tool: str, arguments: dict[str, Any], key: str | None = None) -> Answer:
        headers = {"Authorization": f"Bearer {self.token}", **({"Idempotency-Key": key} if key else {})}
        # ASCII escapes, so that a lone surrogate travels as JSON's \ud800 escape.
        body = jsoncodec.dumps(arguments, ensure_ascii=True)
        response = self.client.post(f"/api/tools/{tool}", data=body, content_type="application/json",
                                    headers=headers)
        assert response.status_code < 500, response.content[:500]
        assert response["Content-Type"] == "application/json"
        answer = jsoncodec.loads(response.content)
        if response.status_code == 200:
            return None, answer
        assert answer["error"]["code"] != "INTERNAL_ERROR"
        return answer["error"], answer


class Mcp:
    """The SDK's client and the hub's MCP server, in this process. The SDK hands a tool the
    arguments as JSON parses them for it: numbers with a fraction as float."""

    via = "mcp"

    def __init__(self, user) -> None:
        self.principal = hub_mcp.Principal(user=user, role_cap=ROLE_LEVEL[MCP_ADMIN], via="mcp")

    def call(self, tool: str, arguments: dict[str, Any], key: str | None = None) -> Answer:
        plain = json.loads(jsoncodec.dumps(arguments))  # Decimal -> float, as a client sends it

        async def one():
            async with Client(hub_mcp.build_server()) as client:
                return await client.call_tool(tool, plain, meta={"idempotency_key": key} if key else None)

        token = hub_mcp.current_principal.set(self.principal)
        try:
            result = anyio.run(one)
        finally:
            hub_mcp.current_principal.reset(token)
        answer = jsoncodec.loads(result.content[0].text)  # the JSON text: exact, unlike structured content
        if not result.is_error:
            return None, answer
        assert answer["error"]["code"] != "INTERNAL_ERROR", answer
        return answer["error"], answer


class Cli:
    via = "cli"

    def __init__(self, user) -> None:
        self.username = user.username

    def call(self, tool: str, arguments: dict[str, Any], key: str | None = None) -> Answer:
        out = io.StringIO()
        options: dict[str, Any] = {"user": self.username, "stdout": out}
        if key:
            options["idempotency_key"] = key
        try:
            call_command("call_tool", tool, jsoncodec.dumps(arguments, ensure_ascii=True), **options)
        except SystemExit as stop:
            assert stop.code == 1
            answer = jsoncodec.loads(out.getvalue())
            assert answer["error"]["code"] != "INTERNAL_ERROR", answer
            return answer["error"], answer
        return None, jsoncodec.loads(out.getvalue())


@pytest.fixture(params=["http", "mcp", "cli"])
def way_in(request, client, admin):
    return {"http": lambda: Http(client, admin), "mcp": lambda: Mcp(admin), "cli": lambda: Cli(admin)}[
        request.param]()


# --- numbers with a fraction through every tool ---------------------------------------------------


class Exercise:
    def __init__(self, way) -> None:
        self.way = way
        self.called: set[str] = set()

    def ok(self, tool: str, arguments: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        error, answer = self.way.call(tool, arguments, key)
        self.called.add(tool)
        assert error is None, (self.way.via, tool, answer)
        return answer


def test_fractions_go_through_every_tool_and_money_comes_back_exact(way_in, erp):
    run = Exercise(way_in)
    ok, tag = run.ok, way_in.via.upper()
    # Over HTTP and the CLI every digit arrives. MCP clients send binary floats (the SDK parses
    # JSON so), and SQLite stores a decimal column as one: both exact up to 15 significant digits.
    every_digit = way_in.via != "mcp" and connection.vendor == "postgresql"
    big = D("99999999999999.99") if every_digit else D("99999999999.99")
    account, item = f"FRAC-{tag}", f"HALF-{tag}"

    customer = ok("ax_create_customer", {"customer_account": account, "name": "Fraction GmbH", "currency": "EUR",
                                         "credit_limit": D("12345678901234.56")})
    assert customer["credit_limit"] == D("12345678901234.56")
    assert ok("ax_update_customer", {"customer_account": account, "credit_limit": big})["credit_limit"] == big
    assert ok("ax_get_customer", {"customer_account": account})["credit_limit"] == big

    created = ok("ax_create_item", {"item_id": item, "name": "Half", "unit_price": D("99.95"), "on_hand": D("10.0"),
                                    "reorder_point": D("2.0")})
    assert (created["unit_price"], created["on_hand"], created["reorder_point"]) == (D("99.95"), 10, 2)
    assert ok("ax_adjust_inventory", {"item_id": item, "quantity_change": D("5.0"), "reason": "count"})["on_hand"] == 15
    assert ok("ax_check_inventory", {"item_ids": [item]})["items"][0]["on_hand"] == 15

    order = ok("ax_create_salesorder", {"customer_account": account, "lines": [
        {"item_id": item, "quantity": D("2.0"), "unit_price": D("12345678901.23")}]})
    assert (order["total_amount"], order["lines"][0]["quantity"]) == (D("24691357802.46"), 2)
    assert ok("ax_get_salesorder", {"sales_id": order["sales_id"]})["total_amount"] == D("24691357802.46")
    changed = ok("ax_update_salesorder", {"sales_id": order["sales_id"], "lines": [
        {"item_id": item, "quantity": D("3.0"), "unit_price": D("0.10")}]})
    assert changed["total_amount"] == D("0.3")
    invoice = ok("ax_create_invoice", {"sales_id": order["sales_id"]})
    assert invoice["amount"] == D("0.3")
    other = ok("ax_create_salesorder", {"customer_account": account, "lines": [{"item_id": item, "quantity": 1.0}]})
    ok("ax_cancel_salesorder", {"sales_id": other["sales_id"], "reason": "changed mind"})
    found = ok("ax_find_customers", {"query": account, "limit": D("5.0")})["items"]
    assert [c["credit_limit"] for c in found if c["customer_account"] == account] == [big]
    assert ok("ax_list_items", {"query": item, "limit": D("1.0")})["items"][0]["unit_price"] == D("99.95")
    orders = ok("ax_list_salesorders", {"customer_account": account, "status": "invoiced", "min_amount": D("0.25"),
                                        "limit": D("50.0")})
    assert [o["total_amount"] for o in orders["items"]] == [D("0.3")]
    assert ok("ax_get_invoice", {"invoice_id": invoice["invoice_id"]})["open_amount"] == D("0.3")
    ok("ax_list_invoices", {"customer_account": account, "status": "open", "limit": D("10.0")})
    assert ok("ax_get_customer_balance", {"customer_account": account})["balance"] == D("0.3")

    filters = {"min_amount": D("0.05"), "max_amount": D("12345678901234.56"), "amount": [D("0.1"), D("1000.5")]}
    sub = ok("ax_subscribe_webhook", {"event_type": "payment.posted", "webhook_url": "http://127.0.0.1:9/hook",
                                      "filters": filters,
                                      "retry_policy": {"max_retries": D("3.0"), "backoff_ms": D("1000.0")}})
    assert sub["filters"] == filters
    sub_id = sub["subscription_id"]
    assert Subscription.objects.get(subscription_id=sub_id).filters == filters

    payment = {"customer_account": account, "amount": D("0.10"), "invoice_id": invoice["invoice_id"]}
    paid = ok("ax_post_payment", payment, key=f"pay-{tag}")
    listed_payments = ok("ax_list_payments", {"invoice_id": invoice["invoice_id"], "limit": D("2.0")})["items"]
    assert [p["amount"] for p in listed_payments] == [D("0.1")]
    assert paid["amount"] == D("0.1")
    assert ok("ax_post_payment", payment, key=f"pay-{tag}") == paid  # the stored outcome, replayed
    events = ok("ax_list_events", {"event_type": "payment.posted", "limit": D("10.0")})["events"]
    assert [e["data"]["amount"] for e in events if e["data"]["customer_account"] == account] == [D("0.1")]
    delivery = Delivery.objects.get(subscription__subscription_id=sub_id)  # the filters matched 0.1

    updated = ok("ax_update_webhook", {"subscription_id": sub_id, "filters": {"min_amount": D("999.99")}})
    assert updated["filters"] == {"min_amount": D("999.99")}
    listed = ok("ax_list_webhooks", {"event_type": "payment.posted"})["subscriptions"]
    assert [s["filters"] for s in listed if s["subscription_id"] == sub_id] == [{"min_amount": D("999.99")}]
    ok("ax_update_webhook", {"subscription_id": sub_id, "event_types": ["payment.posted", "invoice.*"]})
    found = ok("ax_get_webhook_delivery", {"delivery_id": delivery.delivery_id})
    assert (found["subject"], found["amount"], found["currency"]) == (paid["payment_id"], D("0.1"), paid["currency"])
    ok("ax_get_failed_webhooks", {"subscription_id": sub_id, "limit": D("5.0")})
    ok("ax_retry_webhook_delivery", {"subscription_id": sub_id})
    ok("ax_retry_webhook_delivery", {"all_failed": True})
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SUCCEEDED)
    assert ok("ax_retry_webhook_delivery", {"delivery_id": delivery.delivery_id})["retried"] == 1  # a resend
    ok("ax_send_test_webhook", {"subscription_id": sub_id})
    ok("ax_rotate_webhook_secret", {"subscription_id": sub_id})
    ok("ax_unsubscribe_webhook", {"subscription_id": sub_id})

    batch = ok("ax_batch_operations", {"max_parallel": D("2.0"), "requests": [
        {"tool": "ax_post_payment", "arguments": {"customer_account": account, "amount": D("10.5")}},
        {"tool": "ax_create_salesorder", "arguments": {"customer_account": account, "lines": [
            {"item_id": item, "quantity": D("1.0"), "unit_price": D("99.95")}]}}]})
    assert [r["success"] for r in batch["results"]] == [True, True], batch
    assert batch["results"][0]["output"]["amount"] == D("10.5")
    assert batch["results"][1]["output"]["total_amount"] == D("99.95")
    assert ok("ax_get_batch_status", {"batch_id": batch["batch_id"]})["results"] == batch["results"]

    queued = ok("ax_batch_operations", {"async": True, "requests": [
        {"tool": "ax_post_payment", "arguments": {"customer_account": account, "amount": D("12345678901234.56")}}]})
    assert tasks.run_batch(BatchRun.objects.get(batch_id=queued["batch_id"]).pk) == "done"  # the worker
    done = ok("ax_get_batch_status", {"batch_id": queued["batch_id"]})
    assert done["status"] == "completed", done
    assert done["results"][0]["output"]["amount"] == D("12345678901234.56")

    job = ok("ax_bulk_import", {"type": "items", "format": "csv", "validate_only": True, "batch_size": D("50.0"),
                                "data": f"item_id,name,unit_price\nIMP-{tag},Imported,99.95\n"})
    ok("ax_get_import_status", {"job_id": job["job_id"], "errors_offset": D("0.0"), "errors_limit": D("10.0")})
    ok("ax_cancel_import", {"job_id": job["job_id"]})
    ok("ax_resume_import", {"job_id": job["job_id"]})
    ok("ax_list_import_mappings", {"type": "items", "header": ["Artikelnummer", "Preis", "Bezeichnung"]})
    ok("ax_get_roi_metrics", {"date_from": "2026-01-01", "date_to": "2026-12-31"})
    baseline = ok("ax_set_roi_baseline", {"tool": f"import.test{tag}", "seconds": D("30.0")})
    assert baseline["seconds"] == 30
    later = ok("ax_set_roi_baseline", {"tool": f"import.test{tag}", "baseline_sec": D("45.0"),
                                       "effective_from": "2999-01-01"})
    assert later["baseline_sec"] == 45
    listed = ok("ax_list_roi_baselines", {"tool": f"import.test{tag}"})["baselines"]
    assert [h["baseline_sec"] for h in listed[0]["history"]] == [30, 45]

    assert run.called == {t.name for t in all_tools()}, "a tool this test does not call yet"


def _not_a_number(schema: dict[str, Any]) -> str:
    """A property of the schema that must not be a number."""
    for name, prop in schema.get("properties", {}).items():
        if prop.get("type") in ("string", "boolean", "array", "object"):
            return name
    raise AssertionError(f"no property refuses a number: {schema}")


def test_a_fraction_where_none_belongs_is_a_validation_error_showing_the_number(way_in, erp):
    for tool in all_tools():
        name = _not_a_number(tool.input_schema)
        error, answer = way_in.call(tool.name, {name: D("1.5")})
        assert error is not None and error["code"] == "VALIDATION_ERROR", (tool.name, answer)
        assert "Decimal" not in error["message"], error


def test_a_fraction_where_an_integer_belongs_is_refused_as_json_writes_it(way_in, erp):
    error, _ = way_in.call("ax_create_salesorder", {"customer_account": "CUST-001",
                                                    "lines": [{"item_id": "ITEM-001", "quantity": D("1.5")}]})
    assert error == {"code": "VALIDATION_ERROR", "field": "lines.0.quantity",
                     "message": "lines.0.quantity: 1.5 is not of type 'integer'"}


# --- text that is not valid Unicode ----------------------------------------------------------------


@pytest.mark.parametrize(("arguments", "field"), [
    ({"customer_account": "SUR-1", "name": "Ab\ud800", "currency": "EUR"}, "name"),
    ({"customer_account": "SUR-1", "name": "Ab", "currency": "EUR", "\udcff": "x"}, "\\udcff"),
])
def test_a_lone_surrogate_is_a_validation_error_naming_the_field_and_audited(way_in, erp, arguments, field):
    error, _ = way_in.call("ax_create_customer", arguments)
    if way_in.via == "mcp" and field.startswith("\\"):
        # The MCP SDK turns a lone surrogate in a key into U+FFFD before the hub sees it: the
        # key is then refused as unknown.
        assert error["code"] == "VALIDATION_ERROR" and "\ufffd" in error["message"]
    else:
        assert (error["code"], error["field"]) == ("VALIDATION_ERROR", field)
        assert "lone surrogate" in error["message"]
    entry = AuditEntry.objects.get()
    assert (entry.tool, entry.via, entry.success, entry.error_code) == (
        "ax_create_customer", way_in.via, False, "VALIDATION_ERROR")


def test_a_lone_surrogate_inside_a_batch_or_filters_is_named_by_its_path(way_in, erp):
    error, _ = way_in.call("ax_batch_operations", {"requests": [
        {"tool": "ax_create_customer",
         "arguments": {"customer_account": "SUR-2", "name": "\udfff", "currency": "EUR"}}]})
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "requests.0.arguments.name")
    error, _ = way_in.call("ax_subscribe_webhook", {"event_type": "*", "webhook_url": "http://127.0.0.1:9/",
                                                    "filters": {"customer_account": ["CUST-001", "\ud83d"]}})
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "filters.customer_account.1")


# --- chunked bodies, against a real server ---------------------------------------------------------


@pytest.fixture(scope="module")
def hub() -> Iterator[int]:
    with livehub.serve() as url:
        yield int(url.rsplit(":", 1)[1])


def post_chunked(port: int, path: str, token: str, parts: list[bytes]) -> tuple[int, dict[str, Any]]:
    """POST with Transfer-Encoding: chunked and no Content-Length, as Node's and Go's clients do."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=iter(parts), encode_chunked=True, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, jsoncodec.loads(response.read())
    finally:
        connection.close()


def test_a_chunked_body_is_read_and_its_filter_applies(hub, writer, erp):
    token = ApiToken.issue(writer, MCP_WRITE)[1]
    call_tool("ax_post_payment", {"customer_account": "CUST-001", "amount": D("10.5")}, writer)
    call_tool("ax_create_salesorder", {"customer_account": "CUST-001",
                                       "lines": [{"item_id": "ITEM-001", "quantity": 1}]}, writer)
    status, everything = post_chunked(hub, "/api/tools/ax_list_events", token, [b"{}"])
    assert status == 200 and {e["event"] for e in everything["events"]} >= {"payment.posted", "salesorder.created"}

    status, answer = post_chunked(hub, "/api/tools/ax_list_events", token,
                                  [b'{"event_type": "payment', b'.posted", "lim', b'it": 5.0}'])
    assert status == 200, answer
    assert [(e["event"], e["data"]["amount"]) for e in answer["events"]] == [("payment.posted", D("10.5"))]


def test_a_chunked_body_is_checked_like_any_other(hub, writer, erp):
    token = ApiToken.issue(writer, MCP_WRITE)[1]
    status, answer = post_chunked(hub, "/api/tools/ax_list_events", token, [b'{"colour": ', b'"red"}'])
    assert (status, answer["error"]["code"]) == (422, "VALIDATION_ERROR")
    status, answer = post_chunked(hub, "/api/tools/ax_list_events", token, [b'{"event_type": '])
    assert (status, answer["error"]["code"]) == (400, "INVALID_JSON")


def test_a_chunked_body_over_the_limit_is_413(hub, settings, writer, erp):
    settings.API_MAX_BODY_BYTES = 2048
    token = ApiToken.issue(writer, MCP_WRITE)[1]
    filler = b'{"event_type": "' + b"x" * 1500
    status, answer = post_chunked(hub, "/api/tools/ax_list_events", token, [filler, b"y" * 1500, b'"}'])
    assert (status, answer["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    # Just under the limit, in two chunks: read whole, and then refused for what it says.
    status, answer = post_chunked(hub, "/api/tools/ax_list_events", token, [filler[:1000], b"z" * 900 + b'"}'])
    assert (status, answer["error"]["field"]) == (422, "event_type")


def test_a_chunked_body_a_server_cannot_end_is_refused_with_411(writer, erp):
    # A WSGI server that hands over the raw stream (no wsgi.input_terminated) cannot tell where a
    # chunked body ends: the call is refused rather than run with arguments it did not get.
    token = ApiToken.issue(writer, MCP_WRITE)[1]
    request = RequestFactory().post("/api/tools/ax_list_events", data=b'{"event_type": "payment.posted"}',
                                    content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}",
                                    HTTP_TRANSFER_ENCODING="chunked")
    del request.META["CONTENT_LENGTH"]
    response = views.tool_endpoint(request, "ax_list_events")
    assert response.status_code == 411
    assert json.loads(response.content)["error"]["code"] == "LENGTH_REQUIRED"
    assert not AuditEntry.objects.exists()


def test_mcp_over_http_answers_a_lone_surrogate_with_a_json_error(hub, writer, erp):
    # The MCP SDK refuses the escape while parsing the JSON-RPC message (parse error), before any
    # tool is called: a JSON answer, never a 500.
    token = ApiToken.issue(writer, MCP_WRITE)[1]
    body = ('{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ax_get_customer", '
            '"arguments": {"customer_account": "\\ud800"}}}')
    connection = http.client.HTTPConnection("127.0.0.1", hub, timeout=30)
    try:
        connection.request("POST", "/mcp", body=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"})
        response = connection.getresponse()
        assert response.status == 400
        assert json.loads(response.read())["error"]["code"] == -32700
    finally:
        connection.close()
