from __future__ import annotations

from decimal import Decimal

from core.audit.models import AuditEntry
from core.erp.models import Customer, Item
from core.events.models import Event
from core.imports.models import ImportJob
from tests.imports.helpers import errors_of, run_import

HEADER = "customer_account,name,currency,credit_limit\n"


def test_customers_import_writes_rows_audit_and_events(writer, erp):
    job = run_import(writer, "customers", HEADER + "C-10,Müller GmbH,EUR,1000.50\nC-11,北京贸易,USD,\n")
    assert (job.status, job.total, job.processed, job.successful, job.failed) == ("completed", 2, 2, 2, 0)
    assert Customer.objects.get(customer_account="C-10").credit_limit == Decimal("1000.50")
    assert Customer.objects.get(customer_account="C-11").name == "北京贸易"
    audits = AuditEntry.objects.filter(tool="import.customers", batch_id=job.job_id)
    assert audits.count() == 2 and all(a.success and a.username == "writer" for a in audits)
    events = Event.objects.filter(type="customer.created")
    assert sorted(e.data["customer_account"] for e in events) == ["C-10", "C-11"]


def test_row_errors_carry_line_column_code_and_value(writer, erp):
    csv = (HEADER
           + "C-20,Alpha,EUR,10\n"          # line 2 ok
           + "CUST-001,Exists,EUR,0\n"      # line 3 exists in the database
           + "C-21,Beta,EURO,0\n"           # line 4 bad currency
           + "C-22,,EUR,0\n"                # line 5 missing name
           + "C-23,Gamma,EUR,12abc\n"       # line 6 bad number
           + "C-20,Again,EUR,0\n")          # line 7 duplicate in file
    job = run_import(writer, "customers", csv)
    assert (job.successful, job.failed) == (1, 5)
    assert errors_of(job) == [(3, "customer_account", "CUST_ALREADY_EXISTS"), (4, "currency", "INVALID_CURRENCY"),
                              (5, "name", "MISSING_FIELD"), (6, "credit_limit", "INVALID_NUMBER"),
                              (7, "customer_account", "DUPLICATE_KEY")]
    assert job.errors.get(row=4).value == "EURO"


def test_line_numbers_follow_multiline_quoted_fields(writer, erp):
    csv = HEADER + 'C-30,"Two\nlines",EUR,0\nC-31,Fine,ABC,0\n'
    job = run_import(writer, "customers", csv)
    assert errors_of(job) == [(4, "currency", "INVALID_CURRENCY")]


def test_german_excel_csv_with_bom_semicolons_and_decimal_commas(writer, erp):
    csv = "\ufeffcustomer_account;name;currency;credit_limit\nC-40;Köln AG;EUR;1.234,56\nC-41;Straße KG;EUR;0,5\n"
    job = run_import(writer, "customers", csv.encode("utf-8"))
    assert job.successful == 2, errors_of(job)
    assert job.dialect == {"encoding": "utf-8-sig", "delimiter": ";", "decimal_comma": True}
    assert Customer.objects.get(customer_account="C-40").credit_limit == Decimal("1234.56")
    assert Customer.objects.get(customer_account="C-41").credit_limit == Decimal("0.50")


def test_cp1252_file_is_decoded(writer, erp):
    job = run_import(writer, "customers", (HEADER + "C-50,Müller & Söhne – Café,EUR,0\n").encode("cp1252"))
    assert job.successful == 1
    assert job.dialect["encoding"] == "cp1252"
    assert Customer.objects.get(customer_account="C-50").name == "Müller & Söhne – Café"


def test_tab_delimited_items(writer, erp):
    job = run_import(writer, "items", "item_id\tname\tunit_price\ton_hand\nI-1\tStuhl\t19.90\t5\n")
    assert job.successful == 1
    assert Item.objects.get(item_id="I-1").on_hand == 5


def test_validate_only_writes_nothing(writer, erp):
    job = run_import(writer, "customers", HEADER + "C-60,Alpha,EUR,0\nC-61,Beta,ZZZ,0\n", validate_only=True)
    assert (job.status, job.successful, job.failed) == ("completed", 1, 1)
    assert not Customer.objects.filter(customer_account__in=["C-60", "C-61"]).exists()
    assert not AuditEntry.objects.filter(tool="import.customers").exists()
    assert errors_of(job) == [(3, "currency", "INVALID_CURRENCY")]


def test_batches_commit_checkpoint_with_rows(writer, erp):
    rows = "".join(f"C-{n:04d},Name {n},EUR,0\n" for n in range(25))
    job = run_import(writer, "customers", HEADER + rows, batch_size=10)
    assert (job.checkpoint, job.successful) == (25, 25)
    assert Customer.objects.filter(customer_account__startswith="C-0").count() == 25


def test_header_missing_required_columns_fails_the_job(writer, erp):
    job = run_import(writer, "customers", "customer_account,name\nC-1,x\n")
    assert job.status == "failed"
    assert job.last_error.startswith("MISSING_COLUMNS") and "currency" in job.last_error
    assert not Customer.objects.filter(customer_account="C-1").exists()


