"""Imports pages for imports that sync: the mode, ROI and saved-mapping options of the upload, the
mapping step (a staged file, its columns with suggestions, the guessed type), and on the job
page the preview, the errors by code, the amber "completed with errors", "Import this file now"
and the queued notice."""

from __future__ import annotations

import os
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.accounts.roles import MCP_WRITE
from core.accounts.services import create_user
from core.audit.models import AuditEntry
from core.erp.models import Customer
from core.imports import services, tasks
from core.imports.models import ImportJob, ImportMapping, ImportRowError
from dashboard import imports as views
from tests.helpers import HTMX, logged_in

pytestmark = pytest.mark.django_db

GERMAN = "Kundennummer;Firma;Währung;Kreditlimit\nK-1;Müller GmbH;EUR;1.234,50\nK-2;Schäfer KG;EUR;0\n"
GERMAN_MAPPING = {"Kundennummer": "customer_account", "Firma": "name", "Währung": "currency",
                  "Kreditlimit": "credit_limit"}
NAMED = "customer_account,name,currency\nC-1,Alpha,EUR\nC-2,Beta,EURO\n"


def folded(mapping: dict) -> dict:
    """A mapping made on the step, its columns as the reader gives the header: as the file spells
    them, or (an older reader) in lowercase; the import matches either."""
    return {column.casefold(): field for column, field in mapping.items()}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def tool_calls(monkeypatch) -> list[tuple[str, dict]]:
    """The tool calls the Imports pages make, with their arguments (each still made)."""
    calls: list[tuple[str, dict]] = []
    real = views.call_tool

    def recording(name, arguments, user, **kwargs):
        calls.append((name, dict(arguments)))
        return real(name, arguments, user, **kwargs)

    monkeypatch.setattr(views, "call_tool", recording)
    return calls


def upload(client, content: str | bytes = GERMAN, name: str = "kunden.csv", headers=None, **fields):
    data = content.encode("utf-8") if isinstance(content, str) else content
    return client.post("/imports/new/", {"file": SimpleUploadedFile(name, data), "type": "customers",
                                         "batch_size": 100, **fields}, headers=headers)


def staged_files() -> list[str]:
    directory = views.staging_dir()
    return sorted(os.listdir(directory)) if directory.exists() else []


def step_data(response, **changes) -> dict:
    """The mapping step's form as the page offers it (its preselections), with `changes`."""
    form = response.context["form"]
    data = {"token": form["token"].value(), "shown_type": form["shown_type"].value(), "type": form["type"].value(),
            "save_as": ""}
    data.update({form.field_name(c): form[form.field_name(c)].value() for c in form.columns})
    data.update(changes)
    return data


def finished(job: ImportJob) -> ImportJob:
    tasks.run_import(job.pk)
    job.refresh_from_db()
    return job


def submitted(user, content: str = NAMED, **options) -> ImportJob:
    return services.submit(user, type="customers", fmt="csv", content=content.encode(), filename="c.csv", **options)


# ---- the upload form ------------------------------------------------------------------------

def test_the_upload_form_offers_mode_roi_and_the_saved_mappings(as_writer):
    ImportMapping.objects.create(type="customers", name="SAP <nightly>", mapping=GERMAN_MAPPING)
    ImportMapping.objects.create(type="items", name="Lager", mapping={"Artikelnummer": "item_id"})
    html = as_writer.get("/imports/").content.decode()
    assert '<option value="create" selected>create new records</option>' in html
    assert '<option value="update">update existing records</option>' in html
    assert '<option value="upsert">create or update</option>' in html
    assert "a blank cell leaves a field as it is, and #N/A clears it" in html
    assert 'name="one_off"' in html and "One-off migration, not counted in ROI" in html
    assert '<optgroup label="customers">' in html and '<optgroup label="items">' in html
    assert '<option value="SAP &lt;nightly&gt;">SAP &lt;nightly&gt;</option>' in html  # escaped


