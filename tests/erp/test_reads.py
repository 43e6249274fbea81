"""The read services (core/erp/reads.py): search, filters, keyset pages, balances, and the
indexes that serve them."""

from __future__ import annotations

import base64
import importlib
import json
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.erp import reads, services
from core.erp.models import Customer, Invoice, Item, Payment, SalesOrder, search_text
from core.errors import ToolError
from core.tools.pipeline import call_tool
from tests.imports.helpers import errors_of, run_import

pytestmark = pytest.mark.django_db


def accounts(page: dict) -> list[str]:
    return [row["customer_account"] for row in page["items"]]


def order(account: str = "CUST-001", item: str = "ITEM-001", quantity: int = 1, **options) -> SalesOrder:
    return services.create_sales_order(account, [{"item_id": item, "quantity": quantity}], **options)


def every_page(read, **arguments) -> list[dict]:
    rows, cursor = [], None
    while True:
        page = read(**arguments, cursor=cursor)
        rows += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


def refused(call, *args, **kwargs) -> ToolError:
    with pytest.raises(ToolError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- the search text ------------------------------------------------------------------------


def test_search_text_is_casefolded_without_accents_and_with_the_umlaut_spelling():
    assert search_text("Müller GmbH") == "muller gmbh|mueller gmbh"
    assert search_text("Société Générale") == "societe generale"
    assert search_text("Straße & Co.") == "strasse co"
    assert search_text("u\u0308ber_all") == "uber all|ueber all"  # decomposed input, underscore as a space
    assert search_text("Ærø") == "aero"


def test_search_name_follows_every_write_of_a_name(erp, writer):
    assert Customer.objects.get(customer_account="CUST-001").search_name == "muller gmbh|mueller gmbh"
    created = services.create_customer("CUST-010", "Schäfer KG", "EUR")
    assert created.search_name == "schafer kg|schaefer kg"
    services.update_customer("CUST-010", name="Böhm AG")
    assert Customer.objects.get(customer_account="CUST-010").search_name == "bohm ag|boehm ag"
    assert services.create_item("ITEM-010", "Tür", "1.00").search_name == "tur|tuer"

    job = run_import(writer, "customers", "customer_account,name,currency\nIMP-1,Jürgen Öl,EUR\nCUST-010,Café,EUR\n",
                     mode="upsert")
    assert (job.successful, job.failed) == (2, 0), errors_of(job)
    assert Customer.objects.get(customer_account="IMP-1").search_name == "jurgen ol|juergen oel"
    assert Customer.objects.get(customer_account="CUST-010").search_name == "cafe"
    job = run_import(writer, "items", "item_id,name,unit_price\nIMP-I,Kühler,5\nITEM-001,Stuhl Ö,100.00\n",
                     mode="upsert")
    assert (job.successful, job.failed) == (2, 0), errors_of(job)
    assert Item.objects.get(item_id="IMP-I").search_name == "kuhler|kuehler"
    assert Item.objects.get(item_id="ITEM-001").search_name == "stuhl o|stuhl oe"


def test_the_data_migration_fills_search_names_of_existing_rows(erp):
    Customer.objects.update(search_name="")
    Item.objects.update(search_name="")
    importlib.import_module("core.erp.migrations.0003_fill_search_names").fill(apps, None)
    assert Customer.objects.get(customer_account="CUST-001").search_name == "muller gmbh|mueller gmbh"
    assert Item.objects.get(item_id="ITEM-002").search_name == "desk"


# --- customers ------------------------------------------------------------------------------


def test_find_customers_ignores_case_and_accents(erp):
    services.create_customer("CUST-010", "Schäfer KG", "EUR")
    for query in ("muller", "mueller", "MÜLLER", "Müller", "mull"):
        assert accounts(reads.find_customers(query)) == ["CUST-001"], query
    for query in ("schafer", "schaefer", "SCHÄFER", "fer k"):
        assert accounts(reads.find_customers(query)) == ["CUST-010"], query
    assert accounts(reads.find_customers("cust-002")) == ["CUST-002"]
    assert reads.find_customers("nobody")["items"] == []


def test_find_customers_puts_the_best_matches_first(erp):
    for account, name in [("X-1", "Krabbe Fisch"), ("X-2", "Haus Abel"), ("X-3", "Abend GmbH"), ("AB-1", "Zeta"),
                          ("AB", "Omega")]:
        services.create_customer(account, name, "EUR")
    # exact account, account prefix, name prefix, a word's prefix, anywhere
    assert accounts(reads.find_customers("ab")) == ["AB", "AB-1", "X-3", "X-2", "X-1"]
    # The same order over pages of one.
    assert [r["customer_account"] for r in every_page(reads.find_customers, query="ab", limit=1)] == [
        "AB", "AB-1", "X-3", "X-2", "X-1"]
    # Within a rank: matches by account in the account's order, matches by name in the name's.
    assert accounts(reads.find_customers("cust-00")) == ["CUST-001", "CUST-002"]
    services.create_customer("A-9", "Abendrot", "EUR")
    assert accounts(reads.find_customers("abend")) == ["X-3", "A-9"]


def test_find_customers_filters(erp):
    services.create_customer("CUST-010", "Blocked One", "EUR", segment="Retail")
    services.update_customer("CUST-010", blocked=True)
    assert accounts(reads.find_customers(currency="usd")) == ["CUST-002"]
    assert accounts(reads.find_customers(blocked=True)) == ["CUST-010"]
    assert accounts(reads.find_customers(blocked=False)) == ["CUST-001", "CUST-002"]
    assert accounts(reads.find_customers(segment="retail")) == ["CUST-010"]
    assert accounts(reads.find_customers(query="one", currency="EUR", blocked=True)) == ["CUST-010"]
    row = reads.find_customers("CUST-001")["items"][0]
    assert row == {"customer_account": "CUST-001", "name": "Müller GmbH", "currency": "EUR", "credit_limit": 10000.0,
                   "balance": 0.0, "segment": "", "email": "", "blocked": False}
    assert refused(reads.find_customers, currency="EURO").code == "INVALID_CURRENCY"
    assert refused(reads.find_customers, blocked="yes").field == "blocked"


# --- pages and cursors ----------------------------------------------------------------------------


def test_pages_of_customers_add_up_to_the_whole_list(erp):
    for n in range(7):
        services.create_customer(f"P-{n}", f"Page {n}", "EUR")
    whole = reads.find_customers(limit=500)
    assert whole["next_cursor"] is None and len(whole["items"]) == 9
    assert every_page(reads.find_customers, limit=2) == whole["items"]
    first = reads.find_customers(limit=9)
    assert first["next_cursor"] is None  # exactly one page: no empty page after it


def test_the_cursor_stays_put_while_orders_are_added(erp):
    before = [order().sales_id for _ in range(5)]
    first = reads.list_salesorders(limit=2)
    assert [r["sales_id"] for r in first["items"]] == before[::-1][:2]
    newer = [order().sales_id for _ in range(3)]  # added between the pages: newer than every page's rows
    second = reads.list_salesorders(limit=2, cursor=first["next_cursor"])
    order()
    third = reads.list_salesorders(limit=2, cursor=second["next_cursor"])
    seen = [r["sales_id"] for page in (first, second, third) for r in page["items"]]
    assert seen == before[::-1]  # none repeated, none skipped
    assert third["next_cursor"] is None
    assert [r["sales_id"] for r in reads.list_salesorders(limit=3)["items"]][1:] == newer[::-1][:2]


def test_the_cursor_of_rows_with_one_creation_time_goes_by_id(erp):
    orders = [order() for _ in range(4)]
    SalesOrder.objects.update(created=orders[0].created)
    assert [r["sales_id"] for r in every_page(reads.list_salesorders, limit=1)] == [o.sales_id for o in orders][::-1]


def test_a_bad_cursor_is_a_validation_error_naming_it(erp):
    services.create_customer("CUST-010", "Third", "EUR")
    cursor = reads.find_customers(limit=1)["next_cursor"]
    forged = base64.urlsafe_b64encode(json.dumps({"f": "x", "p": [1]}).encode()).decode()
    wrong_type = json.loads(base64.urlsafe_b64decode(cursor + "=="))
    wrong_type["p"] = [True, 1]
    for bad in ("not a cursor", "", "////", forged, 17,
                base64.urlsafe_b64encode(json.dumps(wrong_type).encode()).decode()):
        error = refused(reads.find_customers, limit=1, cursor=bad)
        assert (error.code, error.field) == ("VALIDATION_ERROR", "cursor"), bad
    # A cursor of other filters, or of another list, is refused too.
    assert refused(reads.find_customers, currency="EUR", cursor=cursor).field == "cursor"
    assert refused(reads.list_items, cursor=cursor).field == "cursor"
    assert accounts(reads.find_customers(limit=1, cursor=cursor)) == ["CUST-002"]


@pytest.mark.parametrize("limit", [0, 501, -1, True, "5", 2.5])
def test_limit_is_a_whole_number_from_1_to_500(erp, limit):
    error = refused(reads.find_customers, limit=limit)
    assert (error.code, error.field) == ("VALIDATION_ERROR", "limit")


# --- items -----------------------------------------------------------------------------------------


def test_list_items_with_stock_search_and_reorder_filter(erp):
    order(item="ITEM-002", quantity=4)  # desk: 5 on hand, 4 reserved, reorder point 2
    rows = {r["item_id"]: r for r in reads.list_items()["items"]}
    assert list(rows) == ["ITEM-001", "ITEM-002", "ITEM-003"]
    assert rows["ITEM-002"] == {"item_id": "ITEM-002", "name": "Desk", "unit_price": 450.5, "on_hand": 5,
                                "reserved": 4, "available": 1, "reorder_point": 2, "below_reorder_point": True}
    below = reads.list_items(below_reorder_point=True)["items"]
    assert [r["item_id"] for r in below] == ["ITEM-002"]
    assert [r["item_id"] for r in reads.list_items(below_reorder_point=False)["items"]] == ["ITEM-001", "ITEM-003"]
    services.create_item("ITEM-010", "Schreibtischlampe", "20.00")
    assert [r["item_id"] for r in reads.list_items("lamp")["items"]] == ["ITEM-003", "ITEM-010"]
    assert [r["item_id"] for r in reads.list_items("item-00")["items"]] == ["ITEM-001", "ITEM-002", "ITEM-003"]


def test_open_order_lines_of_an_item(erp):
    kept = order(item="ITEM-001", quantity=3)
    gone = order(item="ITEM-001", quantity=1)
    services.cancel_sales_order(gone.sales_id)
    rows = reads.open_order_lines("ITEM-001")["items"]
    assert [(r["sales_id"], r["quantity"], r["customer_account"]) for r in rows] == [(kept.sales_id, 3, "CUST-001")]
    assert refused(reads.open_order_lines, "NOPE").code == "ITEM_NOT_FOUND"


# --- sales orders -------------------------------------------------------------------------------------


def test_list_salesorders_filters(erp):
    a = order(quantity=1, customer_ref="PO-1")
    b = services.create_sales_order("CUST-002", [{"item_id": "ITEM-001", "quantity": 2},
                                                 {"item_id": "ITEM-002", "quantity": 1}])
    c = order(quantity=5)
    services.update_sales_order(c.sales_id, status="confirmed")
    SalesOrder.objects.filter(pk=a.pk).update(created=timezone.now() - timedelta(days=10))

    def ids(**filters) -> list[str]:
        return [r["sales_id"] for r in reads.list_salesorders(**filters)["items"]]

    assert ids() == [c.sales_id, b.sales_id, a.sales_id]
    assert ids(customer_account="CUST-001") == [c.sales_id, a.sales_id]
    assert ids(status="confirmed") == [c.sales_id]
    assert ids(status=["open", "confirmed"], customer_account="CUST-001") == [c.sales_id, a.sales_id]
    today = timezone.localdate()
    assert ids(date_from=today.isoformat()) == [c.sales_id, b.sales_id]
    assert ids(date_to=(today - timedelta(days=1)).isoformat()) == [a.sales_id]
    assert ids(date_from=today - timedelta(days=10), date_to=today - timedelta(days=10)) == [a.sales_id]
    assert ids(customer_ref="PO-1") == [a.sales_id]
    assert ids(min_amount=500) == [c.sales_id, b.sales_id]  # 500.00 EUR, 715.55 USD
    assert ids(min_amount="500.01") == [b.sales_id]
    row = reads.list_salesorders(customer_account="CUST-002")["items"][0]
    assert row == {"sales_id": b.sales_id, "customer_account": "CUST-002", "customer_name": "Contoso Ltd",
                   "status": "open", "currency": "USD", "total_amount": 715.55, "customer_ref": "",
                   "created": b.created.isoformat(), "line_count": 2}


def test_min_amount_reads_the_few_orders_above_it_by_the_amount_index(erp, monkeypatch):
    orders = [order(quantity=q) for q in (1, 7, 2, 9, 8, 1, 6)]
    SalesOrder.objects.filter(pk=orders[0].pk).update(created=timezone.now() + timedelta(seconds=5))
    expected = [o.sales_id for o in sorted((o for o in orders if o.total_amount >= orders[6].total_amount),
                                          key=lambda o: o.pk, reverse=True)]
    narrowed = []
    few_above = reads._few_above
    monkeypatch.setattr(reads, "_few_above", lambda qs, amount: narrowed.append(amount) or few_above(qs, amount))
    for few in (100, 2):  # the amount index's ids, then (more than 2 above) the walk down the created index
        monkeypatch.setattr(reads, "FEW_ABOVE", few)
        rows = every_page(reads.list_salesorders, min_amount=orders[6].total_amount, limit=2)
        assert [r["sales_id"] for r in rows] == expected
    assert narrowed  # min_amount alone is narrowed; with a customer the customer's index serves it
    narrowed.clear()
    reads.list_salesorders(customer_account="CUST-001", min_amount=1)
    assert not narrowed


def test_list_salesorders_refuses_bad_filters(erp):
    assert refused(reads.list_salesorders, customer_account="CUST-404").code == "CUST_NOT_FOUND"
    assert refused(reads.list_salesorders, status="shipped").field == "status"
    assert refused(reads.list_salesorders, status=[]).field == "status"
    assert refused(reads.list_salesorders, date_from="2026-02-30").field == "date_from"
    assert refused(reads.list_salesorders, date_from="2026-03-02", date_to="2026-03-01").field == "date_to"
    assert refused(reads.list_salesorders, min_amount="lots").code == "INVALID_NUMBER"


def test_list_salesorders_reads_a_page_in_one_query(erp, django_assert_num_queries):
    for _ in range(30):
        order()
    with django_assert_num_queries(1):
        page = reads.list_salesorders(limit=25)
    assert len(page["items"]) == 25 and {r["line_count"] for r in page["items"]} == {1}
    page = reads.list_salesorders(customer_account="CUST-001", limit=25)
    with django_assert_num_queries(2):  # the customer's key, then the page
        rest = reads.list_salesorders(customer_account="CUST-001", cursor=page["next_cursor"], limit=25)
    assert len(rest["items"]) == 5


# --- invoices, balance, payments ----------------------------------------------------------------------


@pytest.fixture
def billed(erp):
    """CUST-001: one invoice paid in part and overdue, one paid, one order still open."""
    first = services.create_invoice(order(quantity=2).sales_id)  # 200.00
    services.post_payment("CUST-001", "50.00", invoice_id=first.invoice_id, reference="part")
    Invoice.objects.filter(pk=first.pk).update(due_date=timezone.localdate() - timedelta(days=3))
    second = services.create_invoice(order(quantity=1).sales_id)  # 100.00
    services.post_payment("CUST-001", "100.00", invoice_id=second.invoice_id)
    services.post_payment("CUST-001", "10.00")  # on account
    open_order = order(quantity=3)  # 300.00, not invoiced
    return {"first": first, "second": second, "open": open_order}


def test_list_invoices_with_open_amount_and_due_date(billed):
    first, second = billed["first"], billed["second"]

    def ids(**filters) -> list[str]:
        return [r["invoice_id"] for r in reads.list_invoices(**filters)["items"]]

    assert ids() == [second.invoice_id, first.invoice_id]
    assert ids(status="open") == [first.invoice_id]
    assert ids(status="paid") == [second.invoice_id]
    assert ids(overdue=True) == [first.invoice_id]
    assert ids(overdue=False) == [second.invoice_id]
    assert ids(customer_account="CUST-002") == []
    row = reads.list_invoices(status="open")["items"][0]
    assert (row["amount"], row["paid_amount"], row["open_amount"], row["overdue"], row["sales_id"]) == (
        200.0, 50.0, 150.0, True, first.sales_order.sales_id)
    assert row["due_date"] == (timezone.localdate() - timedelta(days=3)).isoformat()
    assert refused(reads.list_invoices, status="overdue").field == "status"


def test_get_invoice_with_lines_and_payments(billed):
    found = reads.get_invoice(billed["first"].invoice_id)
    assert (found["open_amount"], found["status"], found["customer_name"]) == (150.0, "open", "Müller GmbH")
    assert found["lines"] == [{"line_number": 1, "item_id": "ITEM-001", "quantity": 2, "unit_price": 100.0,
                               "line_amount": 200.0}]
    assert [(p["amount"], p["reference"]) for p in found["payments"]] == [(50.0, "part")]
    assert refused(reads.get_invoice, "INV-404").code == "INVOICE_NOT_FOUND"


def test_customer_balance(billed):
    balance = reads.customer_balance("CUST-001")
    assert balance == {
        "customer_account": "CUST-001", "name": "Müller GmbH", "currency": "EUR",
        "balance": 140.0,  # 300 invoiced - 160 paid
        "credit_limit": 10000.0, "credit_available": 9860.0, "blocked": False,
        "open_invoices": {"count": 1, "amount": 150.0, "overdue_count": 1, "overdue_amount": 150.0},
        "open_orders": {"count": 1, "amount": 300.0},
    }
    no_limit = reads.customer_balance("CUST-002")
    assert (no_limit["credit_available"], no_limit["open_orders"], no_limit["open_invoices"]["amount"]) == (
        None, {"count": 0, "amount": 0.0}, 0.0)
    assert refused(reads.customer_balance, "CUST-404").code == "CUST_NOT_FOUND"


def test_list_payments_filters(billed):
    first = billed["first"]
    payments = list(Payment.objects.order_by("id"))
    Payment.objects.filter(pk=payments[0].pk).update(created=timezone.now() - timedelta(days=5))
    ids = lambda **f: [r["payment_id"] for r in reads.list_payments(**f)["items"]]  # noqa: E731
    assert ids() == [p.payment_id for p in payments[::-1]]
    assert ids(customer_account="CUST-001") == [p.payment_id for p in payments[::-1]]
    assert ids(customer_account="CUST-002") == []
    assert ids(invoice_id=first.invoice_id) == [payments[0].payment_id]
    assert ids(date_to=timezone.localdate() - timedelta(days=1)) == [payments[0].payment_id]
    assert ids(date_from=timezone.localdate()) == [p.payment_id for p in payments[1:][::-1]]
    row = reads.list_payments(invoice_id=first.invoice_id)["items"][0]
    assert (row["customer_account"], row["amount"], row["currency"], row["invoice_id"]) == (
        "CUST-001", 50.0, "EUR", first.invoice_id)
    assert refused(reads.list_payments, invoice_id="INV-404").code == "INVOICE_NOT_FOUND"


# --- a record's history ---------------------------------------------------------------------------------


def test_record_history_lists_the_events_and_the_calls_behind_them(erp, writer):
    call_tool("ax_update_customer", {"customer_account": "CUST-001", "segment": "retail"}, writer, via="http")
    created = call_tool("ax_create_salesorder", {"customer_account": "CUST-001",
                                                 "lines": [{"item_id": "ITEM-001", "quantity": 1}]}, writer, via="mcp")
    history = reads.record_history({"customer_account": "CUST-001"})
    assert [e["type"] for e in history["events"]] == ["salesorder.created", "customer.updated"]
    assert [e["via"] for e in history["events"]] == ["mcp", "http"]
    assert [a.tool for a in history["audit"]] == ["ax_create_salesorder", "ax_update_customer"]
    invoice = call_tool("ax_create_invoice", {"sales_id": created["sales_id"]}, writer, via="http")
    call_tool("ax_post_payment", {"customer_account": "CUST-001", "amount": 10, "invoice_id": invoice["invoice_id"]},
              writer, via="cli")
    order_history = reads.record_history({"sales_id": created["sales_id"], "invoice_id": invoice["invoice_id"]})
    assert [e["type"] for e in order_history["events"]] == ["payment.posted", "invoice.created", "salesorder.created"]
    assert [a.tool for a in order_history["audit"]] == ["ax_post_payment", "ax_create_invoice", "ax_create_salesorder"]
    assert reads.record_history({"customer_account": "CUST-002"})["events"] == []
    recent = reads.record_history({"customer_account": "CUST-001"}, since=timezone.now() + timedelta(minutes=1))
    assert recent == {"events": [], "audit": []}


def test_salesorder_detail_with_its_invoice(billed):
    first = billed["first"]
    found = reads.salesorder_detail(first.sales_order.sales_id)
    assert (found["status"], found["customer_name"], found["invoice"]["invoice_id"]) == (
        "invoiced", "Müller GmbH", first.invoice_id)
    assert found["invoice"]["open_amount"] == 150.0 and len(found["invoice"]["payments"]) == 1
    assert reads.salesorder_detail(billed["open"].sales_id)["invoice"] is None
    assert refused(reads.salesorder_detail, "SO-404").code == "ORDER_NOT_FOUND"


# --- indexes ---------------------------------------------------------------------------------------------


def plans(read, **arguments) -> list[str]:
    """SQLite's query plan of every statement a read runs."""
    with CaptureQueriesContext(connection) as captured:
        read(**arguments)
    found = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            cursor.execute("EXPLAIN QUERY PLAN " + query["sql"])
            found.append(" / ".join(row[-1] for row in cursor.fetchall()))
    return found


@pytest.mark.skipif(connection.vendor != "sqlite", reason="reads SQLite's EXPLAIN QUERY PLAN")
@pytest.mark.parametrize(("read", "arguments", "index"), [
    (reads.list_salesorders, {}, "salesorder_created"),
    (reads.list_salesorders, {"customer_account": "CUST-001"}, "salesorder_customer_created"),
    (reads.list_salesorders, {"status": "invoiced"}, "salesorder_status_created"),
    (reads.list_salesorders, {"customer_ref": "PO-1"}, "salesorder_customer_ref"),
    (reads.list_invoices, {}, "invoice_created"),
    (reads.list_invoices, {"customer_account": "CUST-001"}, "invoice_customer_created"),
    (reads.list_invoices, {"status": "open"}, "invoice_status_created"),
    (reads.list_payments, {}, "payment_created"),
    (reads.list_payments, {"customer_account": "CUST-001"}, "payment_customer_created"),
    (reads.find_customers, {}, "sqlite_autoindex_erp_customer"),
    (reads.list_items, {}, "sqlite_autoindex_erp_item"),
])
def test_each_list_reads_through_an_index(erp, read, arguments, index):
    for _ in range(3):
        invoice = services.create_invoice(order(customer_ref="PO-1").sales_id)
        services.post_payment("CUST-001", "1.00", invoice_id=invoice.invoice_id)
    first = read(limit=1, **arguments)
    assert first["next_cursor"]
    for cursor in (None, first["next_cursor"]):
        plan = plans(read, limit=1, cursor=cursor, **arguments)[-1]
        assert index in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # the index gives the order: the matches are not sorted
        # A table is only scanned in an index's order (up to the page's end), never as a whole.
        assert all("USING" in step for step in plan.split(" / ") if step.startswith("SCAN")), plan


@pytest.mark.skipif(connection.vendor != "sqlite", reason="reads SQLite's EXPLAIN QUERY PLAN")
def test_min_amount_alone_reads_the_amount_index(erp):
    for quantity in (1, 5, 9):
        order(quantity=quantity)
    probe, page = plans(reads.list_salesorders, min_amount=100)
    assert "salesorder_amount" in probe and "SCAN" not in probe.replace("SEARCH", ""), probe
    assert "USING INTEGER PRIMARY KEY" in page or "rowid" in page.lower(), page  # the ids found, no walk
