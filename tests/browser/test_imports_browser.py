"""Imports in a real browser: a data admin uploads a CSV with some bad rows, watches the bar
reach 100 %, reads the row errors and downloads the failed rows to fix them; maps the columns of
a German export, validates it and then imports it for real."""

from __future__ import annotations

import csv
import io
import re
import threading
from pathlib import Path

import pytest
from django.utils.module_loading import import_string
from django_q.models import OrmQ
from playwright.sync_api import expect

from core.erp.models import Customer
from core.imports.models import ImportJob
from tests.browser.conftest import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IMPORT_TASK = "core.imports.tasks.run_import"
# Three good customers and two bad ones: a missing name (line 3) and an unknown currency (line 5).
CUSTOMERS = ("customer_account,name,currency,credit_limit,segment\n"
             "C-101,Nordwind Handel,EUR,5000,wholesale\n"
             "C-102,,EUR,100,retail\n"
             "C-103,Café Lumière,EUR,,retail\n"
             "C-104,Brick & Mortar Ltd,EURO,250,retail\n"
             "C-105,Contoso Imports,USD,1200.50,wholesale\n")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def nav(page):
    return page.get_by_role("navigation", name="Main").get_by_role("link")


def run_queued_import(job: ImportJob | None = None) -> None:
    """Do what a django-q2 worker does with the queued import task (of `job`): call its function."""
    task = next(q.task for q in OrmQ.objects.all() if q.task["func"] in (IMPORT_TASK, import_string(IMPORT_TASK))
                and (job is None or list(q.task["args"]) == [job.pk]))
    func = task["func"]
    (import_string(func) if isinstance(func, str) else func)(*task["args"], **task["kwargs"])


def test_upload_a_csv_watch_it_finish_and_download_the_failed_rows(page, writer, erp):
    login(page, "writer", "writer-pass-1")
    nav(page).get_by_text("Imports").click()
    expect(page).to_have_url("/imports/")
    expect(page.locator("#import-results .count")).to_have_text("0 imports")

    page.get_by_label("File", exact=True).set_input_files(
        {"name": "customers.csv", "mimeType": "text/csv", "buffer": CUSTOMERS.encode("utf-8")})
    page.get_by_label("Type").select_option("customers")
    page.get_by_label("Batch size").fill("2")
    expect(page.get_by_label("Validate only")).not_to_be_checked()
    page.get_by_role("button", name="Upload and import").click()

    expect(page).to_have_url(re.compile(r"/imports/IMP-\w+/$"))
    job = ImportJob.objects.get()
    assert page.url.endswith(f"/imports/{job.job_id}/")
    assert (job.original_name, job.batch_size, job.validate_only) == ("customers.csv", 2, False)
    live = page.locator("#import-live")
    expect(live.locator("[data-queued]")).to_contain_text(f"Import {job.job_id} of customers.csv is queued")
    expect(live.locator("[data-status]")).to_have_text("queued")
    expect(live.locator("[data-percent]")).to_have_text("0%")
    expect(live).to_have_attribute("hx-trigger", "every 1s")

    # The page learns of the run only through its own polling of the live fragment.
    worker = threading.Thread(target=run_queued_import)
    worker.start()
    worker.join(30)
    expect(live.locator("[data-percent]")).to_have_text("100%")
    expect(live.locator("progress")).to_have_attribute("value", "100")
    expect(live.locator("[data-status]")).to_have_text("completed with errors")
    expect(live.locator("[data-queued]")).to_have_count(0)
    expect(live).not_to_have_attribute("hx-trigger", "every 1s")
    expect(live.locator("[data-progress]")).to_have_text("5 / 5")
    expect(live.locator("[data-successful]")).to_have_text("3")
    expect(live.locator("[data-failed]")).to_have_text("2")
    errors = live.locator("table.row-errors tbody tr")
    expect(errors).to_have_count(2)
    expect(errors.nth(0)).to_contain_text("MISSING_FIELD")
    expect(errors.nth(1)).to_contain_text("INVALID_CURRENCY")
    expect(errors.nth(1)).to_contain_text("EURO")
    screenshot(page, "import-job")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download failed rows (CSV)").click()
    download = info.value
    assert download.suggested_filename == f"{job.job_id}-failed-rows.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text("utf-8-sig"))))
    assert rows[0] == ["line", "customer_account", "name", "currency", "credit_limit", "segment", "errors"]
    assert [(row[0], row[1]) for row in rows[1:]] == [("3", "C-102"), ("5", "C-104")]
    assert rows[1][-1] == "name: MISSING_FIELD name is required"
    assert rows[2][2] == "Brick & Mortar Ltd" and "currency: INVALID_CURRENCY" in rows[2][-1]

    nav(page).get_by_text("Imports").click()
    row = page.locator(f"#row-{job.job_id}")
    expect(row.locator("[data-status]")).to_have_text("completed with errors")
    expect(row.locator("[data-progress]")).to_have_text("5 / 5")
    expect(page.locator("#import-results")).not_to_have_attribute("hx-trigger", "every 1s")
    screenshot(page, "imports")


def test_a_bad_file_is_refused_on_the_form(page, writer):
    login(page, "writer", "writer-pass-1")
    page.goto("/imports/")
    page.get_by_label("File", exact=True).set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"})
    page.get_by_role("button", name="Upload and import").click()
    expect(page.locator("#import-form .field-error")).to_contain_text("Choose a .csv or .xlsx file")
    expect(page).to_have_url("/imports/")
    assert ImportJob.objects.count() == 0


