"""Records pages (MCP_Read+): customers, items and sales orders, searched, filtered and paged
through core/erp/reads.py (the same services as the read tools), each with a detail page that
shows what belongs to the record and its history: the events that name it and the audit rows
of the calls behind them. Read-only: nothing here writes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from core.accounts.roles import MCP_READ
from core.erp import reads, services
from core.erp.models import SalesOrder
from core.erp.serializers import customer_data, item_data
from core.errors import ToolError
from dashboard.access import role_required
from dashboard.htmx import render_page_or_fragment

PAGE_SIZE = 50
DETAIL_ROWS = 10  # rows of each list on a detail page; its "all" link leads on
YES_NO = [("", "any"), ("yes", "yes"), ("no", "no")]
OPEN_OR_CONFIRMED = "open,confirmed"


def _yes_no(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


class CustomerFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=255,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "account or name"}))
    currency = forms.CharField(required=False, max_length=3, widget=forms.TextInput(attrs={"placeholder": "EUR"}))
    segment = forms.CharField(required=False, max_length=40)
    blocked = forms.ChoiceField(required=False, choices=YES_NO)

    def arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {"query": data.get("q") or None, "currency": data.get("currency") or None,
                "segment": data.get("segment") or None, "blocked": _yes_no(data.get("blocked", ""))}


class ItemFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=255,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "item id or name"}))
    below = forms.ChoiceField(required=False, label="Below reorder point", choices=YES_NO)

    def arguments(self) -> dict[str, Any]:
        return {"query": self.cleaned_data.get("q") or None,
                "below_reorder_point": _yes_no(self.cleaned_data.get("below", ""))}


class OrderFilterForm(forms.Form):
    customer = forms.CharField(required=False, max_length=20, widget=forms.TextInput(attrs={"placeholder": "CUST-001"}))
    status = forms.ChoiceField(required=False, choices=[("", "any"), (OPEN_OR_CONFIRMED, "open or confirmed"),
                                                        *SalesOrder.Status.choices])
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    customer_ref = forms.CharField(required=False, max_length=60, label="Customer ref.")
    min_amount = forms.DecimalField(required=False, min_value=0, max_digits=18, decimal_places=2, label="Min. total")

    def arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        status = data.get("status")
        return {"customer_account": data.get("customer") or None,
                "status": status.split(",") if status else None,
                "date_from": data.get("date_from"), "date_to": data.get("date_to"),
                "customer_ref": data.get("customer_ref") or None, "min_amount": data.get("min_amount")}


def _list_page(request: HttpRequest, form: forms.Form, read: Callable[..., dict], template: str) -> HttpResponse:
    """A list page: the form's valid filters (an invalid one is reported and left out), one
    page of the read from the request's cursor, and the link to the next."""
    form.is_valid()
    error = None
    try:
        page = read(**form.arguments(), cursor=request.GET.get("cursor") or None, limit=PAGE_SIZE)
    except ToolError as refused:
        page, error = {"items": [], "next_cursor": None}, refused
    context = {"form": form, "rows": page["items"], "next_cursor": page["next_cursor"], "error": error,
               "paged": bool(request.GET.get("cursor")),
               "filtered": any(request.GET.get(name) for name in form.fields)}
    return render_page_or_fragment(request, template, "rows", context)


@require_GET
@role_required(MCP_READ)
@vary_on_headers("HX-Request")
def customer_list(request: HttpRequest) -> HttpResponse:
    return _list_page(request, CustomerFilterForm(request.GET), reads.find_customers,
                      "dashboard/records/customers.html")


@require_GET
@role_required(MCP_READ)
@vary_on_headers("HX-Request")
def item_list(request: HttpRequest) -> HttpResponse:
    return _list_page(request, ItemFilterForm(request.GET), reads.list_items, "dashboard/records/items.html")


@require_GET
@role_required(MCP_READ)
@vary_on_headers("HX-Request")
def order_list(request: HttpRequest) -> HttpResponse:
    return _list_page(request, OrderFilterForm(request.GET), reads.list_salesorders,
                      "dashboard/records/salesorders.html")


def _found(read: Callable[[], Any], what: str, key: str) -> Any:
    """The record, or 404 naming it."""
    try:
        return read()
    except ToolError as error:
        if error.code.endswith("_NOT_FOUND"):
            raise Http404(f"There is no {what} {key}.") from None
        raise


@require_GET
@role_required(MCP_READ)
def customer_detail(request: HttpRequest, customer_account: str) -> HttpResponse:
    customer = _found(lambda: services.get_customer(customer_account), "customer", customer_account)
    account = customer.customer_account
    context = {
        "customer": customer_data(customer),
        "balance": reads.customer_balance(account),
        "orders": reads.list_salesorders(customer_account=account, limit=DETAIL_ROWS),
        "invoices": reads.list_invoices(customer_account=account, limit=DETAIL_ROWS),
        "payments": reads.list_payments(customer_account=account, limit=DETAIL_ROWS),
        "history": reads.record_history({"customer_account": account}, since=customer.created),
    }
    return render_page_or_fragment(request, "dashboard/records/customer_detail.html", None, context)


@require_GET
@role_required(MCP_READ)
def item_detail(request: HttpRequest, item_id: str) -> HttpResponse:
    item = _found(lambda: services.get_item(item_id), "item", item_id)
    context = {
        "item": item_data(item),
        "lines": reads.open_order_lines(item.item_id, limit=PAGE_SIZE),
        "history": reads.record_history({"item_id": item.item_id}, since=item.created),
    }
    return render_page_or_fragment(request, "dashboard/records/item_detail.html", None, context)


@require_GET
@role_required(MCP_READ)
def order_detail(request: HttpRequest, sales_id: str) -> HttpResponse:
    order = _found(lambda: reads.salesorder_detail(sales_id), "sales order", sales_id)
    match = {"sales_id": order["sales_id"]}
    if order["invoice"]:
        match["invoice_id"] = order["invoice"]["invoice_id"]
    since = datetime.fromisoformat(order["created"])
    context = {"order": order, "history": reads.record_history(match, since=since)}
    return render_page_or_fragment(request, "dashboard/records/salesorder_detail.html", None, context)

