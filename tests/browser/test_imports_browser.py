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
from django.conf import settings
from django.utils.module_loading import import_string
from django_q.models import OrmQ
from playwright.sync_api import expect

from core.erp.models import Customer
from core.imports.models import ImportJob, ImportMapping
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


# ---- imports that sync: mode, ROI, saved mappings, the preview and the errors by code -----------

def upload(page, name: str, content: bytes, *, mode: str | None = None, mapping_name: str | None = None,
           one_off: bool = False) -> None:
    """Fill in and send the upload form of the Imports page, as a data admin does: a customers file."""
    page.goto("/imports/")
    form = page.locator("#import-form")
    form.get_by_label("File", exact=True).set_input_files({"name": name, "mimeType": "text/csv", "buffer": content})
    form.get_by_label("Type").select_option("customers")
    if mode:
        form.get_by_label("Mode").select_option(mode)
    if mapping_name:
        form.get_by_label("Saved mapping").select_option(mapping_name)
    if one_off:
        form.get_by_label("One-off migration, not counted in ROI").check()
    form.get_by_role("button", name="Upload and import").click()


def job_on_page(page) -> ImportJob:
    """The job whose page the browser shows, once it got there."""
    expect(page).to_have_url(re.compile(r"/imports/IMP-\w+/$"))
    return ImportJob.objects.get(job_id=re.search(r"/imports/(IMP-\w+)/$", page.url).group(1))


def expect_records(live, *, created: int, updated: int, unchanged: int) -> None:
    expect(live.locator("[data-created]")).to_have_text(str(created))
    expect(live.locator("[data-updated]")).to_have_text(str(updated))
    expect(live.locator("[data-unchanged]")).to_have_text(str(unchanged))


NIGHTLY = ("customer_account,name,currency,credit_limit\n"
           "S-1,Alpha Handel,EUR,100\n"
           "S-2,Beta KG,EUR,200\n"
           "S-3,Gamma Ltd,USD,300\n")
# The next night's export: Beta renamed, Gamma's credit limit raised, Alpha as it was.
NIGHTLY_CHANGED = ("customer_account,name,currency,credit_limit\n"
                   "S-1,Alpha Handel,EUR,100\n"
                   "S-2,Beta & Söhne KG,EUR,200\n"
                   "S-3,Gamma Ltd,USD,350\n")


def test_a_nightly_sync_upserts_then_finds_nothing_changed_then_updates(page, writer, erp):
    login(page, "writer", "writer-pass-1")
    live = page.locator("#import-live")

    upload(page, "nightly.csv", NIGHTLY.encode(), mode="upsert")
    first = job_on_page(page)
    assert (first.mode, first.roi, first.mapping_name) == ("upsert", True, "")
    expect(page.locator("#import-mapping")).to_have_count(0)  # the header names the fields: no step
    expect(live.locator("[data-mode]")).to_have_text("create or update, batches of 100")
    expect(live.locator("[data-roi]")).to_have_text("counted")
    run_in_worker(first)
    expect(live.locator("[data-status]")).to_have_text("completed")
    expect_records(live, created=3, updated=0, unchanged=0)

    # The same export the next night: everything is there already, as it is.
    upload(page, "nightly.csv", NIGHTLY.encode(), mode="upsert")
    again = job_on_page(page)
    assert (again.pk != first.pk, again.mode) == (True, "upsert")
    expect(live.locator("[data-mode]")).to_have_text("create or update, batches of 100")
    run_in_worker(again)
    expect(live.locator("[data-status]")).to_have_text("completed")
    expect(live.locator("[data-successful]")).to_have_text("3")
    expect(live.locator("[data-failed]")).to_have_text("0")
    expect_records(live, created=0, updated=0, unchanged=3)
    screenshot(page, "import-upsert-unchanged")

    upload(page, "nightly-changed.csv", NIGHTLY_CHANGED.encode("utf-8"), mode="update")
    changed = job_on_page(page)
    expect(live.locator("[data-mode]")).to_have_text("update existing records, batches of 100")
    run_in_worker(changed)
    expect(live.locator("[data-status]")).to_have_text("completed")
    expect_records(live, created=0, updated=2, unchanged=1)
    assert Customer.objects.get(customer_account="S-2").name == "Beta & Söhne KG"
    assert str(Customer.objects.get(customer_account="S-3").credit_limit) == "350.00"
    assert Customer.objects.filter(customer_account__startswith="S-").count() == 3