def test_the_import_pages_fit_a_phone(page, writer, erp):
    from core.imports import services, tasks

    job = services.submit(writer, type="customers", fmt="csv", content=CUSTOMERS.encode(), filename="customers.csv")
    tasks.run_import(job.pk)
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, "writer", "writer-pass-1")
    for url, name in [("/imports/", "imports-phone"), (f"/imports/{job.job_id}/", "import-job-phone")]:
        page.goto(url)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{url} scrolls sideways by {overflow}px on a phone"
        screenshot(page, name)


def test_cancel_and_resume_from_the_job_page(page, writer, erp):
    from core.imports import services

    job = services.submit(writer, type="customers", fmt="csv", content=CUSTOMERS.encode(), filename="customers.csv")
    login(page, "writer", "writer-pass-1")
    page.goto(f"/imports/{job.job_id}/")
    live = page.locator("#import-live")
    expect(live.locator("[data-status]")).to_have_text("queued")
    expect(page.get_by_role("button", name="Resume import")).to_have_count(0)
    page.get_by_role("button", name="Cancel import").click()

    expect(page.locator(".message")).to_contain_text("is cancelled")
    expect(live.locator("[data-status]")).to_have_text("cancelled")
    expect(live).not_to_have_attribute("hx-trigger", "every 1s")
    expect(page.get_by_role("button", name="Cancel import")).to_have_count(0)
    screenshot(page, "import-cancelled")
    page.get_by_role("button", name="Resume import").click()

    expect(page.locator(".message")).to_contain_text("is queued again")
    expect(live).to_have_attribute("hx-trigger", "every 1s")
    worker = threading.Thread(target=run_queued_import)
    worker.start()
    worker.join(30)
    expect(live.locator("[data-status]")).to_have_text("completed with errors")
    expect(live.locator("[data-successful]")).to_have_text("3")


# A German ERP export: its own column names, semicolons and decimal commas.
GERMAN = ("Kundennummer;Firma;Währung;Kreditlimit\n"
          "K-201;Nordwind Handel;EUR;5.000,00\n"
          "K-202;Café Lumière;EUR;\n"
          "K-203;Brick & Mortar Ltd;USD;1.200,50\n")


def run_in_worker(job: ImportJob) -> None:
    worker = threading.Thread(target=run_queued_import, args=(job,))
    worker.start()
    worker.join(30)


def test_map_a_german_file_validate_it_and_import_it_now(page, writer, erp):
    login(page, "writer", "writer-pass-1")
    page.goto("/imports/")
    page.get_by_label("File", exact=True).set_input_files(
        {"name": "kunden.csv", "mimeType": "text/csv", "buffer": GERMAN.encode("utf-8")})
    page.get_by_label("Type").select_option("customers")
    page.get_by_label("Validate only").check()
    page.get_by_role("button", name="Upload and import").click()

    # The columns do not name the fields: the step shows each with its first values and a suggestion.
    step = page.locator("#import-mapping")
    expect(step.get_by_role("heading")).to_contain_text("Map the columns of kunden.csv")
    expect(step.get_by_label("Type")).to_have_value("customers")
    for column, field in [("Kundennummer", "customer_account"), ("Firma", "name"), ("Währung", "currency"),
                          ("Kreditlimit", "credit_limit")]:
        # The header as the file spells it (a reader of an older kind gives it in lowercase).
        expect(step.get_by_label(re.compile(f"^{column}$", re.IGNORECASE))).to_have_value(field)
    expect(step.locator("tr[data-column='Firma' i] .samples")).to_contain_text("Nordwind Handel")
    expect(step.locator("tr[data-column='Kreditlimit' i] .samples")).to_contain_text("5.000,00")
    assert ImportJob.objects.count() == 0
    step.get_by_label("Save this mapping as").fill("ERP Kunden")
    screenshot(page, "import-mapping")
    step.get_by_role("button", name="Validate with this mapping").click()

    expect(page).to_have_url(re.compile(r"/imports/IMP-\w+/$"))
    checked = ImportJob.objects.get()
    mapping = {column.casefold(): field for column, field in checked.mapping.items()}
    assert (checked.validate_only, checked.mapping_name, mapping["firma"]) == (True, "ERP Kunden", "name")
    live = page.locator("#import-live")
    expect(live.locator("[data-queued]")).to_contain_text("is queued")
    expect(page.get_by_role("button", name="Import this file now")).to_have_count(0)
    run_in_worker(checked)
    expect(live.locator("[data-status]")).to_have_text("completed")
    expect(live.locator("[data-queued]")).to_have_count(0)
    expect(live.locator("[data-created]")).to_have_text("3")  # what the import would create
    expect(live.locator("#import-preview [data-delimiter]")).to_have_text("semicolon")
    expect(live.locator("#import-preview [data-decimal]")).to_contain_text("comma")
    expect(live.locator("#import-preview table.preview-rows tbody tr")).to_have_count(3)
    assert not Customer.objects.filter(customer_account__startswith="K-2").exists()
    screenshot(page, "import-validated")

    expect(page.get_by_label("Mode")).to_have_value("create")
    page.get_by_role("button", name="Import this file now").click()
    expect(page).not_to_have_url(re.compile(re.escape(checked.job_id)))
    expect(page).to_have_url(re.compile(r"/imports/IMP-\w+/$"))
    imported = ImportJob.objects.exclude(pk=checked.pk).get()
    assert page.url.endswith(f"/imports/{imported.job_id}/")
    expect(live.locator("[data-from-job]")).to_contain_text(checked.job_id)
    run_in_worker(imported)
    expect(live.locator("[data-status]")).to_have_text("completed")
    expect(live.locator("[data-created]")).to_have_text("3")
    expect(live.locator("[data-failed]")).to_have_text("0")
    assert Customer.objects.get(customer_account="K-202").name == "Café Lumière"
    screenshot(page, "import-from-validated")
