"""customer.created has one source: the serializer. The import builds each event's data in the
database (core.imports.specs.CustomersSpec.event_data), key for key from the serializer; what
it stores equals the serializer's output for the same customer, and the event a tool call
stores, down to how money is written."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core import jsoncodec
from core.erp.models import Customer
from core.erp.serializers import customer_data
from core.events.bus import jsonable
from core.events.models import Event
from core.tools.pipeline import call_tool
from tests.imports.helpers import run_import

# Whole amounts, one and two places, a float that is the amount to the cent, and the largest
# amount, which no float holds (the serializer then writes the Decimal itself).
AMOUNTS = ["0", "0.10", "12.34", "100", "1000.50", "35184372088832.01", "9999999999999999.99"]
HEADER = "customer_account,name,currency,credit_limit,segment,email\n"


def exact(data: dict) -> list[tuple[str, str, str]]:
    """Each value with its type and text (a JSON object's key order aside: jsonb sorts keys)."""
    return sorted((key, type(value).__name__, str(value)) for key, value in data.items() if key != "caused_by")


@pytest.mark.parametrize("batch_size", [1000, 2])  # one chunk, and rows written one chunk at a time
def test_an_imported_customers_event_data_is_the_serializers_output(writer, batch_size):
    rows = [(f"E-{n}", f"Nämé O'Brien {n}", "EUR" if n % 2 else "USD", amount, "retail" if n % 3 else "",
             f"e{n}@x.example" if n % 2 else "") for n, amount in enumerate(AMOUNTS)]
    job = run_import(writer, "customers", HEADER + "".join(",".join(r) + "\n" for r in rows), batch_size=batch_size)
    assert job.successful == len(rows)
    for account, name, currency, amount, segment, email in rows:
        event = Event.objects.get(type="customer.created", data__customer_account=account)
        customer = Customer(customer_account=account, name=name, currency=currency,
                            credit_limit=Decimal(amount).quantize(Decimal("0.01")), segment=segment, email=email)
        assert exact(event.data) == exact(jsonable(customer_data(customer))), amount


def test_an_imported_customers_event_reads_as_a_tool_calls_event(writer):
    fields = {"name": "Müller", "currency": "EUR", "segment": "wholesale", "email": "m@x.example"}
    for n, amount in enumerate(AMOUNTS):
        call_tool("ax_create_customer", {"customer_account": f"T-{n}", "credit_limit": Decimal(amount), **fields},
                  writer)
    run_import(writer, "customers", HEADER + "".join(
        f"I-{n},{fields['name']},EUR,{amount},wholesale,m@x.example\n" for n, amount in enumerate(AMOUNTS)))
    for n, amount in enumerate(AMOUNTS):
        by_tool = Event.objects.get(type="customer.created", data__customer_account=f"T-{n}").data
        by_import = Event.objects.get(type="customer.created", data__customer_account=f"I-{n}").data
        assert by_import["credit_limit"] == by_tool["credit_limit"] == Decimal(amount), amount
        # What a webhook receiver gets: the same text, byte for byte, but for the account.
        body = {k: v for k, v in by_tool.items() if k not in ("caused_by", "customer_account")}
        assert jsoncodec.dumps({k: v for k, v in by_import.items() if k not in ("caused_by", "customer_account")},
                               sort_keys=True) == jsoncodec.dumps(body, sort_keys=True), amount
        assert exact(by_import) == exact({**by_tool, "customer_account": f"I-{n}"}), amount