def test_a_one_off_migration_is_not_counted_in_roi(page, writer, erp):
    login(page, "writer", "writer-pass-1")
    upload(page, "migration.csv", NIGHTLY.encode(), one_off=True)
    job = job_on_page(page)
    assert (job.roi, job.mode) == (False, "create")
    live = page.locator("#import-live")
    expect(live.locator("[data-roi]")).to_have_text("one-off migration, not counted")
    run_in_worker(job)
    expect(live.locator("[data-status]")).to_have_text("completed")
    expect(live.locator("[data-roi]")).to_have_text("one-off migration, not counted")
    expect(live.locator("[data-created]")).to_have_text("3")


def test_a_saved_mapping_chosen_on_the_form_needs_no_mapping_step(page, writer, erp):
    ImportMapping.objects.create(type="customers", name="ERP Kunden (nightly)", mapping={
        "Kundennummer": "customer_account", "Firma": "name", "Währung": "currency", "Kreditlimit": "credit_limit"})
    login(page, "writer", "writer-pass-1")
    upload(page, "kunden.csv", GERMAN.encode("utf-8"), mapping_name="ERP Kunden (nightly)")

    job = job_on_page(page)  # straight to the job: no step
    expect(page.locator("#import-mapping")).to_have_count(0)
    assert job.mapping_name == "ERP Kunden (nightly)"
    live = page.locator("#import-live")
    expect(live.locator("[data-mapping]")).to_have_text("ERP Kunden (nightly)")
    run_in_worker(job)
    expect(live.locator("[data-status]")).to_have_text("completed")
    expect(live.locator("[data-successful]")).to_have_text("3")
    expect(live.locator("[data-created]")).to_have_text("3")
    expect(live.locator("[data-failed]")).to_have_text("0")
    expect(live.locator("#import-preview .column-map")).to_contain_text("credit_limit")
    assert Customer.objects.get(customer_account="K-203").name == "Brick & Mortar Ltd"
    assert str(Customer.objects.get(customer_account="K-201").credit_limit) == "5000.00"


# A German Excel export as Excel writes it: Windows-1252, semicolons, decimal commas; K-3's currency is wrong.
EXCEL_GERMAN = ("Kundennummer;Firma;Währung;Kreditlimit\n"
                "K-1;Müller GmbH;EUR;1.234,50\n"
                "K-3;Größe & Söhne;EURO;1.000,00\n").encode("cp1252")


def test_a_windows_1252_export_shows_how_it_was_read_its_errors_by_code_and_comes_back_in_cp1252(page, writer,
                                                                                                 erp):
    login(page, "writer", "writer-pass-1")
    upload(page, "kunden-excel.csv", EXCEL_GERMAN)

    step = page.locator("#import-mapping")
    expect(step.get_by_role("heading")).to_contain_text("Map the columns of kunden-excel.csv")
    expect(step.locator("tr[data-column='Firma' i] .samples")).to_contain_text("Größe & Söhne")  # read as cp1252
    step.get_by_role("button", name="Import with this mapping").click()

    job = job_on_page(page)
    live = page.locator("#import-live")
    run_in_worker(job)
    expect(live.locator("[data-status]")).to_have_text("completed with errors")
    expect(live.locator("[data-successful]")).to_have_text("1")
    expect(live.locator("[data-failed]")).to_have_text("1")
    preview = live.locator("#import-preview")
    expect(preview.locator("[data-encoding]")).to_have_text("Windows-1252")
    expect(preview.locator("[data-delimiter]")).to_have_text("semicolon")
    expect(preview.locator("[data-decimal]")).to_have_text("comma (1.234,56)")
    expect(preview.locator("table.preview-rows")).to_contain_text("1234.50")  # the decimal comma read

    summary = live.locator("#import-errors ul.error-summary")
    expect(live.get_by_role("heading", name="Errors by code")).to_be_visible()
    expect(summary.locator("li")).to_have_count(1)
    expect(summary.locator("li[data-code='INVALID_CURRENCY'] .badge")).to_have_text("INVALID_CURRENCY")
    expect(summary.locator("li[data-code='INVALID_CURRENCY'] strong")).to_have_text("1")
    errors = live.locator("table.row-errors")
    expect(errors.locator("tbody tr")).to_have_count(1)
    expect(errors.locator("tbody tr")).to_contain_text("EURO")
    assert summary.bounding_box()["y"] < errors.bounding_box()["y"], "the summary is not above the row errors"
    screenshot(page, "import-cp1252-errors")

    with page.expect_download() as info:
        live.get_by_role("link", name="Download failed rows (CSV)").click()
    data = Path(info.value.path()).read_bytes()
    assert "Größe & Söhne".encode("cp1252") in data  # not its UTF-8 bytes
    lines = data.decode("cp1252").splitlines()
    assert lines[0] == "line;Kundennummer;Firma;Währung;Kreditlimit;errors"
    assert lines[1].startswith("3;K-3;Größe & Söhne;EURO;1.000,00;currency: INVALID_CURRENCY")
    assert len(lines) == 2


