"""Imports pages: upload a file, follow the job live, its row errors, cancel and resume (each
write through its ax_* tool), the failed-rows file and the templates."""

from __future__ import annotations

import csv
import io
import os
import tracemalloc
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from openpyxl import Workbook, load_workbook

from core.accounts.roles import MCP_WRITE
from core.accounts.services import create_user
from core.audit.models import AuditEntry
from core.erp.models import Customer
from core.errors import ToolError
from core.imports import services, tasks
from core.imports.models import ImportJob, ImportRowError
from core.tools import ratelimit
from dashboard.import_forms import ZIP_MAGIC
from tests.helpers import HTMX, logged_in

pytestmark = pytest.mark.django_db

HEADER = "customer_account,name,currency,credit_limit\n"
GOOD_AND_BAD = (HEADER + "C-1,Alpha,EUR,10\n" + "C-2,Beta,EUR,\n" + "C-3,,EUR,1\n" + "C-4,Gamma,USD,5\n"
                + "C-5,Delta,EURO,0\n")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def submitted(user, content: str | bytes = GOOD_AND_BAD, *, type_: str = "customers", fmt: str = "csv",
              **options) -> ImportJob:
    data = content.encode("utf-8") if isinstance(content, str) else content
    return services.submit(user, type=type_, fmt=fmt, content=data, filename=options.pop("filename", "c.csv"),
                           **options)


def finished(job: ImportJob) -> ImportJob:
    """Run the job the way the worker does (on_commit hooks do not fire in these tests)."""
    tasks.run_import(job.pk)
    job.refresh_from_db()
    return job


def form(name: str = "customers.csv", content: bytes = GOOD_AND_BAD.encode(), **fields) -> dict:
    return {"file": SimpleUploadedFile(name, content), "type": "customers", "batch_size": 100, **fields}