def test_an_upload_with_mode_roi_and_a_saved_mapping_reaches_the_tool_with_them(as_writer, writer, erp,
                                                                                tool_calls):
    ImportMapping.objects.create(type="customers", name="SAP", mapping=GERMAN_MAPPING)
    response = upload(as_writer, mode="upsert", one_off="on", mapping_name="SAP", validate_only="on")
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/imports/{job.job_id}/"
    [(name, arguments)] = tool_calls
    assert name == "ax_bulk_import"
    assert {k: arguments[k] for k in ("type", "format", "mode", "roi", "mapping_name", "validate_only")} == {
        "type": "customers", "format": "csv", "mode": "upsert", "roi": False, "mapping_name": "SAP",
        "validate_only": True}
    assert (job.mode, job.roi, job.mapping_name, job.mapping, job.validate_only) == (
        "upsert", False, "SAP", GERMAN_MAPPING, True)
    assert staged_files() == []  # a saved mapping needs no step: nothing is kept
    assert finished(job).successful == 2


def test_a_file_naming_the_fields_is_submitted_at_once_and_nothing_is_kept(as_writer, tool_calls):
    response = upload(as_writer, "Customer Account,NAME,currency,line,errors\nC-1,Alpha,EUR,2,\n", "c.csv")
    assert response.status_code == 302
    assert [arguments.get("mapping") for _, arguments in tool_calls] == [None]
    assert (ImportJob.objects.get().mode, ImportJob.objects.get().roi) == ("create", True)
    assert staged_files() == []


def test_salesorders_in_an_update_mode_is_an_error_next_to_the_mode(as_writer):
    response = upload(as_writer, "Bestellung;Kunde\nA-1;CUST-001\n", "orders.csv", type="salesorders", mode="update")
    assert response.status_code == 200
    assert "salesorders imports only create" in response.context["form"].errors["mode"][0]
    html = response.content.decode()
    mode_field = html.split('data-field="mode"')[1].split("</div>")[0]
    assert "VALIDATION_ERROR" in mode_field and 'class="field-error"' in mode_field
    assert ImportJob.objects.count() == 0 and staged_files() == []


def test_an_unknown_saved_mapping_is_an_error_next_to_its_field(as_writer):
    ImportMapping.objects.create(type="items", name="Lager", mapping={"Artikelnummer": "item_id"})
    response = upload(as_writer, mapping_name="Lager")  # an items mapping, for a customers file
    assert response.status_code == 200
    assert response.context["form"].errors["mapping_name"][0].startswith("MAPPING_NOT_FOUND")
    assert ImportJob.objects.count() == 0


# ---- the mapping step -----------------------------------------------------------------------

def test_a_german_header_gets_the_mapping_step_with_suggestions(as_writer, tool_calls):
    response = upload(as_writer)
    assert response.status_code == 200
    assert "dashboard/imports/mapping.html" in [t.name for t in response.templates]
    assert ImportJob.objects.count() == 0 and tool_calls == []
    form = response.context["form"]
    assert [(c.name.casefold(), c.samples) for c in form.columns] == [
        ("kundennummer", ("K-1", "K-2")), ("firma", ("Müller GmbH", "Schäfer KG")), ("währung", ("EUR", "EUR")),
        ("kreditlimit", ("1.234,50", "0"))]
    assert [form[form.field_name(c)].value() for c in form.columns] == [
        "customer_account", "name", "currency", "credit_limit"]
    html = response.content.decode()
    assert '<option value="customer_account" selected>customer_account (required)</option>' in html
    assert '<option value="credit_limit" selected>credit_limit</option>' in html
    assert '<option value="">— ignore —</option>' in html
    assert "<code>Müller GmbH</code>" in html and "Save this mapping as" in html
    # The file is kept on the server, not in the page: the page carries only its token.
    [name] = staged_files()
    token = form["token"].value()
    assert name == f"{token}.csv" and len(token) >= 32
    assert "Müller GmbH" not in html.split('name="token"')[1].split(">")[0]
    assert (views.staging_dir() / name).read_bytes() == GERMAN.encode()
    assert as_writer.session[views.STAGING_SESSION_KEY][token]["options"]["type"] == "customers"


def test_the_step_preselects_the_type_the_header_looks_like(as_writer):
    response = upload(as_writer, type="items")
    form = response.context["form"]
    assert form["type"].value() == "customers" and form["shown_type"].value() == "customers"
    html = response.content.decode()
    assert "This looks like a customers file, not items" in html
    assert '<option value="customers" selected>customers</option>' in html
    assert [form[form.field_name(c)].value() for c in form.columns][:3] == ["customer_account", "name", "currency"]


