"""The read services on PostgreSQL: the accent-insensitive search, its order and the keyset
cursors give the same answers as on SQLite (LIKE is case-sensitive here, timestamps keep their
microseconds, sums are exact decimals).

Run with `make test-integration` (DATABASE_URL=postgres://…/test).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from core.erp import reads, services
from core.erp.models import SalesOrder
from tests.imports.helpers import errors_of, run_import

pytestmark = pytest.mark.integration

if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
    pytest.skip("needs PostgreSQL (DATABASE_URL); run `make test-integration`", allow_module_level=True)


def accounts(page: dict) -> list[str]:
    return [row["customer_account"] for row in page["items"]]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_search_ignores_case_and_accents_on_postgresql(erp, writer):
    services.create_customer("CUST-010", "Schäfer KG", "EUR")
    job = run_import(writer, "customers", "customer_account,name,currency\nIMP-1,Ærø Bådebyg,DKK\n")
    assert job.successful == 1, errors_of(job)
    for query in ("muller", "mueller", "MÜLLER", "Müller"):
        assert accounts(reads.find_customers(query)) == ["CUST-001"], query
    for query in ("schafer", "Schaefer", "SCHÄFER"):
        assert accounts(reads.find_customers(query)) == ["CUST-010"], query
    assert accounts(reads.find_customers("aero bade")) == ["IMP-1"]
    assert accounts(reads.find_customers("Cust-00")) == ["CUST-001", "CUST-002"]
    services.create_item("ITEM-010", "Türschloss", "9.90")
    assert [r["item_id"] for r in reads.list_items("tuer")["items"]] == ["ITEM-010"]


def test_search_order_on_postgresql(erp):
    for account, name in [("X-1", "Krabbe Fisch"), ("X-2", "Haus Abel"), ("X-3", "Abend GmbH"), ("AB-1", "Zeta"),
                          ("AB", "Omega")]:
        services.create_customer(account, name, "EUR")
    expected = ["AB", "AB-1", "X-3", "X-2", "X-1"]
    assert accounts(reads.find_customers("ab")) == expected
    rows, cursor = [], None
    while True:
        page = reads.find_customers("AB", limit=2, cursor=cursor)
        rows += accounts(page)
        if not (cursor := page["next_cursor"]):
            break
    assert rows == expected


def test_order_cursor_under_inserts_on_postgresql(erp):
    def new_order() -> SalesOrder:
        return services.create_sales_order("CUST-001", [{"item_id": "ITEM-001", "quantity": 1}])

    before = [new_order().sales_id for _ in range(5)]
    first = reads.list_salesorders(limit=2, status=["open", "confirmed"])
    for _ in range(3):
        new_order()
    second = reads.list_salesorders(limit=2, status=["open", "confirmed"], cursor=first["next_cursor"])
    third = reads.list_salesorders(limit=2, status=["confirmed", "open"], cursor=second["next_cursor"])
    assert [r["sales_id"] for p in (first, second, third) for r in p["items"]] == before[::-1]
    assert third["next_cursor"] is None
    yesterday = timezone.localdate() - timedelta(days=1)
    SalesOrder.objects.filter(sales_id=before[0]).update(created=timezone.now() - timedelta(days=1))
    assert [r["sales_id"] for r in reads.list_salesorders(date_to=yesterday)["items"]] == [before[0]]


def test_balance_sums_are_exact_on_postgresql(erp):
    invoice = services.create_invoice(services.create_sales_order(
        "CUST-001", [{"item_id": "ITEM-001", "quantity": 1, "unit_price": "0.30"}]).sales_id)
    services.post_payment("CUST-001", "0.10", invoice_id=invoice.invoice_id)
    services.post_payment("CUST-001", "0.10", invoice_id=invoice.invoice_id)
    balance = reads.customer_balance("CUST-001")
    assert balance["open_invoices"] == {"count": 1, "amount": 0.1, "overdue_count": 0, "overdue_amount": 0.0}
    assert balance["balance"] == 0.1
    assert [p["amount"] for p in reads.list_payments(invoice_id=invoice.invoice_id)["items"]] == [0.1, 0.1]


def test_record_history_on_postgresql(erp, writer):
    from core.tools.pipeline import call_tool

    created = call_tool("ax_create_salesorder", {"customer_account": "CUST-001",
                                                 "lines": [{"item_id": "ITEM-001", "quantity": 1}]}, writer, via="mcp")
    invoice = call_tool("ax_create_invoice", {"sales_id": created["sales_id"]}, writer, via="http")
    history = reads.record_history({"sales_id": created["sales_id"], "invoice_id": invoice["invoice_id"]})
    assert [(e["type"], e["via"]) for e in history["events"]] == [("invoice.created", "http"),
                                                                   ("salesorder.created", "mcp")]
    assert [a.tool for a in history["audit"]] == ["ax_create_invoice", "ax_create_salesorder"]
