"""The bulk paths of an import: the fast row reader, set-based writes and their events.

The fast reader must accept only what the full reader accepts and produce the same record;
anything it declines goes through the full reader, which reports the row errors.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from core.audit.models import AuditEntry
from core.erp.models import Customer, Item
from core.events.models import Event
from core.imports.models import Dialect
from core.imports.readers import FormulaWithoutValue
from core.imports.specs import CustomersSpec
from core.webhooks.models import Delivery, Subscription
from tests.imports.helpers import errors_of, run_import

HEADER = "customer_account,name,currency,credit_limit,segment,email\n"
POSITIONS = {name: i for i, name in enumerate(HEADER.strip().split(","))}

ROWS = [
    ["C-1", "Müller GmbH", "EUR", "1000.50", "retail", "a@b.example"],
    ["C-2", "  Padded  ", " usd ", " 12.5 ", "", ""],
    ["C-3", "Zero", "EUR", "-0", "", ""],
    ["C-4", "Exponent", "EUR", "1e3", "", ""],
    ["C-5", "Underscore", "EUR", "1_000", "", ""],
    ["C-6", "Empty limit", "SEK", "", "", ""],
    ["C-7", "Three places", "EUR", "12.345", "", ""],
    ["C-8", "Negative", "EUR", "-5", "", ""],
    ["C-9", "Not a number", "EUR", "12abc", "", ""],
    ["C-10", "Infinite", "EUR", "Infinity", "", ""],
    ["C-11", "NaN", "EUR", "NaN", "", ""],
    ["C-12", "Huge", "EUR", "1e30", "", ""],
    ["C-13", "Spaces in number", "EUR", "1 000", "", ""],
    ["C-14", "Bad currency", "EURO", "0", "", ""],
    ["C-15", "", "EUR", "0", "", ""],
    ["C 16", "Bad key", "EUR", "0", "", ""],
    ["C-17" + "x" * 20, "Long key", "EUR", "0", "", ""],
    ["C-18", "x" * 256, "EUR", "0", "", ""],
    ["C-19", "Nul\x00", "EUR", "0", "", ""],
    ["C-20", "Nul in email", "EUR", "0", "", "a\x00b"],
    ["C-21", "Long segment", "EUR", "0", "s" * 41, ""],
    ["C-22", "Short row", "EUR"],
    ["C-23", "Decimal comma", "EUR", "1.234,56", "", ""],
    ["-C-24", "Key starts with a dash", "EUR", "0", "", ""],
    ["C-25", "Tab\tinside", "EUR", "0", "", ""],
]


@pytest.mark.parametrize("decimal_comma", [False, True])
@pytest.mark.parametrize("row", ROWS, ids=[r[0][:8] for r in ROWS])
def test_fast_reader_agrees_with_the_full_reader(row, decimal_comma):
    spec = CustomersSpec()
    dialect = Dialect(delimiter=";" if decimal_comma else ",", decimal_comma=decimal_comma)
    fast = spec.fast_reader(POSITIONS, dialect)(list(row))
    cells = {name: row[i] if i < len(row) else None for name, i in POSITIONS.items()}
    full = spec.read(2, cells, dialect)
    if fast is None:
        return  # declined: the full reader decides, as it did here
    assert full.ok, f"fast path accepted a row the full reader refuses: {full.errors}"
    assert fast == full.record
    assert all(type(fast[k]) is type(full.record[k]) for k in fast)


def test_fast_reader_takes_the_common_rows():
    reader = CustomersSpec().fast_reader(POSITIONS, Dialect())
    assert reader(list(ROWS[0])) == {"customer_account": "C-1", "name": "Müller GmbH", "currency": "EUR",
                                     "credit_limit": Decimal("1000.50"), "segment": "retail",
                                     "email": "a@b.example"}
    assert reader(list(ROWS[2]))["credit_limit"] == Decimal("0.00")
    assert str(reader(list(ROWS[2]))["credit_limit"]) == "0.00"  # not -0.00
    # XLSX cells: numbers and empty cells as the full reader reads them; anything else the full path.
    assert reader([1001, "Name", "EUR", 100.5, None, None]) == {"customer_account": "1001", "name": "Name",
                                                                 "currency": "EUR", "credit_limit": Decimal("100.50")}
    assert reader(["C-1", "Name", "EUR", True, "", ""]) is None
    assert reader(["C-1", "Name", "EUR", datetime(2026, 1, 1), "", ""]) is None


XLSX_ROWS = [
    [1001, "Whole number key", "EUR", 0, None, None],
    [1001.0, "Float key", "EUR", 100.5, "retail", "a@b.example"],
    ["C-30", "Float limit", "EUR", 12.345, None, None],
    ["C-31", "Tiny limit", "EUR", 1e-05, None, None],
    ["C-32", "Huge limit", "EUR", 1e20, None, None],
    ["C-33", "Negative", "EUR", -5, None, None],
    ["C-34", "Bool limit", "EUR", True, None, None],
    ["C-35", None, "EUR", 0, None, None],
    ["C-36", 4711, "EUR", None, None, None],
    ["C-37", "Date limit", "EUR", datetime(2026, 1, 1), None, None],
    ["C-38", "Formula", "EUR", FormulaWithoutValue("=B2*2"), None, None],
    ["C-39", "Mail", "EUR", 0, None, 12],
    ["C-40", "Clear", "EUR", "#N/A", None, None],
]


@pytest.mark.parametrize("row", XLSX_ROWS, ids=[str(r[0]) for r in XLSX_ROWS])
def test_fast_reader_agrees_with_the_full_reader_on_xlsx_cells(row):
    spec = CustomersSpec()
    fast = spec.fast_reader(POSITIONS, Dialect())(list(row))
    full = spec.read(2, {name: row[i] for name, i in POSITIONS.items()}, Dialect())
    if fast is None:
        return  # declined: the full reader decides
    assert full.ok, f"fast path accepted a row the full reader refuses: {full.errors}"
    assert fast == full.record
    assert all(type(fast[k]) is type(full.record[k]) for k in fast)


def test_mixed_file_gives_the_same_errors_and_rows_as_the_full_path(writer, erp):
    lines = [",".join(r) for r in ROWS if "\x00" not in ",".join(r) and "\t" not in ",".join(r)]
    job = run_import(writer, "customers", HEADER + "\n".join(lines) + "\n")
    codes = {code for _, _, code in errors_of(job)}
    assert codes == {"INVALID_NUMBER", "VALIDATION_ERROR", "INVALID_CURRENCY", "MISSING_FIELD"}
    stored = {c.customer_account: c for c in Customer.objects.filter(customer_account__in=[r[0] for r in ROWS])}
    assert stored["C-1"].credit_limit == Decimal("1000.50") and stored["C-1"].email == "a@b.example"
    assert stored["C-2"].currency == "USD" and stored["C-2"].name == "Padded"
    assert stored["C-4"].credit_limit == Decimal("1000.00") and stored["C-5"].credit_limit == Decimal("1000.00")
    assert stored["C-6"].credit_limit == Decimal("0.00")
    assert job.successful == len(stored)
    assert AuditEntry.objects.filter(batch_id=job.job_id).count() == len(stored)
    assert Event.objects.filter(type="customer.created").count() == len(stored)


def test_events_carry_the_same_data_as_a_tool_call(writer, erp):
    from core.tools.pipeline import call_tool

    call_tool("ax_create_customer", {"customer_account": "T-1", "name": "Tool", "currency": "EUR",
                                     "credit_limit": 1000.5, "segment": "retail", "email": "t@x.example"}, writer)
    rows = "".join(f"I-{n:03d},Name {n},EUR,1000.50,retail,t@x.example\n" for n in range(60))
    run_import(writer, "customers", HEADER + rows, batch_size=100)
    by_tool = Event.objects.get(type="customer.created", data__customer_account="T-1")
    by_import = Event.objects.get(type="customer.created", data__customer_account="I-007")
    assert set(by_import.data) == set(by_tool.data)
    for key in ("currency", "credit_limit", "balance", "segment", "email", "blocked"):
        assert by_import.data[key] == by_tool.data[key], key
    assert by_import.data["caused_by"] == {"user": "writer", "audit_id": None, "via": "import"}
    assert by_import.event_id.startswith("evt_") and len(by_import.event_id) == len(by_tool.event_id)
    assert by_import.user == writer and by_import.username == "writer"


def test_events_are_handed_over_at_once_when_nobody_subscribes(writer, erp, settings):
    job = run_import(writer, "customers", HEADER + "N-1,No listener,EUR,0,,\n")
    assert job.successful == 1
    event = Event.objects.get(data__customer_account="N-1")
    expected = settings.USING_SQLITE  # elsewhere the after-commit fan-out marks it
    assert event.fanned_out is True or not expected
    assert not Delivery.objects.exists()


@pytest.mark.parametrize("status", [Subscription.Status.ACTIVE, Subscription.Status.PAUSED])
def test_imported_events_reach_subscriptions(writer, erp, status, monkeypatch,
                                            django_capture_on_commit_callbacks):
    from core.webhooks import urlcheck

    monkeypatch.setattr(urlcheck, "check_for_subscribe", lambda url: url)
    from core.webhooks.services import subscribe

    sub, _ = subscribe(event_type="customer.created", webhook_url="https://hooks.example/in", user=writer)
    Subscription.objects.filter(pk=sub.pk).update(status=status)
    rows = "".join(f"S-{n:03d},Name {n},EUR,{n},,\n" for n in range(70))
    with django_capture_on_commit_callbacks(execute=True):
        job = run_import(writer, "customers", HEADER + rows, batch_size=50)
    assert job.successful == 70
    assert Delivery.objects.filter(subscription=sub).count() == 70
    assert not Event.objects.filter(type="customer.created", fanned_out=False).exists()


def test_disabled_subscriptions_do_not_count_as_listeners(writer, erp, monkeypatch,
                                                         django_capture_on_commit_callbacks):
    from core.webhooks import urlcheck

    monkeypatch.setattr(urlcheck, "check_for_subscribe", lambda url: url)
    from core.webhooks.services import subscribe

    sub, _ = subscribe(event_type="customer.created", webhook_url="https://hooks.example/in", user=writer)
    Subscription.objects.filter(pk=sub.pk).update(status=Subscription.Status.DISABLED)
    with django_capture_on_commit_callbacks(execute=True):
        run_import(writer, "customers", HEADER + "D-1,Disabled,EUR,0,,\n")
    assert not Delivery.objects.exists()
    assert Event.objects.get(data__customer_account="D-1").fanned_out is True


def test_items_import_writes_numbers_exactly(writer, erp):
    job = run_import(writer, "items", "item_id,name,unit_price,on_hand,reorder_point\n"
                                      "IT-1,Stuhl,149.90,120,20\nIT-2,Tisch,0.05,,\n")
    assert job.successful == 2, errors_of(job)
    first, second = Item.objects.get(item_id="IT-1"), Item.objects.get(item_id="IT-2")
    assert (first.unit_price, first.on_hand, first.reorder_point, first.reserved) == (Decimal("149.90"), 120, 20, 0)
    assert (second.unit_price, second.on_hand, second.reorder_point) == (Decimal("0.05"), 0, 0)
    assert AuditEntry.objects.filter(tool="import.items", batch_id=job.job_id).count() == 2
