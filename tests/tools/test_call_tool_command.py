"""`manage.py call_tool TOOL 'JSON' --user USERNAME`: the tool's JSON on stdout, errors as JSON + exit 1."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.audit.models import AuditEntry
from core.erp.models import Customer, SalesOrder
from core.events.models import Event
from core.webhooks import services as webhook_services
from core.webhooks.models import Delivery
from tests.webhooks.helpers import subprocess_env

ROOT = Path(__file__).resolve().parents[2]
ORDER = '{"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 2}]}'


def run(*args: str) -> dict:
    out = StringIO()
    call_command("call_tool", *args, stdout=out)
    return json.loads(out.getvalue())


def run_failing(*args: str) -> dict:
    """Run a call that must fail: exit status 1 and the error JSON on stdout."""
    out = StringIO()
    with pytest.raises(SystemExit) as exc:
        call_command("call_tool", *args, stdout=out)
    assert exc.value.code == 1
    return json.loads(out.getvalue())["error"]


def test_prints_the_tools_json_output(writer, erp):
    output = run("ax_create_salesorder", ORDER, "--user", "writer")
    assert output["sales_id"].startswith("SO-")
    assert (output["total_amount"], output["currency"], output["status"]) == (200.0, "EUR", "open")
    assert SalesOrder.objects.get(sales_id=output["sales_id"]).customer.customer_account == "CUST-001"
    entry = AuditEntry.objects.get()
    assert (entry.via, entry.username, entry.success) == ("cli", "writer", True)


def test_read_tool_output(reader, erp):
    output = run("ax_get_customer", '{"customer_account": "CUST-001"}', "--user", "reader")
    assert output["name"] == "Müller GmbH"
    assert output["credit_limit"] == 10000.0


def test_money_stays_exact(writer, erp):
    args = '{"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 3, "unit_price": 0.1}]}'
    output = run("ax_create_salesorder", args, "--user", "writer")
    assert output["total_amount"] == 0.3
    assert SalesOrder.objects.get(sales_id=output["sales_id"]).total_amount == Decimal("0.30")


def test_business_error_prints_error_json_and_exits_1(writer, erp):
    error = run_failing("ax_create_salesorder", ORDER.replace("CUST-001", "CUST-999"), "--user", "writer")
    assert error["code"] == "CUST_NOT_FOUND"
    assert error["field"] == "customer_account"
    assert "CUST-999" in error["message"]
    assert SalesOrder.objects.count() == 0


def test_existing_customer_is_an_error(writer, erp):
    error = run_failing(
        "ax_create_customer", '{"customer_account": "CUST-001", "name": "X", "currency": "EUR"}', "--user", "writer"
    )
    assert error["code"] == "CUST_ALREADY_EXISTS"
    assert Customer.objects.get(customer_account="CUST-001").name == "Müller GmbH"


def test_role_is_enforced(reader, erp):
    assert run_failing("ax_create_salesorder", ORDER, "--user", "reader")["code"] == "FORBIDDEN"
    assert SalesOrder.objects.count() == 0


def test_unknown_tool_is_an_error(writer):
    assert run_failing("ax_nope", "{}", "--user", "writer")["code"] == "TOOL_NOT_FOUND"


def test_validation_error_names_the_field(writer, erp):
    error = run_failing(
        "ax_create_salesorder",
        '{"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": "2"}]}',
        "--user",
        "writer",
    )
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "lines.0.quantity")


@pytest.mark.parametrize("arguments", ["{not json", '{"customer_account": NaN}', "", "[" * 100_000])
def test_invalid_json_is_an_invalid_json_error(writer, arguments):
    error = run_failing("ax_get_customer", arguments, "--user", "writer")
    assert error["code"] == "INVALID_JSON"
    assert AuditEntry.objects.count() == 0


def test_arguments_that_are_not_an_object_are_a_validation_error(writer):
    assert run_failing("ax_get_customer", '["CUST-001"]', "--user", "writer")["code"] == "VALIDATION_ERROR"


def test_arguments_default_to_an_empty_object(writer):
    error = run_failing("ax_get_customer", "--user", "writer")
    assert error["code"] == "VALIDATION_ERROR" and "customer_account" in error["message"]


def test_idempotency_key_replays(writer, erp):
    first = run("ax_create_salesorder", ORDER, "--user", "writer", "--idempotency-key", "cli-1")
    second = run("ax_create_salesorder", ORDER, "--user", "writer", "--idempotency-key", "cli-1")
    assert first["sales_id"] == second["sales_id"]
    assert SalesOrder.objects.count() == 1


def test_unknown_user_is_a_command_error(db):
    with pytest.raises(CommandError, match="ghost"):
        call_command(
            "call_tool", "ax_get_customer", '{"customer_account": "CUST-001"}', "--user", "ghost", stdout=StringIO()
        )


def test_inactive_user_is_a_command_error(writer):
    writer.is_active = False
    writer.save()
    with pytest.raises(CommandError):
        call_command(
            "call_tool", "ax_get_customer", '{"customer_account": "CUST-001"}', "--user", "writer", stdout=StringIO()
        )


# --- a real process --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_deliveries_of_its_events_exist_when_the_process_exits(writer, erp, settings):
    """The fan-out runs on a background thread (EVENTS_FANOUT_IN_BACKGROUND), which dies with a
    short-lived process: the command hands its events over before it exits, so the delivery is
    there at once rather than when the dispatcher's sweep finds the event seconds later."""
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    sub, _ = webhook_services.subscribe(event_type="salesorder.created", webhook_url="http://127.0.0.1:9/hook")
    done = subprocess.run([sys.executable, "manage.py", "call_tool", "ax_create_salesorder", ORDER, "--user", "writer"],
                          cwd=ROOT, env=subprocess_env(EVENTS_FANOUT_IN_BACKGROUND="true"), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    sales_id = json.loads(done.stdout)["sales_id"]
    event = Event.objects.get(type="salesorder.created")
    assert event.fanned_out and event.data["sales_id"] == sales_id
    delivery = Delivery.objects.get(subscription=sub)
    assert (delivery.event_id, delivery.status) == (event.pk, "pending")
