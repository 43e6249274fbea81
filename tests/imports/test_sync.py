"""Imports that sync: modes create / update / upsert, unchanged rows, from_job, column mappings,
the preview and error summary, one-off migrations outside ROI, and the checks people expect."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from django.utils import timezone

from core.accounts.roles import MCP_ADMIN, MCP_WRITE
from core.accounts.services import create_user
from core.audit.models import AuditEntry
from core.erp.models import Customer, Item
from core.errors import ToolError
from core.events.models import Event
from core.imports import tasks
from core.imports.models import ImportJob, ImportMapping
from core.tools.pipeline import call_tool
from tests.imports.helpers import errors_of, run_import, xlsx_bytes

HEADER = "customer_account,name,currency,credit_limit,segment,email\n"
FILE = (HEADER
        + "S-1,Alpha GmbH,EUR,1000.50,retail,a@alpha.example\n"
        + "S-2,Beta AG,USD,,,\n"
        + "S-3,Gamma KG,EUR,0,wholesale,\n")


def audits(job: ImportJob) -> int:
    return AuditEntry.objects.filter(batch_id=job.job_id).count()


def events(event_type: str) -> list[dict]:
    return [e.data for e in Event.objects.filter(type=event_type).order_by("id")]


def counts(job: ImportJob) -> tuple[int, int, int, int, int]:
    return job.records_created, job.records_updated, job.records_unchanged, job.successful, job.failed


# ---- modes ------------------------------------------------------------------------------------

def test_importing_the_same_file_twice_in_upsert_mode_changes_nothing_the_second_time(writer, erp):
    first = run_import(writer, "customers", FILE, mode="upsert")
    assert counts(first) == (3, 0, 0, 3, 0)
    records = Event.objects.exclude(type="import.finished")
    written = (Customer.objects.count(), AuditEntry.objects.count(), records.count())
    second = run_import(writer, "customers", FILE, mode="upsert")
    assert second.status == "completed"
    assert counts(second) == (0, 0, 3, 3, 0)
    assert (Customer.objects.count(), AuditEntry.objects.count(), records.count()) == written
    status = call_tool("ax_get_import_status", {"job_id": second.job_id}, writer)
    assert status["records"] == {"created": 0, "updated": 0, "unchanged": 3}


def test_create_mode_still_refuses_existing_keys(writer, erp):
    run_import(writer, "customers", FILE)
    again = run_import(writer, "customers", FILE)
    assert counts(again) == (0, 0, 0, 0, 3)
    assert {code for _, _, code in errors_of(again)} == {"CUST_ALREADY_EXISTS"}


def test_update_changes_the_given_columns_only_and_publishes_what_changed(writer, erp):
    run_import(writer, "customers", FILE)
    before = Customer.objects.get(customer_account="S-1")
    job = run_import(writer, "customers", HEADER
                     + "S-1,Alpha GmbH & Co.,,,,\n"      # name changes; blank cells leave the rest
                     + "S-2,Beta AG,USD,2500,export,\n"  # limit and segment change
                     + "S-3,Gamma KG,EUR,0,wholesale,\n"  # all equal
                     + "S-404,Nobody,EUR,0,,\n",          # unknown key
                     mode="update")
    assert counts(job) == (0, 2, 1, 3, 1)
    assert errors_of(job) == [(5, "customer_account", "CUST_NOT_FOUND")]
    alpha = Customer.objects.get(customer_account="S-1")
    assert (alpha.name, alpha.currency, alpha.credit_limit, alpha.segment, alpha.email) == (
        "Alpha GmbH & Co.", "EUR", Decimal("1000.50"), "retail", "a@alpha.example")
    assert alpha.updated > before.updated
    beta = Customer.objects.get(customer_account="S-2")
    assert (beta.credit_limit, beta.segment) == (Decimal("2500.00"), "export")
    updated = events("customer.updated")
    assert [(e["customer_account"], e["changed"]) for e in updated] == [
        ("S-1", ["name"]), ("S-2", ["credit_limit", "segment"])]
    assert updated[0]["name"] == "Alpha GmbH & Co." and updated[1]["credit_limit"] == Decimal("2500")
    assert updated[0]["caused_by"]["via"] == "import"
    # The event carries what ax_get_customer returns, key for key.
    shown = call_tool("ax_get_customer", {"customer_account": "S-2"}, writer)
    assert {k: v for k, v in updated[1].items() if k not in ("changed", "caused_by")} == shown
    assert audits(job) == 2
    assert set(AuditEntry.objects.filter(batch_id=job.job_id).values_list("tool", flat=True)) == {"import.customers"}


def test_update_needs_only_the_key_column_and_na_clears_a_field(writer, erp):
    run_import(writer, "customers", FILE)
    job = run_import(writer, "customers", "customer_account,email,segment\nS-1,#N/A,\nS-3,c@gamma.example,#N/A\n",
                     mode="update")
    assert counts(job) == (0, 2, 0, 2, 0), errors_of(job)
    assert Customer.objects.get(customer_account="S-1").email == ""
    assert Customer.objects.get(customer_account="S-1").segment == "retail"
    gamma = Customer.objects.get(customer_account="S-3")
    assert (gamma.email, gamma.segment) == ("c@gamma.example", "")


def test_a_required_field_cannot_be_cleared(writer, erp):
    run_import(writer, "customers", FILE)
    job = run_import(writer, "customers", "customer_account,name\nS-1,#N/A\n", mode="update")
    assert errors_of(job) == [(2, "name", "MISSING_FIELD")]
    assert Customer.objects.get(customer_account="S-1").name == "Alpha GmbH"


def test_upsert_creates_new_keys_only_with_their_required_values(writer, erp):
    run_import(writer, "customers", FILE)
    job = run_import(writer, "customers", "customer_account,name,currency\nS-1,Alpha neu,\nS-9,Neu GmbH,CHF\n"
                                          "S-10,Ohne Währung,\n", mode="upsert")
    assert counts(job) == (1, 1, 0, 2, 1)
    assert errors_of(job) == [(4, "currency", "MISSING_FIELD")]
    assert Customer.objects.get(customer_account="S-9").currency == "CHF"
    assert Customer.objects.get(customer_account="S-1").name == "Alpha neu"
    assert [e["customer_account"] for e in events("customer.created")][-1] == "S-9"


def test_the_currency_of_a_customer_with_orders_stays(writer, erp):
    erp_order = erp["eur"]
    call_tool("ax_create_salesorder", {"customer_account": erp_order.customer_account,
                                       "lines": [{"item_id": "ITEM-001", "quantity": 1}]}, writer)
    job = run_import(writer, "customers", "customer_account,currency\nCUST-001,USD\nCUST-002,EUR\n", mode="update")
    assert errors_of(job) == [(2, "currency", "INVALID_STATE")]
    assert Customer.objects.get(customer_account="CUST-001").currency == "EUR"
    assert Customer.objects.get(customer_account="CUST-002").currency == "EUR"  # no orders: it may change


def test_validate_only_reports_what_an_upsert_would_do_and_writes_nothing(writer, erp):
    run_import(writer, "customers", FILE)
    records = Event.objects.exclude(type="import.finished")
    written = (AuditEntry.objects.count(), records.count())
    job = run_import(writer, "customers", FILE.replace("Beta AG", "Beta SE") + "S-4,Delta,EUR,0,,\n",
                     mode="upsert", validate_only=True)
    assert counts(job) == (1, 1, 2, 4, 0)
    assert Customer.objects.get(customer_account="S-2").name == "Beta AG"
    assert not Customer.objects.filter(customer_account="S-4").exists()
    assert (AuditEntry.objects.count(), records.count()) == written


def test_items_update_sets_the_counted_stock_never_below_reserved(writer, erp):
    call_tool("ax_create_salesorder", {"customer_account": "CUST-001",
                                       "lines": [{"item_id": "ITEM-001", "quantity": 30}]}, writer)  # reserves 30
    job = run_import(writer, "items", "item_id,on_hand,unit_price\nITEM-001,35,\nITEM-002,4,455.00\nITEM-003,#N/A,\n"
                                      "ITEM-001X,1,\n", mode="update")
    assert errors_of(job) == [(5, "item_id", "ITEM_NOT_FOUND")]
    chair = Item.objects.get(item_id="ITEM-001")
    assert (chair.on_hand, chair.reserved) == (35, 30)
    desk = Item.objects.get(item_id="ITEM-002")
    assert (desk.on_hand, desk.unit_price) == (4, Decimal("455.00"))
    assert counts(job) == (0, 2, 1, 3, 1)  # the lamp had 0 on hand already
    # 35 - 30 = 5 available: below the chair's reorder point of 10, announced as for an adjustment.
    low = events("inventory.low_stock")
    assert [(e["item_id"], e["available"], e["cause"]) for e in low] == [
        ("ITEM-001", 5, "inventory adjustment: import")]
    below = run_import(writer, "items", "item_id,on_hand\nITEM-001,29\n", mode="update")
    assert errors_of(below) == [(2, "on_hand", "INSUFFICIENT_STOCK")]
    assert Item.objects.get(item_id="ITEM-001").on_hand == 35


def test_items_upsert_audits_each_created_and_changed_item_and_a_second_run_changes_nothing(writer, erp):
    items = "item_id,name,unit_price,on_hand,reorder_point\nITEM-002,Desk,455.00,,\nNEW-1,Hocker,49.90,12,2\n"
    first = run_import(writer, "items", items, mode="upsert")
    assert counts(first) == (1, 1, 0, 2, 0), errors_of(first)
    assert audits(first) == 2
    assert set(AuditEntry.objects.filter(batch_id=first.job_id).values_list("tool", flat=True)) == {"import.items"}
    stool = Item.objects.get(item_id="NEW-1")
    assert (stool.name, stool.unit_price, stool.on_hand, stool.reorder_point, stool.reserved) == (
        "Hocker", Decimal("49.90"), 12, 2, 0)
    assert Item.objects.get(item_id="ITEM-002").unit_price == Decimal("455.00")
    written = (Item.objects.count(), AuditEntry.objects.count(), Event.objects.exclude(type="import.finished").count())
    second = run_import(writer, "items", items, mode="upsert")
    assert counts(second) == (0, 0, 2, 2, 0)
    assert (Item.objects.count(), AuditEntry.objects.count(),
            Event.objects.exclude(type="import.finished").count()) == written


def test_an_update_batch_is_a_handful_of_statements_however_many_rows(writer, erp):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from core.imports import services

    def statements(rows: int) -> int:
        # Every row changes its name and credit limit; one batch.
        base = "".join(f"Q-{i},Q {i},EUR,0,,\n" for i in range(rows))
        run_import(writer, "customers", HEADER + base, batch_size=rows)
        changed = "".join(f"Q-{i},Q {i} neu,EUR,{i + 1},,\n" for i in range(rows))
        job = services.submit(writer, type="customers", fmt="csv", content=(HEADER + changed).encode(),
                              mode="update", batch_size=rows)
        with CaptureQueriesContext(connection) as captured:
            tasks.run_import(job.pk)
        job.refresh_from_db()
        assert counts(job) == (0, rows, 0, rows, 0)
        Customer.objects.filter(customer_account__startswith="Q-").delete()
        return len(captured.captured_queries)

    assert statements(5) == statements(200)


def test_a_formula_without_a_value_fails_its_row_with_the_formula(writer, erp):
    # openpyxl writes formulas without a computed value, as many programs do.
    content = xlsx_bytes([["customer_account", "name", "currency", "credit_limit"], ["F-1", "Formel", "EUR", "=A2*2"],
                          ["F-2", "Wert", "EUR", 100]])
    job = run_import(writer, "customers", content, fmt="xlsx")
    assert (job.status, job.successful, job.failed) == ("completed", 1, 1)
    [error] = job.errors.all()
    assert (error.row, error.column, error.code, error.value) == (2, "credit_limit", "FORMULA_WITHOUT_VALUE", "=A2*2")
    assert "=A2*2" in error.message
    assert not Customer.objects.filter(customer_account="F-1").exists()


def test_sales_orders_are_create_only(writer, erp):
    with pytest.raises(ToolError) as error:
        call_tool("ax_bulk_import", {"type": "salesorders", "format": "csv", "mode": "upsert",
                                     "data": "order_ref,customer_account,item_id,quantity\nP-1,CUST-001,ITEM-001,1\n"},
                  writer)
    assert (error.value.code, error.value.field) == ("VALIDATION_ERROR", "mode")


# ---- validate, then commit ------------------------------------------------------------------

def test_from_job_runs_the_stored_file_of_a_validated_job(writer, erp):
    checked = call_tool("ax_bulk_import", {"type": "customers", "format": "csv", "data": FILE, "validate_only": True,
                                           "mode": "upsert", "filename": "kunden.csv"}, writer)
    with pytest.raises(ToolError) as error:  # not finished yet
        call_tool("ax_bulk_import", {"from_job": checked["job_id"]}, writer)
    assert error.value.code == "INVALID_STATE"
    tasks.run_import(ImportJob.objects.get(job_id=checked["job_id"]).pk)
    assert not Customer.objects.filter(customer_account="S-1").exists()
    real = call_tool("ax_bulk_import", {"from_job": checked["job_id"], "batch_size": 2}, writer)
    assert (real["from_job"], real["mode"], real["validate_only"], real["type"]) == (
        checked["job_id"], "upsert", False, "customers")
    job = ImportJob.objects.get(job_id=real["job_id"])
    assert (job.batch_size, job.original_name) == (2, "kunden.csv")
    tasks.run_import(job.pk)
    job.refresh_from_db()
    assert counts(job) == (3, 0, 0, 3, 0)
    assert Customer.objects.filter(customer_account__in=["S-1", "S-2", "S-3"]).count() == 3


def test_from_job_refuses_other_arguments_other_peoples_jobs_and_removed_files(writer, erp, department):
    checked = run_import(writer, "customers", FILE, validate_only=True)
    with pytest.raises(ToolError) as error:
        call_tool("ax_bulk_import", {"from_job": checked.job_id, "data": FILE}, writer)
    assert error.value.code == "VALIDATION_ERROR" and "from_job" in error.value.message
    other = create_user("other", MCP_WRITE, password="other-pass-12", department=department)
    with pytest.raises(ToolError) as error:
        call_tool("ax_bulk_import", {"from_job": checked.job_id}, other)
    assert (error.value.code, error.value.field) == ("IMPORT_NOT_FOUND", "from_job")
    boss = create_user("boss", MCP_ADMIN, password="boss-pass-123", department=department)
    assert call_tool("ax_bulk_import", {"from_job": checked.job_id, "validate_only": True}, boss)["job_id"]
    checked.file.delete(save=True)
    with pytest.raises(ToolError) as error:
        call_tool("ax_bulk_import", {"from_job": checked.job_id}, writer)
    assert error.value.code == "INVALID_STATE" and "upload the file again" in error.value.message


def test_the_status_has_a_preview_and_an_error_summary(writer, erp):
    job = run_import(writer, "customers", "Kundennummer;Name;Währung;Kreditlimit\n"
                                          "K-1;Müller GmbH;EUR;1.234,50\nK-2;Schäfer KG;EURO;0\nK-3;Ohne;XXX;0\n",
                     mapping={"Kundennummer": "customer_account", "Währung": "currency", "Kreditlimit": "credit_limit"})
    status = call_tool("ax_get_import_status", {"job_id": job.job_id}, writer)
    assert status["error_summary"] == {"INVALID_CURRENCY": 2}
    preview = status["preview"]
    assert (preview["delimiter"], preview["decimal_separator"], preview["encoding"]) == (";", ",", "utf-8")
    assert preview["columns"] == [{"column": "Kundennummer", "field": "customer_account"},
                                  {"column": "Name", "field": "name"},
                                  {"column": "Währung", "field": "currency"},
                                  {"column": "Kreditlimit", "field": "credit_limit"}]
    assert preview["rows"][0] == {"line": 2, "values": {"customer_account": "K-1", "name": "Müller GmbH",
                                                        "currency": "EUR", "credit_limit": "1234.50"}, "errors": []}
    assert preview["rows"][1]["errors"] == ["INVALID_CURRENCY"]


# ---- mappings ---------------------------------------------------------------------------------

GERMAN = "Kundennummer;Firma;Währung\nK-10;Müller GmbH;EUR\n"
GERMAN_MAPPING = {"Kundennummer": "customer_account", "Firma": "name", "Währung": "currency"}


def test_a_mapping_saved_by_name_serves_the_next_file(writer, erp):
    first = run_import(writer, "customers", GERMAN, mapping=GERMAN_MAPPING, mapping_name="SAP nightly")
    assert counts(first) == (1, 0, 0, 1, 0), errors_of(first)
    assert ImportMapping.objects.get(type="customers", name="SAP nightly").mapping == GERMAN_MAPPING
    second = call_tool("ax_bulk_import", {"type": "customers", "format": "csv", "mode": "upsert",
                                          "mapping_name": "SAP nightly",
                                          "data": "KUNDENNUMMER;firma;währung\nK-10;Müller GmbH & Co;EUR\n"}, writer)
    assert second["mapping"] == GERMAN_MAPPING
    tasks.run_import(ImportJob.objects.get(job_id=second["job_id"]).pk)
    assert Customer.objects.get(customer_account="K-10").name == "Müller GmbH & Co"
    listed = call_tool("ax_list_import_mappings", {"type": "customers"}, writer)
    assert [(m["name"], m["mapping"]) for m in listed["mappings"]] == [("SAP nightly", GERMAN_MAPPING)]
    with pytest.raises(ToolError) as error:
        call_tool("ax_bulk_import", {"type": "customers", "format": "csv", "data": GERMAN, "mapping_name": "nope"},
                  writer)
    assert (error.value.code, error.value.field) == ("MAPPING_NOT_FOUND", "mapping_name")


def test_a_mapping_to_an_unknown_field_is_refused(writer, erp):
    with pytest.raises(ToolError) as error:
        call_tool("ax_bulk_import", {"type": "customers", "format": "csv", "data": GERMAN,
                                     "mapping": {"Kundennummer": "item_id"}}, writer)
    assert error.value.code == "VALIDATION_ERROR" and "a field customers does not have" in error.value.message


def test_an_unmapped_required_field_fails_the_file_with_suggestions_and_the_likely_type(writer, erp):
    job = run_import(writer, "customers", GERMAN)
    assert job.status == "failed"
    assert job.last_error.startswith("MISSING_COLUMNS")
    assert "map 'Kundennummer' to customer_account" in job.last_error
    items = run_import(writer, "items", "customer_account,name,currency\nC-1,A,EUR\n")
    assert "looks like a customers file" in items.last_error
    absent = run_import(writer, "customers", GERMAN, mapping={**GERMAN_MAPPING, "Kreditlimit": "credit_limit"})
    assert absent.last_error.startswith("MISSING_COLUMNS") and "'Kreditlimit'" in absent.last_error


def test_suggestions_know_german_and_english_names(writer, erp):
    result = call_tool("ax_list_import_mappings", {"header": ["Artikelnummer", "Bezeichnung", "Preis",
                                                              "Lagerbestand", "Meldebestand"]}, writer)
    assert result["suggested_type"] == "items"
    assert result["suggested_mapping"] == {"Artikelnummer": "item_id", "Bezeichnung": "name", "Preis": "unit_price",
                                           "Lagerbestand": "on_hand", "Meldebestand": "reorder_point"}
    english = call_tool("ax_list_import_mappings", {"header": ["Customer No.", "Company Name", "Currency", "E-Mail"]},
                        writer)
    assert english["suggested_mapping"] == {"Customer No.": "customer_account", "Company Name": "name",
                                            "Currency": "currency", "E-Mail": "email"}


def test_columns_spelled_without_umlauts_or_in_other_case_and_spacing_match(writer, erp):
    # "Waehrung" is how a system without umlauts writes "Währung"; " CUSTOMER  account " is the field.
    job = run_import(writer, "customers", " CUSTOMER  account ;Firma;Waehrung;KREDIT-LIMIT\nU-1;Umlaut AG;CHF;10\n",
                     mapping={"Firma": "name", "Währung": "currency", "Kreditlimit": "credit_limit"})
    assert (job.status, job.successful) == ("completed", 1), (job.last_error, errors_of(job))
    customer = Customer.objects.get(customer_account="U-1")
    assert (customer.name, customer.currency, customer.credit_limit) == ("Umlaut AG", "CHF", Decimal("10"))
    result = call_tool("ax_list_import_mappings", {"header": ["Kundennummer", "Firma", "Waehrung"]}, writer)
    assert result["suggested_mapping"] == {"Kundennummer": "customer_account", "Firma": "name",
                                           "Waehrung": "currency"}


# ---- files out as they came in -----------------------------------------------------------

def test_failed_rows_of_a_german_csv_come_back_in_its_dialect(writer, erp):
    from core.imports.services import failed_rows_file

    content = "Kundennummer;Firma;Währung;Kreditlimit\nK-1;Müller;EURO;1.234,50\n".encode("cp1252")
    job = run_import(writer, "customers", content, mapping={"Kundennummer": "customer_account", "Firma": "name",
                                                            "Währung": "currency", "Kreditlimit": "credit_limit"})
    data, name, content_type = failed_rows_file(job)
    assert (name, content_type) == (f"{job.job_id}-failed-rows.csv", "text/csv; charset=windows-1252")
    lines = data.decode("cp1252").splitlines()
    assert lines[0] == "line;Kundennummer;Firma;Währung;Kreditlimit;errors"
    assert lines[1].startswith("2;K-1;Müller;EURO;1.234,50;currency: INVALID_CURRENCY")


def test_the_tool_keeps_a_csv_in_the_encoding_it_came_in(writer, erp):
    # An integrator's Windows-1252 file, sent as text with its encoding: kept as it came, read
    # (preview) and returned (failed rows) in that encoding; a BOM kept in the text is not doubled.
    text = "Kundennummer;Firma;Währung\nK-1;Müller;EUR\nK-2;Größe;EURO\n"
    status = call_tool("ax_bulk_import", {"type": "customers", "format": "csv", "data": text, "encoding": "cp1252",
                                          "mapping": {"Kundennummer": "customer_account", "Firma": "name",
                                                      "Währung": "currency"}}, writer)
    job = ImportJob.objects.get(job_id=status["job_id"])
    with job.file.open("rb") as stored:
        assert stored.read() == text.encode("cp1252")
    tasks.run_import(job.pk)
    status = call_tool("ax_get_import_status", {"job_id": job.job_id}, writer)
    assert (status["successful"], status["failed"], status["preview"]["encoding"]) == (1, 1, "cp1252")
    assert Customer.objects.get(customer_account="K-1").name == "Müller"
    from core.imports.services import failed_rows_file

    job.refresh_from_db()
    data, _, content_type = failed_rows_file(job)
    assert content_type == "text/csv; charset=windows-1252"
    assert data.decode("cp1252").splitlines()[1].startswith("3;K-2;Größe;EURO;")

    marked = call_tool("ax_bulk_import", {"type": "customers", "format": "csv", "encoding": "utf-8-sig",
                                          "data": "\ufeff" + HEADER + "B-1,Bom,EUR,,,\n"}, writer)
    with ImportJob.objects.get(job_id=marked["job_id"]).file.open("rb") as stored:
        assert stored.read() == ("\ufeff" + HEADER + "B-1,Bom,EUR,,,\n").encode("utf-8")


def test_an_encoding_the_text_does_not_fit_or_given_for_a_workbook_is_refused(writer, erp):
    with pytest.raises(ToolError) as error:
        call_tool("ax_bulk_import", {"type": "customers", "format": "csv", "encoding": "cp1252",
                                     "data": HEADER + "E-1,Emoji \U0001f600,EUR,,,\n"}, writer)
    assert (error.value.code, error.value.field) == ("VALIDATION_ERROR", "encoding")
    assert "cp1252 cannot hold" in error.value.message
    with pytest.raises(ToolError) as error:
        call_tool("ax_bulk_import", {"type": "customers", "format": "csv", "encoding": "ebcdic", "data": FILE}, writer)
    assert (error.value.code, error.value.field) == ("VALIDATION_ERROR", "encoding")
    workbook = base64.b64encode(xlsx_bytes([["customer_account", "name", "currency"]])).decode()
    with pytest.raises(ToolError) as error:
        call_tool("ax_bulk_import", {"type": "customers", "format": "xlsx", "encoding": "utf-8", "data": workbook},
                  writer)
    assert error.value.code == "VALIDATION_ERROR" and "encoding is for CSV" in error.value.message
    checked = run_import(writer, "customers", FILE, validate_only=True)
    with pytest.raises(ToolError) as error:
        call_tool("ax_bulk_import", {"from_job": checked.job_id, "encoding": "cp1252"}, writer)
    assert error.value.code == "VALIDATION_ERROR" and "encoding" in error.value.message
    assert ImportJob.objects.count() == 1


def test_failed_rows_of_an_xlsx_come_back_as_xlsx(writer, erp):
    from openpyxl import load_workbook

    from core.imports.services import failed_rows_file

    content = xlsx_bytes([["customer_account", "name", "currency"], ["X-1", "=cmd|' /C calc'!A0", "XTS"]])
    job = run_import(writer, "customers", content, fmt="xlsx")
    data, name, content_type = failed_rows_file(job)
    assert name.endswith(".xlsx") and content_type.startswith("application/vnd.openxmlformats")
    import io

    rows = list(load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True))
    assert rows[0] == ("line", "customer_account", "name", "currency", "errors")
    assert rows[1][:4] == (2, "X-1", "'=cmd|' /C calc'!A0", "XTS") and "INVALID_CURRENCY" in rows[1][4]


# ---- checks -----------------------------------------------------------------------------------

def test_emails_and_currencies_are_checked_in_imports_and_tools(writer, erp):
    job = run_import(writer, "customers", HEADER + "E-1,A,EUR,0,,not-an-address\nE-2,B,XTS,0,,\nE-3,C,XXX,0,,\n"
                                                   "E-4,D,EUR,0,,d@example.com\n")
    assert errors_of(job) == [(2, "email", "INVALID_EMAIL"), (3, "currency", "INVALID_CURRENCY"),
                              (4, "currency", "INVALID_CURRENCY")]
    with pytest.raises(ToolError) as error:
        call_tool("ax_create_customer", {"customer_account": "E-5", "name": "E", "currency": "EUR", "email": "e@"},
                  writer)
    assert error.value.code == "INVALID_EMAIL"
    with pytest.raises(ToolError) as error:
        call_tool("ax_update_customer", {"customer_account": "E-4", "currency": "XAU"}, writer)
    assert error.value.code == "INVALID_CURRENCY"


def test_a_one_off_migration_is_audited_but_not_counted_in_roi(writer, erp, admin):
    day = timezone.now().date().isoformat()
    before = call_tool("ax_get_roi_metrics", {"date_from": day, "date_to": day}, admin)["total_operations"]
    migration = run_import(writer, "customers", FILE, roi=False)
    assert (migration.roi, audits(migration)) == (False, 3)
    assert set(AuditEntry.objects.filter(batch_id=migration.job_id).values_list("via", flat=True)) == {"migration"}
    after = call_tool("ax_get_roi_metrics", {"date_from": day, "date_to": day}, admin)["total_operations"]
    counted = run_import(writer, "customers", FILE.replace("S-", "T-"))
    assert audits(counted) == 3
    last = call_tool("ax_get_roi_metrics", {"date_from": day, "date_to": day}, admin)["total_operations"]
    # Each metrics call is itself an audited tool call (counted), hence the +1 per call.
    assert after - before == 1 and last - after == 3 + 1


def test_xlsx_upserts_like_csv(writer, erp):
    rows = [["customer_account", "name", "currency", "credit_limit"], ["X-1", "Eins", "EUR", 100.5],
            ["X-2", "Zwei", "SEK", None]]
    first = run_import(writer, "customers", xlsx_bytes(rows), fmt="xlsx", mode="upsert")
    second = run_import(writer, "customers", base64.b64decode(base64.b64encode(xlsx_bytes(rows))), fmt="xlsx",
                        mode="upsert")
    assert counts(first) == (2, 0, 0, 2, 0) and counts(second) == (0, 0, 2, 2, 0)


# ---- how a job ended, for integrators -----------------------------------------------------

def test_every_finished_job_publishes_import_finished(writer, erp):
    completed = run_import(writer, "customers", FILE + "S-5,Bad,EURO,0,,\n", mode="upsert", filename="nightly.csv")
    failed = run_import(writer, "customers", "Kundennummer\nK-1\n")
    cancelled = call_tool("ax_bulk_import", {"type": "items", "format": "csv", "data": "item_id,name,unit_price\n"
                                                                                  "I-1,A,1\n"}, writer)
    call_tool("ax_cancel_import", {"job_id": cancelled["job_id"]}, writer)
    finished = {e["job_id"]: e for e in events("import.finished")}
    assert set(finished) == {completed.job_id, failed.job_id, cancelled["job_id"]}
    done = finished[completed.job_id]
    assert {k: done[k] for k in ("type", "mode", "status", "filename", "total", "successful", "failed", "records",
                                 "error_summary", "error")} == {
        "type": "customers", "mode": "upsert", "status": "completed", "filename": "nightly.csv", "total": 4,
        "successful": 3, "failed": 1, "records": {"created": 3, "updated": 0, "unchanged": 0},
        "error_summary": {"INVALID_CURRENCY": 1}, "error": None}
    assert done["caused_by"] == {"user": "writer", "audit_id": None, "via": "import"}
    assert finished[failed.job_id]["status"] == "failed"
    assert finished[failed.job_id]["error"].startswith("MISSING_COLUMNS")
    assert finished[cancelled["job_id"]]["status"] == "cancelled"
    assert Event.objects.filter(type="import.finished").count() == 3  # once each


def test_the_preview_fills_up_from_small_batches(writer, erp):
    rows = "".join(f"P-{n},Name {n},EUR,0,,\n" for n in range(7))
    job = run_import(writer, "customers", HEADER + rows, batch_size=2)
    assert [r["line"] for r in job.preview["rows"]] == [2, 3, 4, 5, 6]
