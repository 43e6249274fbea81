"""The records pages: customers, items and sales orders, their detail pages, and the links to
them from import rows, events and deliveries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone

from core.erp import services
from core.erp.models import Customer, SalesOrder
from core.tools.pipeline import call_tool
from tests.helpers import HTMX
from tests.imports.helpers import run_import

pytestmark = pytest.mark.django_db

LISTS = ["/customers/", "/items/", "/sales-orders/"]


def html_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def rows(html: str, table: str) -> list[str]:
    """The record links in the first column of a table's rows, in order."""
    body = html.split(f'class="data records {table}"', 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<tr>\s*<td class="nowrap"><code><a href="[^"]+" data-record="[^"]+">([^<]+)</a>', body)


@pytest.fixture
def trade(erp, writer):
    """CUST-001: an invoiced order paid in part, an open order; all through tool calls."""
    def call(tool, arguments):
        return call_tool(tool, arguments, writer, via="http")

    invoiced = call("ax_create_salesorder", {"customer_account": "CUST-001",
                                             "lines": [{"item_id": "ITEM-001", "quantity": 2}], "customer_ref": "PO-7"})
    invoice = call("ax_create_invoice", {"sales_id": invoiced["sales_id"]})
    call("ax_post_payment", {"customer_account": "CUST-001", "amount": 50, "invoice_id": invoice["invoice_id"],
                             "reference": "wire 1"})
    open_order = call("ax_create_salesorder", {"customer_account": "CUST-001",
                                               "lines": [{"item_id": "ITEM-002", "quantity": 4}]})
    return {"invoiced": invoiced, "invoice": invoice, "open": open_order}


# --- every page: method, role, fragment ------------------------------------------------------


@pytest.mark.parametrize("url", [*LISTS, "/customers/CUST-001/", "/items/ITEM-001/"])
def test_records_pages_refuse_other_methods(as_reader, erp, url):
    assert as_reader.post(url).status_code == 405


@pytest.mark.parametrize("url", [*LISTS, "/customers/CUST-001/", "/items/ITEM-001/"])
def test_records_pages_need_a_read_role(as_stakeholder, as_outsider, client, erp, url):
    assert as_stakeholder.get(url).status_code == 403
    assert as_outsider.get(url).status_code == 403
    assert client.get(url).url.startswith("/accounts/login/")


@pytest.mark.parametrize(("url", "section"), [("/customers/", "customer-results"), ("/items/", "item-results"),
                                              ("/sales-orders/", "order-results")])
def test_list_pages_answer_htmx_with_the_results_fragment(as_reader, trade, url, section):
    response = as_reader.get(url, headers=HTMX)
    html = html_of(response)
    assert html.lstrip().startswith(f'<section id="{section}"')
    assert "<html" not in html and "<form" not in html
    assert "HX-Request" in response["Vary"]


def test_records_are_in_the_navigation_of_readers(as_reader, as_stakeholder, erp):
    html = html_of(as_reader.get("/overview/"))
    nav = html.split('aria-label="Main"', 1)[1].split("</nav>", 1)[0]
    assert [label for label in re.findall(r">([^<]+)</a>", nav)][:4] == ["Overview", "Customers", "Items",
                                                                          "Sales orders"]
    assert as_stakeholder.get("/roi/").content.decode().count('href="/customers/"') == 0


# --- customers -----------------------------------------------------------------------------------


def test_customers_search_ignores_case_and_accents(as_reader, erp):
    services.create_customer("CUST-010", "Schäfer KG", "EUR", segment="retail")
    html = html_of(as_reader.get("/customers/"))
    assert rows(html, "customers") == ["CUST-001", "CUST-002", "CUST-010"]
    assert 'href="/customers/CUST-001/"' in html
    assert rows(html_of(as_reader.get("/customers/?q=mueller")), "customers") == ["CUST-001"]
    assert rows(html_of(as_reader.get("/customers/?q=schafer")), "customers") == ["CUST-010"]
    assert rows(html_of(as_reader.get("/customers/?currency=usd")), "customers") == ["CUST-002"]
    assert rows(html_of(as_reader.get("/customers/?segment=Retail")), "customers") == ["CUST-010"]
    services.update_customer("CUST-010", blocked=True)
    html = html_of(as_reader.get("/customers/?blocked=yes"))
    assert rows(html, "customers") == ["CUST-010"] and "blocked</span>" in html
    assert "1 customer matches the filters" in html


def test_customers_page_through_the_cursor(as_reader, erp):
    for n in range(55):
        Customer.objects.create(customer_account=f"P-{n:03d}", name=f"Page {n}", currency="EUR")
    first = html_of(as_reader.get("/customers/"))
    assert len(rows(first, "customers")) == 50 and "more on the next" in first
    cursor = re.search(r'href="/customers/\?cursor=([^"]+)"[^>]*rel="next"', first).group(1)
    second = html_of(as_reader.get(f"/customers/?cursor={cursor}", headers=HTMX))
    assert rows(second, "customers") == [f"P-{n:03d}" for n in range(48, 55)]
    assert "« First page</a>" in second and 'rel="next"' not in second


def test_a_bad_cursor_or_filter_is_reported_not_an_error_page(as_reader, erp):
    html = html_of(as_reader.get("/customers/?cursor=garbage"))
    assert 'data-error="VALIDATION_ERROR"' in html and "cursor" in html
    html = html_of(as_reader.get("/sales-orders/?customer=CUST-404"))
    assert 'data-error="CUST_NOT_FOUND"' in html
    html = html_of(as_reader.get("/customers/?currency=XYZ"))
    assert 'data-error="INVALID_CURRENCY"' in html


def test_customer_detail_shows_orders_invoices_payments_balance_and_history(as_reader, trade):
    html = html_of(as_reader.get("/customers/CUST-001/"))
    assert "Müller GmbH" in html
    assert rows(html, "orders") == [trade["open"]["sales_id"], trade["invoiced"]["sales_id"]]
    assert trade["invoice"]["invoice_id"] in html and "wire 1" in html
    assert "<dd data-balance>150.00 EUR</dd>" in html  # 200.00 invoiced, 50.00 paid
    assert "<dd data-credit-available>9,850.00</dd>" in html
    events = html.split('id="record-events"', 1)[1].split("</section>", 1)[0]
    assert events.count("<tr>") == 5  # header + two orders, the invoice, the payment
    assert "payment.posted" in events and "invoice.created" in events
    audit = html.split('id="record-audit"', 1)[1].split("</section>", 1)[0]
    assert "ax_post_payment" in audit and "ax_create_invoice" in audit and "ax_create_salesorder" in audit


def test_customer_detail_of_an_unknown_account_is_404(as_reader, erp):
    response = as_reader.get("/customers/CUST-404/")
    assert response.status_code == 404


def test_a_customer_whose_account_has_a_slash_and_whose_name_has_markup(as_reader, erp):
    Customer.objects.create(customer_account="EU/001", name="<script>alert(1)</script> & Söhne", currency="EUR")
    html = html_of(as_reader.get("/customers/?q=sohne"))
    assert 'href="/customers/EU/001/"' in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Söhne" in html
    detail = html_of(as_reader.get("/customers/EU/001/"))
    assert "<script>alert" not in detail and "&lt;script&gt;" in detail


def test_customer_detail_reads_a_bounded_number_of_queries(as_reader, trade, django_assert_max_num_queries):
    for _ in range(15):
        services.create_sales_order("CUST-001", [{"item_id": "ITEM-001", "quantity": 1}])
    with django_assert_max_num_queries(20):
        html_of(as_reader.get("/customers/CUST-001/"))


# --- items -----------------------------------------------------------------------------------------


def test_items_list_with_stock_and_the_reorder_filter(as_reader, trade):
    html = html_of(as_reader.get("/items/"))
    assert rows(html, "items") == ["ITEM-001", "ITEM-002", "ITEM-003"]
    below = html_of(as_reader.get("/items/?below=yes"))
    assert rows(below, "items") == ["ITEM-002"] and "below reorder point" in below  # 5 on hand, 4 reserved
    assert rows(html_of(as_reader.get("/items/?q=des")), "items") == ["ITEM-002"]


def test_item_detail_shows_stock_open_lines_and_events(as_reader, trade):
    html = html_of(as_reader.get("/items/ITEM-002/"))
    assert "<dd data-available class=\"bad\">1</dd>" in html
    assert rows(html, "lines") == [trade["open"]["sales_id"]]
    assert "inventory.low_stock" in html
    assert as_reader.get("/items/ITEM-404/").status_code == 404


# --- sales orders -----------------------------------------------------------------------------------


def test_sales_orders_filters(as_reader, trade):
    other = services.create_sales_order("CUST-002", [{"item_id": "ITEM-001", "quantity": 1}])
    SalesOrder.objects.filter(sales_id=trade["invoiced"]["sales_id"]).update(
        created=timezone.now() - timedelta(days=3))
    every = [other.sales_id, trade["open"]["sales_id"], trade["invoiced"]["sales_id"]]
    assert rows(html_of(as_reader.get("/sales-orders/")), "orders") == every
    assert rows(html_of(as_reader.get("/sales-orders/?customer=CUST-001")), "orders") == every[1:]
    assert rows(html_of(as_reader.get("/sales-orders/?status=invoiced")), "orders") == every[2:]
    assert rows(html_of(as_reader.get("/sales-orders/?status=open,confirmed")), "orders") == every[:2]
    today = timezone.localdate()
    assert rows(html_of(as_reader.get(f"/sales-orders/?date_from={today}")), "orders") == every[:2]
    assert rows(html_of(as_reader.get(f"/sales-orders/?date_to={today - timedelta(days=1)}")), "orders") == every[2:]
    assert rows(html_of(as_reader.get("/sales-orders/?customer_ref=PO-7")), "orders") == every[2:]
    assert rows(html_of(as_reader.get("/sales-orders/?min_amount=1000")), "orders") == every[1:2]  # 4 x 450.50
    html = html_of(as_reader.get("/sales-orders/?customer=CUST-001"))
    assert "1,802.00" in html  # thousands separators


def test_sales_orders_list_reads_the_same_queries_for_more_rows(as_reader, erp, django_assert_num_queries):
    services.create_sales_order("CUST-001", [{"item_id": "ITEM-001", "quantity": 1}])
    as_reader.get("/sales-orders/")  # the session and the user, once

    def queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            html_of(as_reader.get("/sales-orders/"))
        return len(captured)

    few = queries()
    for _ in range(20):
        services.create_sales_order("CUST-001", [{"item_id": "ITEM-001", "quantity": 1}])
    assert queries() == few


def test_sales_order_detail_shows_lines_invoice_payments_and_history(as_reader, trade):
    html = html_of(as_reader.get(f"/sales-orders/{trade['invoiced']['sales_id']}/"))
    assert 'href="/customers/CUST-001/"' in html and 'href="/items/ITEM-001/"' in html
    assert trade["invoice"]["invoice_id"] in html and "<dd data-open-amount>150.00</dd>" in html
    assert "wire 1" in html
    events = html.split('id="record-events"', 1)[1].split("</section>", 1)[0]
    assert [t for t in re.findall(r"<code>([a-z]+\.[a-z_]+)</code>", events)] == [
        "payment.posted", "invoice.created", "salesorder.created"]
    assert "ax_post_payment" in html.split('id="record-audit"', 1)[1]
    open_html = html_of(as_reader.get(f"/sales-orders/{trade['open']['sales_id']}/"))
    assert "Not invoiced" in open_html
    assert as_reader.get("/sales-orders/SO-404/").status_code == 404


# --- links from other pages ---------------------------------------------------------------------------


def render(source: str, **context) -> str:
    return Template("{% load hub %}" + source).render(Context(context))


def test_record_link_links_keys_and_escapes_everything_else():
    assert render('{% record_link "customer_account" "CUST-001" %}') == (
        '<a href="/customers/CUST-001/" data-record="customer_account">CUST-001</a>')
    assert render('{% record_link "item_id" v %}', v="A/B") == '<a href="/items/A/B/" data-record="item_id">A/B</a>'
    assert render('{% record_link "name" v %}', v="<b>x</b>") == "&lt;b&gt;x&lt;/b&gt;"
    assert render('{% record_link "customer_account" v %}', v="<b>x</b>") == "&lt;b&gt;x&lt;/b&gt;"
    assert render('{% record_link "customer_account" "C-1" code="CUST_NOT_FOUND" %}') == "C-1"
    assert render('{% record_link "customer_account" "C-1" code=codes %}', codes=["X", "CUST_NOT_FOUND"]) == "C-1"
    assert render('{% record_link "sales_id" "SO-1" code="INVALID_STATE" %}').startswith(
        '<a href="/sales-orders/SO-1/"')
    links = render("{% record_links data %}", data={"sales_id": "SO-1", "customer_account": "C<1>", "amount": 1})
    assert links == ('<span class="record-links"><code><a href="/sales-orders/SO-1/" data-record="sales_id">SO-1</a>'
                     "</code> <code>C&lt;1&gt;</code></span>")
    assert render("{% record_links data %}", data="not a dict") == ""


def test_import_rows_link_the_records(as_writer, writer, erp, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    job = run_import(writer, "customers", "customer_account,name,currency\nNEW-1,Neu GmbH,EUR\nCUST-001,Dup,EUR\n")
    html = html_of(as_writer.get(f"/imports/{job.job_id}/"))
    preview = html.split('id="import-preview"', 1)[1].split("</section>", 1)[0]
    assert 'href="/customers/NEW-1/"' in preview
    errors = html.split('id="import-errors"', 1)[1]
    assert '<code><a href="/customers/CUST-001/" data-record="customer_account">CUST-001</a></code>' in errors
    job = run_import(writer, "salesorders", "order_ref,customer_account,item_id,quantity\nR-1,CUST-404,ITEM-001,1\n")
    errors = html_of(as_writer.get(f"/imports/{job.job_id}/")).split('id="import-errors"', 1)[1]
    assert "CUST_NOT_FOUND" in errors and 'href="/customers/CUST-404/"' not in errors


def test_events_and_deliveries_link_the_records_they_name(as_admin, staff_admin, erp):
    from core.events.bus import publish
    from core.events.models import Event
    from core.webhooks import services as webhooks
    from core.webhooks.models import Delivery

    sub, _ = webhooks.subscribe(event_type="salesorder.created", webhook_url="https://n8n.example.com/hook",
                                user=staff_admin)
    publish("salesorder.created", {"sales_id": "SO-2026-000042", "customer_account": "CUST-001", "total_amount": 5})
    event = Event.objects.get(type="salesorder.created")
    Delivery.objects.create(delivery_id="dlv_1", subscription=sub, event=event, event_type=event.type,
                            subject="SO-2026-000042")
    events = html_of(as_admin.get("/webhooks/events/"))
    assert 'href="/sales-orders/SO-2026-000042/"' in events and 'href="/customers/CUST-001/"' in events
    deliveries = html_of(as_admin.get("/webhooks/deliveries/"))
    link = '<code><a href="/sales-orders/SO-2026-000042/" data-record="sales_id">SO-2026-000042</a></code>'
    assert link in deliveries