def test_header_only_file_completes_with_nothing(writer, erp):
    job = run_import(writer, "customers", HEADER)
    assert (job.status, job.total, job.processed) == ("completed", 0, 0)


def test_nul_characters_are_a_row_error(writer, erp):
    job = run_import(writer, "customers", HEADER + "C-1,x,EUR,0\nC-2,\x00bad,EUR,0\n")
    assert (job.successful, job.failed) == (1, 1)
    assert errors_of(job) == [(3, "name", "INVALID_TEXT")]


def test_oversized_field_fails_the_file_clearly(writer, erp):
    job = run_import(writer, "customers", HEADER + 'C-1,"' + "x" * 200_000 + '",EUR,0\n')
    assert job.status == ImportJob.Status.FAILED
    assert job.last_error.startswith("INVALID_FILE") and "line 2" in job.last_error


def test_failed_rows_file_has_error_column_and_neutralised_formulas(writer, erp):
    from core.imports.services import failed_rows_file

    job = run_import(writer, "customers", HEADER + "C-70,=HYPERLINK(\"x\"),EURO,0\n")
    text = failed_rows_file(job)[0].decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0] == "line,customer_account,name,currency,credit_limit,errors"  # the file's columns
    assert "'=HYPERLINK" in lines[1] and "INVALID_CURRENCY" in lines[1]


def test_a_key_taken_after_the_check_fails_only_its_row(writer, erp, monkeypatch):
    from core.imports.specs import CustomersSpec

    check = CustomersSpec.check

    def check_then_race(self, outcomes):  # another writer creates C-82 right after the check
        check(self, outcomes)
        Customer.objects.create(customer_account="C-82", name="Race", currency="EUR")

    monkeypatch.setattr(CustomersSpec, "check", check_then_race)
    Customer.objects.create(customer_account="C-81", name="Imported before", currency="EUR")
    job = run_import(writer, "customers", HEADER + "C-80,A,EUR,0\nC-81,B,EUR,0\nC-82,C,EUR,0\nC-83,D,EUR,0\n")
    assert (job.successful, job.failed) == (2, 2)
    assert errors_of(job) == [(3, "customer_account", "CUST_ALREADY_EXISTS"), (4, "customer_account",
                                                                                 "CUST_ALREADY_EXISTS")]
    assert Customer.objects.get(customer_account="C-82").name == "Race"
    written = Customer.objects.filter(name__in=["A", "D"]).values_list("customer_account", flat=True)
    assert set(written) == {"C-80", "C-83"}
    assert AuditEntry.objects.filter(batch_id=job.job_id).count() == 2
    assert sorted(e.data["customer_account"] for e in Event.objects.filter(type="customer.created")) == [
        "C-80", "C-83"]


def test_new_keys_are_inserted_without_asking_first_and_validation_still_asks(writer, erp, monkeypatch):
    from core.imports.specs import CustomersSpec, ItemsSpec

    asked = []
    monkeypatch.setattr(CustomersSpec, "check", lambda self, outcomes: asked.append(len(outcomes)))
    monkeypatch.setattr(ItemsSpec, "check", lambda self, outcomes: asked.append(len(outcomes)))
    job = run_import(writer, "customers", HEADER + "C-90,A,EUR,0\nC-91,B,EUR,0\n")
    items = run_import(writer, "items", "item_id,name,unit_price\nI-90,Bolt,1.50\n")
    assert (job.successful, items.successful, asked) == (2, 1, [])  # the unique index checked them
    monkeypatch.undo()
    validated = run_import(writer, "customers", HEADER + "C-90,A,EUR,0\nC-92,B,EUR,0\n", validate_only=True)
    assert (validated.successful, validated.failed) == (1, 1)
    assert errors_of(validated) == [(2, "customer_account", "CUST_ALREADY_EXISTS")]


def test_large_batch_events_are_stored_as_real_json(writer, erp):
    rows = "".join(f"J-{n:03d},Näme {n},EUR,{n}.5\n" for n in range(60))
    job = run_import(writer, "customers", HEADER + rows, batch_size=100)
    assert job.successful == 60
    event = Event.objects.get(type="customer.created", data__customer_account="J-007")
    assert event.data["name"] == "Näme 7" and event.data["credit_limit"] == 7.5
    assert event.data["caused_by"]["user"] == "writer" and event.username == "writer"


def test_a_file_broken_in_a_later_batch_fails_before_anything_is_written(writer, erp):
    """The count of rows reads the whole file first, so a file-level fault far down (a cell that
    runs on for ever, a quote never closed) fails the job with no batch written."""
    good = "".join(f"C-{n:04d},Name {n},EUR,1\n" for n in range(60))
    for broken in ("C-9999,Name," + "x" * 140_000 + ",1\n",
                   'C-9999,"never closed,EUR,1\n'):
        content = (HEADER + good).encode("utf-8") + broken.encode("latin-1") + b"C-9998,Last,EUR,1\n"
        job = run_import(writer, "customers", content, batch_size=10)
        assert job.status == "failed" and job.last_error.startswith("INVALID_FILE"), (broken[:20], job.last_error)
        assert job.processed == 0 and not Customer.objects.filter(customer_account__startswith="C-").exists()