def css_rule_colours(selector: str) -> dict[str, str]:
    """The background and colour static/css/hub.css gives `selector`, its var(--x) resolved from
    :root, as getComputedStyle writes them: rgb(r, g, b)."""
    css = (Path(settings.BASE_DIR) / "static" / "css" / "hub.css").read_text("utf-8")
    variables = dict(re.findall(r"(--[\w-]+):\s*([^;]+);", re.search(r":root\s*\{([^}]*)\}", css).group(1)))
    body = re.search(re.escape(selector) + r"\s*\{([^}]*)\}", css).group(1)
    declared = dict(re.findall(r"(?:^|;)\s*(background|color)\s*:\s*([^;]+)", body))

    def rgb(value: str) -> str:
        value = value.strip()
        while value.startswith("var("):
            value = variables[value[4:-1].strip()].strip()
        hex_digits = value.lstrip("#")
        return "rgb({}, {}, {})".format(*(int(hex_digits[i:i + 2], 16) for i in (0, 2, 4)))

    return {name: rgb(value) for name, value in declared.items()}


def badge_colours(locator) -> dict[str, str]:
    return locator.evaluate("el => { const s = getComputedStyle(el);"
                            " return {background: s.backgroundColor, color: s.color}; }")


def test_completed_with_errors_is_amber_not_the_green_of_completed(page, writer, erp):
    from core.imports import services, tasks

    mixed = services.submit(writer, type="customers", fmt="csv", content=CUSTOMERS.encode(), filename="mixed.csv")
    clean = services.submit(writer, type="customers", fmt="csv", content=NIGHTLY.encode(), filename="clean.csv")
    for job in (mixed, clean):
        tasks.run_import(job.pk)
    amber = css_rule_colours(".badge.status-completed-errors")
    green = css_rule_colours(".badge.status-completed")
    assert amber.keys() == green.keys() == {"background", "color"} and amber != green
    login(page, "writer", "writer-pass-1")

    page.goto(f"/imports/{mixed.job_id}/")
    badge = page.locator("#import-live [data-status]")
    expect(badge).to_have_text("completed with errors")
    expect(badge).to_have_css("background-color", amber["background"])
    with_errors = badge_colours(badge)
    page.goto(f"/imports/{clean.job_id}/")
    expect(badge).to_have_text("completed")
    without_errors = badge_colours(badge)
    assert with_errors == amber, f"'completed with errors' is {with_errors}, hub.css gives {amber}"
    assert without_errors == green
    assert with_errors["background"] != without_errors["background"]
    assert with_errors["color"] != without_errors["color"]

    page.goto("/imports/")  # the list shows the same two colours
    expect(page.locator(f"#row-{mixed.job_id} [data-status]")).to_have_text("completed with errors")
    assert badge_colours(page.locator(f"#row-{mixed.job_id} [data-status]")) == amber
    assert badge_colours(page.locator(f"#row-{clean.job_id} [data-status]")) == green
    screenshot(page, "imports-amber")