def xlsx(rows: list[list]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Kunden"
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# ---- the list -------------------------------------------------------------------------------

def test_the_list_shows_a_readers_own_jobs_and_an_admin_all(as_reader, as_admin, reader, writer):
    mine = submitted(reader, filename="mine.csv")
    theirs = submitted(writer, filename="theirs.csv")
    response = as_reader.get("/imports/")
    assert response.status_code == 200
    assert [job.job_id for job in response.context["page"]] == [mine.job_id]
    html = response.content.decode()
    assert f'href="/imports/{mine.job_id}/"' in html and "theirs.csv" not in html
    assert 'id="import-form"' not in html  # readers do not upload
    assert 'href="/imports/templates/customers.csv"' in html and 'href="/imports/templates/items.xlsx"' in html

    every = as_admin.get("/imports/")
    assert {job.job_id for job in every.context["page"]} == {mine.job_id, theirs.job_id}
    assert b'id="import-form"' in every.content and b'enctype="multipart/form-data"' in every.content


def test_the_list_is_newest_first_and_paginated(as_writer, writer):
    jobs = [submitted(writer, filename=f"f{n}.csv") for n in range(27)]
    first = as_writer.get("/imports/")
    assert [job.job_id for job in first.context["page"]] == [job.job_id for job in reversed(jobs)][:25]
    second = as_writer.get("/imports/?page=2")
    assert [job.job_id for job in second.context["page"]] == [jobs[1].job_id, jobs[0].job_id]


def test_the_list_polls_while_a_job_moves_and_stops_when_all_are_done(as_writer, writer, erp):
    job = submitted(writer)
    ImportJob.objects.filter(pk=job.pk).update(status="running", total=5, processed=2)
    moving = as_writer.get("/imports/", headers=HTMX)
    html = moving.content.decode()
    assert html.lstrip().startswith('<section id="import-results"')
    assert 'hx-trigger="every 1s"' in html and 'hx-get="/imports/"' in html
    assert '<progress max="100" value="40"' in html and "2 / 5" in html
    assert "<html" not in html and 'id="import-form"' not in html

    # Back to the state the fake progress above replaced, so that the real run counts from zero.
    ImportJob.objects.filter(pk=job.pk).update(status="queued", total=None, processed=0, successful=0, failed=0)
    finished(job)
    done = as_writer.get("/imports/", headers=HTMX).content.decode()
    assert "hx-trigger" not in done
    assert 'data-status="completed"' in done and "5 / 5" in done


def test_the_list_refuses_other_methods_and_roles(as_reader, as_stakeholder, client):
    assert as_reader.post("/imports/").status_code == 405
    assert as_stakeholder.get("/imports/").status_code == 403
    anonymous = client.get("/imports/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")


def test_the_nav_links_to_imports(as_reader):
    assert b'href="/imports/"' in as_reader.get("/overview/").content


# ---- uploading ------------------------------------------------------------------------------

def test_uploading_a_csv_queues_a_job_and_shows_it(as_writer, writer, erp):
    response = as_writer.post("/imports/new/", form(batch_size=2))
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/imports/{job.job_id}/"
    assert (job.user, job.type, job.format, job.original_name, job.batch_size, job.validate_only, job.status) == (
        writer, "customers", "csv", "customers.csv", 2, False, "queued")
    page = as_writer.get(response["Location"]).content.decode()
    assert f"Import {job.job_id} of customers.csv is queued." in page
    assert 'hx-trigger="every 1s"' in page

    finished(job)
    assert (job.status, job.successful, job.failed) == ("completed", 3, 2)
    assert set(Customer.objects.filter(customer_account__startswith="C-").values_list("customer_account", flat=True)
               ) == {"C-1", "C-2", "C-4"}


def test_uploading_a_windows_1252_csv_keeps_its_characters(as_writer, erp):
    content = (HEADER + "C-9,Café Müller,EUR,1\n").encode("cp1252")
    as_writer.post("/imports/new/", form("kunden.csv", content))
    job = finished(ImportJob.objects.get())
    assert job.successful == 1
    assert Customer.objects.get(customer_account="C-9").name == "Café Müller"


def test_uploading_an_xlsx_with_a_sheet_and_validate_only(as_writer, erp):
    content = xlsx([["customer_account", "name", "currency"], ["X-1", "Excel AG", "EUR"], ["X-2", "", "EUR"]])
    response = as_writer.post("/imports/new/", form("kunden.xlsx", content, sheet="Kunden", validate_only="on"))
    assert response.status_code == 302
    job = finished(ImportJob.objects.get())
    assert (job.format, job.sheet, job.validate_only, job.status, job.successful, job.failed) == (
        "xlsx", "Kunden", True, "completed", 1, 1)
    assert not Customer.objects.filter(customer_account="X-1").exists()
    assert b"validate only" in as_writer.get(f"/imports/{job.job_id}/").content


def test_the_format_select_wins_over_the_extension(as_writer):
    response = as_writer.post("/imports/new/", form("export.txt", format="csv"))
    assert response.status_code == 302
    assert ImportJob.objects.get().format == "csv"


@pytest.mark.parametrize("fields, message", [
    (form("customers.txt"), "Choose a .csv or .xlsx file"),
    (form("customers.xls", b"\xd0\xcf\x11\xe0 old excel"), "Choose a .csv or .xlsx file"),
    (form("customers.csv", b""), "The submitted file is empty."),
    (form("customers.xlsx", b"customer_account,name\n"), "not an Excel .xlsx workbook"),
    (form(batch_size=0), "greater than or equal to 1"),
    (form(batch_size=10_001), "less than or equal to 10000"),
    (form(type="suppliers"), "Select a valid choice"),
    ({"type": "customers", "batch_size": 100}, "This field is required"),
])
def test_a_bad_upload_is_a_form_error_never_a_500(as_writer, fields, message):
    response = as_writer.post("/imports/new/", fields)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert ImportJob.objects.count() == 0


def test_a_file_over_the_limit_is_refused_before_it_is_read(as_writer, settings):
    settings.IMPORT_MAX_FILE_BYTES = 1024
    response = as_writer.post("/imports/new/", form(content=GOOD_AND_BAD.encode() * 20))
    assert "The file is larger than 1.0\xa0KB." in response.content.decode()
    assert ImportJob.objects.count() == 0


def test_a_tool_error_from_the_service_is_shown_on_the_form(as_writer, monkeypatch):
    def refuse(*args, **kwargs):
        raise ToolError("FILE_TOO_LARGE", "the file is larger than the hub accepts", field="data")

    monkeypatch.setattr(services, "submit", refuse)
    response = as_writer.post("/imports/new/", form())
    assert response.status_code == 200
    assert "FILE_TOO_LARGE: the file is larger than the hub accepts" in response.content.decode()


def test_an_htmx_upload_with_errors_returns_the_form_fragment(as_writer):
    response = as_writer.post("/imports/new/", form("notes.txt"), headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<form method="post" action="/imports/new/" enctype="multipart/form-data"')
    assert "Choose a .csv or .xlsx file" in html and "<html" not in html


def test_an_htmx_upload_that_succeeds_redirects_the_browser(as_writer):
    response = as_writer.post("/imports/new/", form(), headers=HTMX)
    job = ImportJob.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/imports/{job.job_id}/"


def test_the_upload_page_renders_for_writers(as_writer):
    response = as_writer.get("/imports/new/")
    assert response.status_code == 200
    assert b'accept=".csv,.xlsx' in response.content and b'name="validate_only"' in response.content
    assert b'value="100"' in response.content  # the default batch size


def test_a_reader_may_not_upload(as_reader, as_stakeholder, client):
    for who in (as_reader, as_stakeholder):
        assert who.get("/imports/new/").status_code == 403
        assert who.post("/imports/new/", form()).status_code == 403
    anonymous = client.post("/imports/new/", form())
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert ImportJob.objects.count() == 0


def test_the_upload_refuses_other_methods(as_writer):
    assert as_writer.put("/imports/new/").status_code == 405
    assert as_writer.delete("/imports/new/").status_code == 405


# ---- one job --------------------------------------------------------------------------------

def test_the_job_page_shows_counts_errors_and_the_failed_rows_link(as_writer, writer, erp):
    job = finished(submitted(writer, HEADER + "C-1,Alpha,EUR,1\n" + 'C-2,"<b>x</b>",EURO,1\n', filename="a&b.csv"))
    response = as_writer.get(f"/imports/{job.job_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<strong class="percent" data-percent>100%</strong>' in html
    assert 'data-status="completed"' in html and "hx-trigger" not in html
    assert '<dd class="ok" data-successful>1</dd>' in html and 'data-failed>1</dd>' in html
    assert "1 / 2" not in html and "2 / 2" in html
    assert "INVALID_CURRENCY" in html and "<code>EURO</code>" in html
    assert "a&amp;b.csv" in html and "<b>x</b>" not in html  # user text is escaped
    assert f'href="/imports/{job.job_id}/failed-rows.csv"' in html
    assert "Cancel import" not in html and "Resume import" not in html
    assert f'href="/audit/?batch={job.job_id}"' in html


def test_a_running_job_polls_its_fragment_with_rate_and_eta_until_done(as_writer, writer, erp):
    job = submitted(writer)
    ImportJob.objects.filter(pk=job.pk).update(status="running", total=10, processed=4, successful=3, failed=1,
                                               started=timezone.now() - timedelta(seconds=2),
                                               heartbeat=timezone.now())
    page = as_writer.get(f"/imports/{job.job_id}/").content.decode()
    assert f'hx-get="/imports/{job.job_id}/" hx-trigger="every 1s"' in page
    assert "Cancel import" in page and "Resume import" not in page

    fragment = as_writer.get(f"/imports/{job.job_id}/", headers=HTMX)
    html = fragment.content.decode()
    assert html.lstrip().startswith('<div id="import-live"') and "<html" not in html
    assert "data-percent>40%</strong>" in html and "4 / 10" in html
    rate = float(html.split("data-rate>")[1].split("<")[0])
    assert 1.0 < rate <= 2.0
    eta = html.split("data-eta>")[1].split("<")[0]
    assert eta.endswith(" s") and 2 <= int(eta.split()[0]) <= 3

    # Back to the state the fake progress above replaced, so that the real run counts from zero.
    ImportJob.objects.filter(pk=job.pk).update(status="queued", total=None, processed=0, successful=0, failed=0)
    finished(job)
    final = as_writer.get(f"/imports/{job.job_id}/", headers=HTMX).content.decode()
    assert "hx-trigger" not in final and "data-percent>100%</strong>" in final
    assert 'data-eta>—' in final


def test_the_error_table_pages_by_fifty(as_writer, writer):
    job = submitted(writer)
    ImportRowError.objects.bulk_create(ImportRowError(job=job, row=n + 2, column="name", code="MISSING_FIELD",
                                                      message="name is required") for n in range(120))
    ImportJob.objects.filter(pk=job.pk).update(status="completed", total=120, processed=120, failed=120)
    first = as_writer.get(f"/imports/{job.job_id}/")
    assert [e.row for e in first.context["errors"]] == list(range(2, 52))
    assert f'href="/imports/{job.job_id}/?page=2"' in first.content.decode()

    last = as_writer.get(f"/imports/{job.job_id}/?page=3", headers=HTMX)
    html = last.content.decode()
    assert html.lstrip().startswith('<div id="import-live"')
    assert [e.row for e in last.context["errors"]] == list(range(102, 122))
    assert 'hx-target="#import-live"' in html


def test_someone_elses_job_is_refused_except_to_admins(as_reader, as_admin, writer):
    job = submitted(writer)
    assert as_reader.get(f"/imports/{job.job_id}/").status_code == 403
    assert as_admin.get(f"/imports/{job.job_id}/").status_code == 200
    assert as_admin.get("/imports/IMP-nothing/").status_code == 404


def test_the_job_page_refuses_other_methods_and_roles(as_writer, as_stakeholder, writer, client):
    job = submitted(writer)
    assert as_writer.post(f"/imports/{job.job_id}/").status_code == 405
    assert as_stakeholder.get(f"/imports/{job.job_id}/").status_code == 403
    assert client.get(f"/imports/{job.job_id}/").status_code == 302
    expired = client.get(f"/imports/{job.job_id}/", headers=HTMX)  # a poll after the session ended
    assert expired["HX-Redirect"].startswith("/accounts/login/")


def test_readers_see_their_job_without_buttons(as_reader, reader):
    job = submitted(reader)
    html = as_reader.get(f"/imports/{job.job_id}/").content.decode()
    assert 'data-status="queued"' in html and "Cancel import" not in html


# ---- cancel and resume ----------------------------------------------------------------------

def test_cancel_then_resume_runs_the_job_to_the_end(as_writer, writer, erp):
    job = submitted(writer)
    response = as_writer.post(f"/imports/{job.job_id}/cancel/")
    assert response.status_code == 302 and response["Location"] == f"/imports/{job.job_id}/"
    job.refresh_from_db()
    assert job.status == "cancelled" and job.finished is not None
    page = as_writer.get(response["Location"]).content.decode()
    assert "is cancelled" in page and "Resume import" in page and "Cancel import" not in page

    resumed = as_writer.post(f"/imports/{job.job_id}/resume/", headers=HTMX)
    assert resumed.status_code == 200 and resumed["HX-Redirect"] == f"/imports/{job.job_id}/"
    job.refresh_from_db()
    assert job.status == "queued"
    assert (finished(job).status, job.successful, job.failed) == ("completed", 3, 2)


def test_an_interrupted_job_offers_resume(as_writer, writer, settings):
    job = submitted(writer)
    ImportJob.objects.filter(pk=job.pk).update(status="running",
                                               heartbeat=timezone.now() - timedelta(
                                                   seconds=settings.IMPORT_STALE_SECONDS + 5))
    html = as_writer.get(f"/imports/{job.job_id}/").content.decode()
    assert "stopped sending heartbeats" in html and "Resume import" in html
    as_writer.post(f"/imports/{job.job_id}/resume/")
    job.refresh_from_db()
    assert job.status == "queued"


def test_a_wrong_state_is_a_message_not_an_error_page(as_writer, writer, erp):
    job = finished(submitted(writer))
    cancel = as_writer.post(f"/imports/{job.job_id}/cancel/", follow=True)
    assert cancel.status_code == 200
    assert "is completed and cannot be cancelled" in cancel.content.decode()
    resume = as_writer.post(f"/imports/{job.job_id}/resume/", follow=True)
    assert "only failed, cancelled or interrupted imports can be resumed" in resume.content.decode()
    job.refresh_from_db()
    assert job.status == "completed"


def test_a_reader_may_not_cancel_or_resume(as_reader, reader, client):
    job = submitted(reader)
    assert as_reader.post(f"/imports/{job.job_id}/cancel/").status_code == 403
    ImportJob.objects.filter(pk=job.pk).update(status="failed")
    assert as_reader.post(f"/imports/{job.job_id}/resume/").status_code == 403
    assert client.post(f"/imports/{job.job_id}/cancel/").status_code == 302
    job.refresh_from_db()
    assert job.status == "failed"


def test_only_the_owner_or_an_admin_cancels(as_admin, writer, reader):
    other_writer = create_user("writer2", MCP_WRITE, password="writer2-pass-1")
    job = submitted(writer)
    assert logged_in(other_writer).post(f"/imports/{job.job_id}/cancel/").status_code == 403
    assert as_admin.post(f"/imports/{job.job_id}/cancel/").status_code == 302
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert as_admin.post("/imports/IMP-nothing/cancel/").status_code == 404


def test_cancel_and_resume_are_posts(as_writer, writer):
    job = submitted(writer)
    assert as_writer.get(f"/imports/{job.job_id}/cancel/").status_code == 405
    assert as_writer.get(f"/imports/{job.job_id}/resume/").status_code == 405
    job.refresh_from_db()
    assert job.status == "queued"


# ---- through the tools ----------------------------------------------------------------------

def test_every_import_write_goes_through_its_tool_and_is_audited(as_writer, writer, erp):
    as_writer.post("/imports/new/", form())
    job = ImportJob.objects.get()
    as_writer.post(f"/imports/{job.job_id}/cancel/")
    as_writer.post(f"/imports/{job.job_id}/resume/")
    as_writer.post(f"/imports/{job.job_id}/resume/")  # queued already: refused, and audited all the same
    rows = AuditEntry.objects.order_by("id").values_list("tool", "user", "via", "success", "error_code")
    assert list(rows) == [("ax_bulk_import", writer.pk, "dashboard", True, ""),
                          ("ax_cancel_import", writer.pk, "dashboard", True, ""),
                          ("ax_resume_import", writer.pk, "dashboard", True, ""),
                          ("ax_resume_import", writer.pk, "dashboard", False, "INVALID_STATE")]


def test_import_writes_count_against_the_rate_limit(as_writer, writer, settings, monkeypatch):
    settings.RATE_LIMIT_PER_MINUTE = 2
    monkeypatch.setattr(ratelimit, "clock", lambda: 1_800_000_000.0)  # one window for the whole test
    as_writer.post("/imports/new/", form())
    job = ImportJob.objects.get()
    as_writer.post(f"/imports/{job.job_id}/cancel/")

    refused = as_writer.post(f"/imports/{job.job_id}/resume/", follow=True).content.decode()
    assert "more than 2 requests this minute" in refused
    job.refresh_from_db()
    assert job.status == "cancelled"
    upload = as_writer.post("/imports/new/", form())
    assert upload.status_code == 200 and "RATE_LIMITED: more than 2 requests this minute" in upload.content.decode()
    assert ImportJob.objects.count() == 1
    assert AuditEntry.objects.filter(error_code="RATE_LIMITED", via="dashboard").count() == 2


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "latin-1"])
def test_a_csv_in_another_encoding_reaches_the_tool_as_the_same_text(as_writer, erp, encoding):
    # "\x81" is no Windows-1252 character: a file holding it is read as Latin-1.
    content = (HEADER + "C-9,Café Müller\x81,EUR,1\n").encode(encoding)
    assert as_writer.post("/imports/new/", form("kunden.csv", content)).status_code == 302
    job = finished(ImportJob.objects.get())
    assert job.successful == 1
    assert Customer.objects.get(customer_account="C-9").name == "Café Müller\x81"


def test_a_csv_with_a_byte_order_mark_that_is_not_unicode_text_is_a_form_error(as_writer):
    response = as_writer.post("/imports/new/", form(content="\ufeffcustomer_account\n".encode("utf-16-le") + b"\x00"))
    assert response.status_code == 200
    assert "byte-order mark but is not Unicode text" in response.content.decode()
    assert ImportJob.objects.count() == 0


def test_the_dashboard_accepts_files_larger_than_an_api_request_body(as_writer, settings):
    """The request-body limit of the HTTP API does not apply to an upload: IMPORT_MAX_FILE_BYTES does."""
    settings.API_MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    content = (HEADER + "".join(f"C-{n},Name {n},EUR,1\n" for n in range(500))).encode()
    assert len(content) > 4 * settings.API_MAX_BODY_BYTES
    response = as_writer.post("/imports/new/", form(content=content))
    assert response.status_code == 302
    assert ImportJob.objects.get().file.size == len(content)



def test_a_big_workbook_costs_memory_in_proportion_to_its_size(as_writer):
    """The upload reaches ax_bulk_import as base64; checking it must not cost a multiple of the
    file per character (as a regular expression with a repeated group does)."""
    content = ZIP_MAGIC + os.urandom(4 * 1024 * 1024)
    tracemalloc.start()
    try:
        response = as_writer.post("/imports/new/", form("big.xlsx", content))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status_code == 302 and ImportJob.objects.get().file.size == len(content)
    assert peak < 12 * len(content)  # the request, the file, its base64 and the stored copy


# ---- downloads ------------------------------------------------------------------------------

def test_the_failed_rows_download_has_the_bad_rows_and_an_errors_column(as_writer, writer, erp):
    job = finished(submitted(writer, GOOD_AND_BAD + "C-6,=HYPERLINK(1),EUR,0\n"))
    response = as_writer.get(f"/imports/{job.job_id}/failed-rows.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{job.job_id}-failed-rows.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["line", "customer_account", "name", "currency", "credit_limit", "errors"]  # the file's columns
    assert [row[:2] for row in rows[1:]] == [["4", "C-3"], ["6", "C-5"]]
    assert rows[1][-1] == "name: MISSING_FIELD name is required"
    assert "INVALID_CURRENCY" in rows[2][-1]
    assert job.failed == 2  # the formula-looking name is a valid name, imported as text


def test_the_failed_rows_download_follows_who_may_see_the_job(as_reader, as_admin, as_stakeholder, writer, client):
    job = submitted(writer)
    url = f"/imports/{job.job_id}/failed-rows.csv"
    assert as_reader.get(url).status_code == 403
    assert as_admin.get(url).status_code == 200
    assert as_stakeholder.get(url).status_code == 403
    assert client.get(url).status_code == 302
    assert as_admin.post(url).status_code == 405
    assert as_admin.get("/imports/IMP-nothing/failed-rows.csv").status_code == 404


def test_templates_download_as_csv_and_xlsx(as_reader):
    response = as_reader.get("/imports/templates/customers.csv")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="customers-template.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["customer_account", "name", "currency", "credit_limit", "segment", "email"]

    workbook = as_reader.get("/imports/templates/salesorders.xlsx")
    assert workbook["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert workbook["Content-Disposition"] == 'attachment; filename="salesorders-template.xlsx"'
    sheet = load_workbook(io.BytesIO(workbook.content)).active
    assert [cell.value for cell in sheet[1]] == ["order_ref", "customer_account", "item_id", "quantity", "unit_price"]


def test_templates_refuse_unknown_types_methods_and_roles(as_reader, as_stakeholder, client):
    assert as_reader.get("/imports/templates/suppliers.csv").status_code == 404
    assert as_reader.get("/imports/templates/items.xls").status_code == 404
    assert as_reader.post("/imports/templates/items.csv").status_code == 405
    assert as_stakeholder.get("/imports/templates/items.csv").status_code == 403
    assert client.get("/imports/templates/items.csv").status_code == 302


def test_a_job_stopped_before_counting_shows_an_empty_bar(as_writer, writer):
    job = submitted(writer)
    as_writer.post(f"/imports/{job.job_id}/cancel/")
    html = as_writer.get(f"/imports/{job.job_id}/").content.decode()
    assert 'data-percent>0%</strong>' in html and '<dd data-progress>0 / —</dd>' in html
    assert '<progress max="100" value="0"' in as_writer.get("/imports/").content.decode()