def test_an_htmx_upload_swaps_the_form_for_the_step(as_writer):
    response = upload(as_writer, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<form method="post" action="/imports/new/mapping/"')
    assert 'hx-post="/imports/new/mapping/"' in html and 'name="csrfmiddlewaretoken"' in html


def test_submitting_the_step_creates_a_job_with_the_mapping_and_saves_it(as_writer, writer, erp, tool_calls):
    step = upload(as_writer, mode="upsert", one_off="on")
    token = step.context["form"]["token"].value()
    response = as_writer.post("/imports/new/mapping/", step_data(step, save_as="SAP export"))
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/imports/{job.job_id}/"
    [(name, arguments)] = tool_calls
    assert (folded(arguments["mapping"]), arguments["mapping_name"], arguments["mode"], arguments["roi"]) == (
        folded(GERMAN_MAPPING), "SAP export", "upsert", False)
    assert (job.user, job.original_name, folded(job.mapping), job.mapping_name, job.mode, job.roi) == (
        writer, "kunden.csv", folded(GERMAN_MAPPING), "SAP export", "upsert", False)
    assert folded(ImportMapping.objects.get(type="customers", name="SAP export").mapping) == folded(GERMAN_MAPPING)
    assert staged_files() == [] and token not in as_writer.session.get(views.STAGING_SESSION_KEY, {})
    finished(job)
    assert (job.status, job.successful, job.records_created) == ("completed", 2, 2)
    assert Customer.objects.get(customer_account="K-1").name == "Müller GmbH"
    entry = AuditEntry.objects.get(tool="ax_bulk_import")
    assert (entry.user_id, entry.via, entry.success) == (writer.pk, "dashboard", True)

    # The same file, once more: it needs no step with the saved mapping.
    again = upload(as_writer, mapping_name="SAP export", mode="upsert")
    assert again.status_code == 302 and ImportJob.objects.count() == 2


@pytest.mark.parametrize("encoding, charset", [("cp1252", "windows-1252"), ("utf-8-sig", "utf-8"),
                                               ("utf-16", "utf-16")])
def test_a_csv_comes_back_in_the_encoding_it_was_uploaded_in(as_writer, writer, erp, tool_calls, encoding,
                                                             charset):
    # A German Excel export (Windows-1252, ';', decimal commas) through the mapping step: the hub
    # keeps the file in its encoding, says so on the job page, and the failed rows come back in it.
    content = (GERMAN + "K-3;Größe & Söhne;EURO;1.000,00\n").encode(encoding)
    step = upload(as_writer, content)
    response = as_writer.post("/imports/new/mapping/", step_data(step))
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert [arguments["encoding"] for _, arguments in tool_calls] == [encoding]
    with job.file.open("rb") as stored:
        assert stored.read() == content
    finished(job)
    assert (job.status, job.successful, job.failed) == ("completed", 2, 1)
    assert job.dialect["encoding"] == encoding
    page = as_writer.get(f"/imports/{job.job_id}/").content.decode()
    assert views.ENCODINGS[encoding] in page
    download = as_writer.get(f"/imports/{job.job_id}/failed-rows.csv")
    assert download["Content-Type"] == f"text/csv; charset={charset}"
    lines = download.content.decode(encoding).splitlines()
    assert lines[0] == "line;Kundennummer;Firma;Währung;Kreditlimit;errors"
    assert lines[1].startswith("4;K-3;Größe & Söhne;EURO;1.000,00;currency: INVALID_CURRENCY")


def test_the_failed_rows_of_an_uploaded_workbook_download_as_a_workbook(as_writer, writer, erp):
    from openpyxl import load_workbook

    from tests.imports.helpers import xlsx_bytes

    content = xlsx_bytes([["customer_account", "name", "currency"], ["X-1", "=HYPERLINK(\"x\")", "XTS"],
                          ["X-2", "Fine", "EUR"]])
    response = upload(as_writer, content, "kunden.xlsx")
    job = finished(ImportJob.objects.get())
    assert response.status_code == 302 and (job.successful, job.failed) == (1, 1)
    download = as_writer.get(f"/imports/{job.job_id}/failed-rows.xlsx")
    assert download["Content-Type"] == views.XLSX_TYPE
    assert f'filename="{job.job_id}-failed-rows.xlsx"' in download["Content-Disposition"]
    import io

    rows = list(load_workbook(io.BytesIO(download.content)).active.iter_rows(values_only=True))
    assert rows[0] == ("line", "customer_account", "name", "currency", "errors")
    assert rows[1][:4] == (2, "X-1", "'=HYPERLINK(\"x\")", "XTS") and "INVALID_CURRENCY" in rows[1][4]
    assert len(rows) == 2


def test_an_ignored_column_named_like_a_field_is_sent_as_ignored(as_writer, tool_calls):
    step = upload(as_writer, "Kundennummer;Firma;Währung;name\nK-1;Alpha;EUR;old\n")
    form = step.context["form"]
    assert (form["column_1"].value(), form["column_3"].value()) == ("", "name")  # a field's own name first
    assert as_writer.post("/imports/new/mapping/", step_data(step, column_1="name", column_3="")).status_code == 302
    assert folded(tool_calls[0][1]["mapping"]) == {"kundennummer": "customer_account", "firma": "name",
                                                   "währung": "currency", "name": None}


def test_a_staged_file_cannot_be_used_by_another_user(as_writer, as_reader, client, tool_calls):
    step = upload(as_writer)
    data = step_data(step)
    other = logged_in(create_user("writer2", MCP_WRITE, password="writer2-pass-1"))
    assert other.post("/imports/new/mapping/", data).status_code == 404
    assert as_reader.post("/imports/new/mapping/", data).status_code == 403
    anonymous = client.post("/imports/new/mapping/", data)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert ImportJob.objects.count() == 0 and tool_calls == []
    assert staged_files() == [f"{data['token']}.csv"]  # still there for its owner
    assert as_writer.post("/imports/new/mapping/", data).status_code == 302


def test_a_required_field_left_unmapped_is_an_error_on_the_step(as_writer, tool_calls):
    step = upload(as_writer)
    response = as_writer.post("/imports/new/mapping/", step_data(step, column_2=""))
    assert response.status_code == 200
    html = response.content.decode()
    errors = html.split('id="mapping-errors"')[1].split("</div>")[0]
    assert "No column gives the required field currency" in errors and 'role="alert"' in errors
    assert html.index('id="mapping-errors"') < html.index('class="data mapping-table"')
    assert ImportJob.objects.count() == 0 and tool_calls == []
    assert len(staged_files()) == 1  # kept, to fix the mapping


def test_two_columns_for_one_field_is_an_error_on_the_step(as_writer):
    step = upload(as_writer)
    response = as_writer.post("/imports/new/mapping/", step_data(step, column_3="name"))
    assert "the columns firma, kreditlimit all give name" in response.content.decode().casefold()
    assert ImportJob.objects.count() == 0


def test_a_missing_required_field_is_pointed_out_when_the_step_opens(as_writer):
    html = upload(as_writer, "Kundennummer;Firma\nK-1;Alpha\n").content.decode()
    assert "No column was recognised for currency" in html


def test_changing_the_type_on_the_step_shows_that_types_fields(as_writer):
    step = upload(as_writer, "Artikelnummer;Bezeichnung;Preis\nA-1;Stuhl;10,50\n")
    assert step.context["form"]["type"].value() == "items"  # guessed from the header
    response = as_writer.post("/imports/new/mapping/", step_data(step, type="customers", save_as="Lager"),
                              headers=HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<form method="post" action="/imports/new/mapping/"') and "<html" not in html
    assert 'name="shown_type" value="customers"' in html and 'value="Lager"' in html
    assert '<option value="currency">currency (required)</option>' in html and "unit_price" not in html
    assert "The fields of customers are shown" in html
    assert ImportJob.objects.count() == 0


def test_a_tool_error_on_the_step_is_shown_there_and_the_file_kept(as_writer):
    step = upload(as_writer, "Bestellung;Kunde;Artikel;Menge\nA-1;CUST-001;ITEM-001;1\n", mode="update")
    assert step.context["form"]["type"].value() == "customers"  # Kunde: a customer account
    # Without JavaScript, a type changed on the step shows its fields first, then the step is submitted.
    orders = as_writer.post("/imports/new/mapping/", step_data(step, type="salesorders"))
    form = orders.context["form"]
    assert [form[form.field_name(c)].value() for c in form.columns] == [
        "order_ref", "customer_account", "item_id", "quantity"]
    response = as_writer.post("/imports/new/mapping/", step_data(orders))
    assert response.status_code == 200
    assert "salesorders imports only create" in response.content.decode()
    assert ImportJob.objects.count() == 0 and len(staged_files()) == 1


def test_a_step_whose_file_is_gone_asks_for_the_file_again(as_writer):
    step = upload(as_writer)
    (views.staging_dir() / staged_files()[0]).unlink()
    response = as_writer.post("/imports/new/mapping/", step_data(step), follow=True)
    assert response.redirect_chain == [("/imports/", 302)]
    assert "The uploaded file is no longer kept" in response.content.decode()
    assert ImportJob.objects.count() == 0


def test_the_step_is_a_post_for_writers(as_writer, as_reader):
    assert as_writer.get("/imports/new/mapping/").status_code == 405
    assert as_writer.post("/imports/new/mapping/", {"token": "made-up"}).status_code == 404
    assert as_reader.post("/imports/new/mapping/", {"token": "made-up"}).status_code == 403


def test_staged_files_older_than_a_day_are_removed_at_the_next_upload(as_writer):
    directory = views.staging_dir()
    directory.mkdir(parents=True)
    old, fresh = directory / "old.csv", directory / "fresh.csv"
    for path in (old, fresh):
        path.write_text("x")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    assert as_writer.get("/imports/new/").status_code == 200 and old.exists()  # only an upload cleans up
    upload(as_writer, NAMED, "c.csv")
    assert not old.exists() and fresh.exists()
    assert views.remove_stale_staged_files(now=time.time() + 2 * 24 * 3600) == 1
    assert staged_files() == []


# ---- the job page ---------------------------------------------------------------------------

def test_the_job_page_shows_the_preview_and_the_errors_by_code(as_writer, writer, erp):
    content = GERMAN + "K-3;Ohne;EURO;0\nK-4;<b>Fett</b>;XXX;0\nK-5;;EUR;0\n"
    job = finished(submitted(writer, content, mapping=GERMAN_MAPPING))
    assert job.failed == 3
    html = as_writer.get(f"/imports/{job.job_id}/").content.decode()
    preview = html.split('id="import-preview"')[1].split("</section>")[0]
    assert "<dd data-encoding>UTF-8</dd>" in preview and "<dd data-delimiter>semicolon</dd>" in preview
    assert "<dd data-decimal>comma (1.234,56)</dd>" in preview
    assert "→ <strong>customer_account</strong>" in preview and "→ <strong>credit_limit</strong>" in preview
    assert "<code>kundennummer</code>" in preview.lower()
    assert "<th>customer_account</th><th>name</th><th>currency</th><th>credit_limit</th>" in preview
    assert "Müller GmbH" in preview and "1234.50" in preview  # as parsed: the decimal comma read
    assert '<span class="badge bad">INVALID_CURRENCY</span>' in preview
    assert "&lt;b&gt;Fett&lt;/b&gt;" in preview and "<b>Fett</b>" not in preview
    summary = html.split('class="error-summary"')[1].split("</ul>")[0]
    assert summary.index("INVALID_CURRENCY") < summary.index("MISSING_FIELD")
    for code, count in [("INVALID_CURRENCY", 2), ("MISSING_FIELD", 1)]:
        assert f'<li data-code="{code}"><span class="badge bad">{code}</span> <strong>{count}</strong>' in summary
    assert html.index("Errors by code") < html.index('class="data row-errors"')


def test_a_job_not_read_yet_has_no_preview_and_a_clean_one_no_summary(as_writer, writer, erp):
    job = submitted(writer, "customer_account,name,currency\nC-1,Alpha,EUR\n")
    assert 'id="import-preview"' not in as_writer.get(f"/imports/{job.job_id}/").content.decode()
    html = as_writer.get(f"/imports/{finished(job).job_id}/").content.decode()
    assert 'id="import-preview"' in html and "<dd data-delimiter>comma</dd>" in html
    assert "Errors by code" not in html


def test_the_job_page_shows_mode_roi_mapping_and_records(as_writer, writer, erp):
    ImportMapping.objects.create(type="customers", name="SAP", mapping=GERMAN_MAPPING)
    first = finished(submitted(writer, GERMAN, mapping_name="SAP"))
    html = as_writer.get(f"/imports/{first.job_id}/").content.decode()
    assert '<dd data-mode="create">create new records, batches of 100</dd>' in html
    assert "<dd data-roi>counted</dd>" in html and "<dd data-mapping>SAP</dd>" in html
    assert "<dd data-created>2</dd>" in html and "<dd data-updated>0</dd>" in html
    assert "data-from-job" not in html

    again = services.submit_from_job(writer, first, mode="upsert")
    ImportJob.objects.filter(pk=again.pk).update(roi=False)
    html = as_writer.get(f"/imports/{finished(again).job_id}/").content.decode()
    assert '<dd data-mode="upsert">create or update, batches of 100</dd>' in html
    assert "<dd data-roi>one-off migration, not counted</dd>" in html
    assert f'from <a href="/imports/{first.job_id}/"><code>{first.job_id}</code></a>' in html
    assert "<dd data-created>0</dd>" in html and "<dd data-unchanged>2</dd>" in html


def test_a_job_completed_with_failed_rows_is_amber_on_the_list_and_its_page(as_writer, writer, erp):
    mixed = finished(submitted(writer, NAMED))
    clean = finished(submitted(writer, "customer_account,name,currency\nC-9,Nine,EUR\n"))
    badge = ('<span class="badge status-completed-errors" data-status="completed" data-with-errors>'
             "completed with errors</span>")
    page = as_writer.get(f"/imports/{mixed.job_id}/").content.decode()
    assert badge in page
    assert badge not in as_writer.get(f"/imports/{clean.job_id}/").content.decode()
    rows = as_writer.get("/imports/", headers=HTMX).content.decode()
    assert badge in rows.split(f'id="row-{mixed.job_id}"')[1].split("</tr>")[0]
    assert ('<span class="badge status-completed" data-status="completed">completed</span>'
            in rows.split(f'id="row-{clean.job_id}"')[1].split("</tr>")[0])


def test_import_this_file_now_is_offered_for_a_finished_validate_only_job_to_writers(as_writer, as_reader, writer,
                                                                                     reader, erp):
    checked = finished(submitted(writer, validate_only=True))
    html = as_writer.get(f"/imports/{checked.job_id}/").content.decode()
    assert f'<form method="post" action="/imports/{checked.job_id}/import-now/"' in html
    assert "Import this file now" in html and 'name="csrfmiddlewaretoken"' in html.split("import-now/")[1]
    assert '<option value="create" selected>create new records</option>' in html.split('id="import-now-mode"')[1]
    assert ('<input type="number" name="batch_size" id="import-now-batch-size" value="100" min="1" max="10000" '
            'required>') in html

    assert "Import this file now" not in as_writer.get(f"/imports/{submitted(writer, validate_only=True).job_id}/"
                                                       ).content.decode()  # still queued
    assert "Import this file now" not in as_writer.get(f"/imports/{finished(submitted(writer)).job_id}/"
                                                       ).content.decode()  # imported already
    own = finished(submitted(reader, validate_only=True))
    assert "Import this file now" not in as_reader.get(f"/imports/{own.job_id}/").content.decode()


def test_import_this_file_now_creates_a_from_job_import(as_writer, writer, erp, tool_calls):
    checked = finished(submitted(writer, GERMAN, mapping=GERMAN_MAPPING, validate_only=True, mode="upsert"))
    assert (checked.records_created, Customer.objects.filter(customer_account__startswith="K-").count()) == (2, 0)
    assert "<dt>Would create</dt><dd data-created>2</dd>" in as_writer.get(f"/imports/{checked.job_id}/"
                                                                          ).content.decode()
    response = as_writer.post(f"/imports/{checked.job_id}/import-now/", {"mode": "create"})
    new = ImportJob.objects.exclude(pk=checked.pk).get()
    assert response.status_code == 302 and response["Location"] == f"/imports/{new.job_id}/"
    assert tool_calls == [("ax_bulk_import", {"from_job": checked.job_id, "mode": "create"})]
    assert (new.source_job, new.validate_only, new.mode, new.mapping) == (checked, False, "create", GERMAN_MAPPING)
    assert finished(new).records_created == 2
    assert Customer.objects.get(customer_account="K-1").name == "Müller GmbH"
    html = as_writer.get(f"/imports/{new.job_id}/").content.decode()
    assert f'from <a href="/imports/{checked.job_id}/">' in html and "Import this file now" not in html
    entry = AuditEntry.objects.filter(tool="ax_bulk_import").latest("id")
    assert (entry.user_id, entry.via, entry.success) == (writer.pk, "dashboard", True)


def test_import_this_file_now_over_htmx_keeps_the_jobs_mode_and_redirects(as_writer, writer, erp):
    checked = finished(submitted(writer, validate_only=True, mode="upsert"))
    response = as_writer.post(f"/imports/{checked.job_id}/import-now/", {}, headers=HTMX)
    new = ImportJob.objects.exclude(pk=checked.pk).get()
    assert response["HX-Redirect"] == f"/imports/{new.job_id}/"
    assert (new.mode, new.source_job_id) == ("upsert", checked.pk)


def test_import_this_file_now_takes_another_batch_size(as_writer, writer, erp, tool_calls):
    checked = finished(submitted(writer, validate_only=True, batch_size=100))
    response = as_writer.post(f"/imports/{checked.job_id}/import-now/", {"mode": "create", "batch_size": "1"})
    new = ImportJob.objects.exclude(pk=checked.pk).get()
    assert response.status_code == 302
    assert tool_calls == [("ax_bulk_import", {"from_job": checked.job_id, "mode": "create", "batch_size": 1})]
    assert (new.batch_size, new.mode) == (1, "create")
    too_big = as_writer.post(f"/imports/{checked.job_id}/import-now/", {"batch_size": "10001"}, follow=True)
    assert "less than or equal to 10000" in too_big.content.decode()
    assert ImportJob.objects.count() == 2


def test_import_this_file_now_refusals(as_writer, as_reader, writer, reader, erp):
    running = submitted(writer, validate_only=True)
    refused = as_writer.post(f"/imports/{running.job_id}/import-now/", follow=True)
    assert "wait until it has finished" in refused.content.decode()
    bad_mode = as_writer.post(f"/imports/{running.job_id}/import-now/", {"mode": "merge"}, follow=True)
    assert "Select a valid choice" in bad_mode.content.decode()
    assert as_writer.get(f"/imports/{running.job_id}/import-now/").status_code == 405
    own = finished(submitted(reader, validate_only=True))
    assert as_reader.post(f"/imports/{own.job_id}/import-now/").status_code == 403
    other = logged_in(create_user("writer2", MCP_WRITE, password="writer2-pass-1"))
    assert other.post(f"/imports/{own.job_id}/import-now/").status_code == 403
    assert as_writer.post("/imports/IMP-nothing/import-now/").status_code == 404
    assert ImportJob.objects.count() == 2


def test_the_queued_notice_shows_only_while_the_job_is_queued(as_writer, writer, erp):
    response = upload(as_writer, NAMED, "customers.csv")
    job = ImportJob.objects.get()
    page = as_writer.get(response["Location"]).content.decode()
    live = page.split('<div id="import-live"')[1]
    assert f"Import {job.job_id} of customers.csv is queued." in live  # inside the live part
    assert 'class="messages"' not in page  # no flash beside it that would outlive the queue
    ImportJob.objects.filter(pk=job.pk).update(status="running", total=2)
    assert "is queued" not in as_writer.get(f"/imports/{job.job_id}/", headers=HTMX).content.decode()
    ImportJob.objects.filter(pk=job.pk).update(status="queued", total=None)
    finished(job)
    assert "data-queued" not in as_writer.get(f"/imports/{job.job_id}/").content.decode()


def test_the_live_fragment_costs_the_same_queries_however_many_errors(as_writer, writer, erp):
    def queries(errors: int) -> int:
        job = finished(submitted(writer, NAMED))
        ImportRowError.objects.bulk_create(ImportRowError(job=job, row=n + 10, code=f"CODE_{n % 7}", message="m")
                                           for n in range(errors))
        with CaptureQueriesContext(connection) as captured:
            assert as_writer.get(f"/imports/{job.job_id}/", headers=HTMX).status_code == 200
        return len(captured)

    assert queries(1) == queries(120)
