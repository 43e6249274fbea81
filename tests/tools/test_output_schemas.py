"""Every tool declares the shape of its output, and what it returns has that shape.

One walk through every tool's happy path (and the branches that change the shape: one item or
several, a batch run now or queued, each ROI grouping, a secret generated or given), each
output read back from JSON as a client sees it and validated against the declared schema,
formats included. A tool the walk does not call fails the test, so a new tool needs a line here.
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from jsonschema import Draft202012Validator, FormatChecker

from core.api.openapi import openapi_document
from core.imports import tasks as import_tasks
from core.imports.models import ImportJob
from core.tools import jsonio
from core.tools.pipeline import call_tool
from core.tools.registry import all_tools, get_tool
from core.webhooks.models import Attempt, Delivery

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
FORMATS = FormatChecker()  # date is built in; date-time needs an optional package, so it is checked here


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not RFC3339.match(value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


def as_client_sees_it(output: dict[str, Any]) -> Any:
    """The output after the trip through JSON every way in makes (Decimal -> JSON number)."""
    return json.loads(jsonio.dumps(output))


def shape_errors(tool_name: str, output: dict[str, Any]) -> list[str]:
    validator = Draft202012Validator(get_tool(tool_name).output_schema, format_checker=FORMATS)
    return [f"{tool_name} {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(as_client_sees_it(output))]


@pytest.fixture(autouse=True)
def _local(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    settings.RATE_LIMIT_PER_MINUTE = 10_000


class Walk:
    """Calls tools as the admin and collects what each returned."""

    def __init__(self, user) -> None:
        self.user = user
        self.outputs: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        output = call_tool(tool, arguments, self.user)
        self.outputs.setdefault(tool, []).append(output)
        return output


def walk_every_tool(admin) -> Walk:
    call = Walk(admin)
    # ERP
    call("ax_get_customer", {"customer_account": "CUST-001"})
    call("ax_create_customer", {"customer_account": "CUST-100", "name": "Fabrikam", "currency": "usd",
                                "credit_limit": 2500.5, "segment": "retail", "email": "ap@fabrikam.test"})
    call("ax_update_customer", {"customer_account": "CUST-100", "name": "Fabrikam Inc", "blocked": False})
    call("ax_create_item", {"item_id": "ITEM-100", "name": "Pen", "unit_price": 1.25, "on_hand": 10})
    call("ax_check_inventory", {"item_id": "ITEM-001"})
    call("ax_check_inventory", {"item_ids": ["ITEM-001", "ITEM-002"]})
    call("ax_adjust_inventory", {"item_id": "ITEM-003", "quantity_change": 5, "reason": "count"})
    order = call("ax_create_salesorder", {"customer_account": "CUST-001", "customer_ref": "PO-1", "lines": [
        {"item_id": "ITEM-001", "quantity": 2}, {"item_id": "ITEM-002", "quantity": 1, "unit_price": 99.95}]})
    call("ax_get_salesorder", {"sales_id": order["sales_id"]})
    call("ax_update_salesorder", {"sales_id": order["sales_id"], "status": "confirmed"})
    invoice = call("ax_create_invoice", {"sales_id": order["sales_id"]})
    call("ax_post_payment", {"customer_account": "CUST-001", "amount": 50.25, "invoice_id": invoice["invoice_id"],
                             "reference": "part 1"})
    call("ax_post_payment", {"customer_account": "CUST-001", "amount": 10})
    # reading: searches, lists (a page with a next_cursor and one without), balances
    call("ax_find_customers", {"query": "muller"})
    call("ax_find_customers", {"currency": "EUR", "blocked": False, "limit": 1})
    call("ax_list_items", {"below_reorder_point": False, "limit": 1})
    call("ax_list_salesorders", {"customer_account": "CUST-001", "status": ["confirmed", "invoiced"]})
    call("ax_get_invoice", {"invoice_id": invoice["invoice_id"]})
    call("ax_list_invoices", {"customer_account": "CUST-001", "status": "open"})
    call("ax_get_customer_balance", {"customer_account": "CUST-001"})
    call("ax_get_customer_balance", {"customer_account": "CUST-002"})  # no credit limit: null left
    call("ax_list_payments", {"customer_account": "CUST-001", "limit": 1})
    other = call("ax_create_salesorder", {"customer_account": "CUST-002", "lines": [
        {"item_id": "ITEM-001", "quantity": 1}]})
    call("ax_cancel_salesorder", {"sales_id": other["sales_id"], "reason": "duplicate"})
    # batches
    batch = call("ax_batch_operations", {"requests": [
        {"tool": "ax_get_customer", "arguments": {"customer_account": "CUST-001"}},
        {"tool": "ax_get_customer", "arguments": {"customer_account": "CUST-404"}}]})
    call("ax_get_batch_status", {"batch_id": batch["batch_id"]})
    queued = call("ax_batch_operations", {"async": True, "requests": [
        {"tool": "ax_check_inventory", "arguments": {"item_id": "ITEM-001"}}]})
    call("ax_get_batch_status", {"batch_id": queued["batch_id"]})
    # imports
    job = call("ax_bulk_import", {"type": "customers", "format": "csv", "filename": "c.csv",
                                  "data": "customer_account,name,currency\nCUST-200,A,EUR\nCUST-201,B,XXY\n"})
    import_tasks.run_import(ImportJob.objects.get(job_id=job["job_id"]).pk)
    call("ax_get_import_status", {"job_id": job["job_id"]})
    second = call("ax_bulk_import", {"type": "items", "format": "csv", "data": "item_id,name,unit_price\nI-1,X,1\n"})
    call("ax_cancel_import", {"job_id": second["job_id"]})
    call("ax_resume_import", {"job_id": second["job_id"]})
    synced = call("ax_bulk_import", {"type": "customers", "format": "csv", "mode": "upsert", "mapping_name": "erp",
                                     "mapping": {"Kundennummer": "customer_account", "Firma": "name"},
                                     "data": "Kundennummer,Firma,currency\nCUST-200,A GmbH,EUR\n"})
    import_tasks.run_import(ImportJob.objects.get(job_id=synced["job_id"]).pk)
    call("ax_get_import_status", {"job_id": synced["job_id"]})
    again = call("ax_bulk_import", {"from_job": synced["job_id"], "mode": "update"})
    import_tasks.run_import(ImportJob.objects.get(job_id=again["job_id"]).pk)
    call("ax_get_import_status", {"job_id": again["job_id"]})
    call("ax_list_import_mappings", {"header": ["Kundennummer", "Firma", "Währung"]})
    call("ax_list_import_mappings", {"type": "customers"})
    # webhooks and events
    given = call("ax_subscribe_webhook", {"event_types": ["salesorder.*", "payment.posted"],
                                          "webhook_url": "http://127.0.0.1:9/hook",
                                          "secret": "a-secret-of-16-chars", "filters": {"min_amount": 10}})
    sub = call("ax_subscribe_webhook", {"event_type": "*", "webhook_url": "http://127.0.0.1:9/other"})
    call("ax_list_webhooks", {})
    call("ax_update_webhook", {"subscription_id": sub["subscription_id"], "status": "paused"})
    call("ax_update_webhook", {"subscription_id": sub["subscription_id"], "status": "active"})
    call("ax_rotate_webhook_secret", {"subscription_id": sub["subscription_id"]})
    call("ax_rotate_webhook_secret", {"subscription_id": given["subscription_id"], "secret": "another-secret-16ch"})
    test = call("ax_send_test_webhook", {"subscription_id": sub["subscription_id"]})
    delivery = Delivery.objects.get(delivery_id=test["delivery_id"])
    Attempt.objects.create(delivery=delivery, number=1, started=timezone.now(), status_code=500, duration_ms=12,
                           error_class="http_5xx", error="HTTP 500", response_excerpt="oops")
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED, attempts=1, last_status=500,
                                                   last_error="HTTP 500", finished=timezone.now())
    call("ax_get_webhook_delivery", {"delivery_id": test["delivery_id"]})
    since = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    call("ax_get_failed_webhooks", {"since": since, "limit": 10})
    call("ax_retry_webhook_delivery", {"delivery_id": test["delivery_id"]})
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SUCCEEDED, last_status=200)
    call("ax_retry_webhook_delivery", {"delivery_id": test["delivery_id"]})  # a resend
    call("ax_retry_webhook_delivery", {"all_failed": True})
    call("ax_list_events", {"event_type": "salesorder.*", "since": since})
    call("ax_unsubscribe_webhook", {"subscription_id": given["subscription_id"]})
    # ROI, in every grouping (each adds its own rows)
    today = timezone.now().date().isoformat()
    for group_by in ("tool", "user", "department", "day", "week", "month"):
        call("ax_get_roi_metrics", {"date_from": today, "date_to": today, "group_by": group_by})
    call("ax_set_roi_baseline", {"tool": "import.pricelists", "seconds": 30, "note": "a price list row"})
    call("ax_set_roi_baseline", {"tool": "import.pricelists", "seconds": 45})
    call("ax_set_roi_baseline", {"tool": "import.pricelists", "baseline_sec": 40, "effective_from": "2999-01-01"})
    call("ax_set_roi_baseline", {"tool": "import.later", "baseline_sec": 5, "effective_from": "2999-01-01"})
    call("ax_list_roi_baselines", {})
    call("ax_list_roi_baselines", {"tool": "import.later"})  # none in force yet
    return call


def test_every_tool_declares_an_object_output_schema():
    for tool in all_tools():
        assert tool.output_schema is not None, f"{tool.name} declares no output schema"
        assert tool.output_schema["type"] == "object", tool.name
        Draft202012Validator.check_schema(tool.output_schema)


def test_every_tool_returns_what_its_output_schema_says(admin, erp):
    walk = walk_every_tool(admin)
    assert sorted(walk.outputs) == [tool.name for tool in all_tools()], "every tool is called"
    problems = [problem for name, outputs in walk.outputs.items() for output in outputs
                for problem in shape_errors(name, output)]
    assert problems == []
    # The walk reached the branches whose shape differs.
    outputs = walk.outputs
    assert {"item_id", "items"} <= {key for o in outputs["ax_check_inventory"] for key in o}
    assert [("secret" in o) for o in outputs["ax_subscribe_webhook"]] == [False, True]
    assert {o["status"] for o in outputs["ax_get_batch_status"]} == {"completed", "queued"}
    assert {"by_day", "by_week", "by_month"} <= {key for o in outputs["ax_get_roi_metrics"] for key in o}
    assert outputs["ax_get_import_status"][0]["errors"], "the status shows a row error"
    assert outputs["ax_get_webhook_delivery"][0]["attempt_log"], "the delivery shows its attempt"


def test_money_in_outputs_is_a_json_number_with_two_decimals(admin, erp):
    order = call_tool("ax_create_salesorder", {"customer_account": "CUST-001", "lines": [
        {"item_id": "ITEM-001", "quantity": 3, "unit_price": 0.1}]}, admin)
    text = jsonio.dumps(order)
    assert '"total_amount": 0.3,' in text and '"unit_price": 0.1,' in text
    assert get_tool("ax_create_salesorder").output_schema["properties"]["total_amount"]["type"] == "number"


@pytest.mark.parametrize("name", ["ax_get_customer", "ax_create_salesorder", "ax_get_roi_metrics"])
def test_a_wrong_output_is_caught(name):
    # The schemas are closed: the check above could fail.
    assert shape_errors(name, {"unexpected": 1})


def test_tool_list_and_openapi_carry_the_output_schema(reader_api, client):
    listed = {t["name"]: t for t in reader_api.get("/api/tools").json()["tools"]}
    document = openapi_document("http://testserver")
    for tool in all_tools():
        assert listed[tool.name]["output_schema"] == tool.output_schema
        ok = document["paths"][f"/api/tools/{tool.name}"]["post"]["responses"]["200"]
        assert ok["content"]["application/json"]["schema"] == tool.output_schema


def test_tools_page_shows_the_output_schema(client, reader):
    client.force_login(reader)
    response = client.get("/tools/?q=ax_get_customer")
    assert response.status_code == 200
    html = response.content.decode()
    # "balance" is a field of the output only, not of the arguments.
    assert "Output schema" in html and "&quot;balance&quot;" in html
