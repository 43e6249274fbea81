"""Batch pages: the list with live progress, one batch, and submitting a batch as JSON."""

from __future__ import annotations

import json

import pytest
from django_q.models import OrmQ

from core.audit.models import AuditEntry
from core.tools.models import BatchRun
from tests.dashboard.conftest import batch_run
from tests.helpers import HTMX

CHECK = {"tool": "ax_check_inventory", "arguments": {"item_id": "ITEM-001"}}
MISSING = {"tool": "ax_get_customer", "arguments": {"customer_account": "CUST-404"}}


# ---- the list -------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_list_shows_a_readers_own_batches_and_an_admin_all(as_reader, as_admin, reader, writer):
    batch_run(reader, "B-mine")
    batch_run(writer, "B-theirs")
    mine = as_reader.get("/batches/")
    assert mine.status_code == 200
    assert [run.batch_id for run in mine.context["page"]] == ["B-mine"]
    assert b'href="/batches/B-mine/"' in mine.content
    assert b"New batch" not in mine.content  # only admins submit from the dashboard
    every = as_admin.get("/batches/")
    assert {run.batch_id for run in every.context["page"]} == {"B-mine", "B-theirs"}
    assert b'href="/batches/new/"' in every.content


@pytest.mark.django_db
def test_the_list_filters_by_status(as_admin, reader):
    batch_run(reader, "B-done")
    batch_run(reader, "B-queued", status=BatchRun.Status.QUEUED)
    batch_run(reader, "B-running", status=BatchRun.Status.RUNNING, total=4, processed=2)
    active = as_admin.get("/batches/?status=active")
    assert {run.batch_id for run in active.context["page"]} == {"B-queued", "B-running"}
    done = as_admin.get("/batches/?status=completed")
    assert [run.batch_id for run in done.context["page"]] == ["B-done"]


@pytest.mark.django_db
def test_the_list_polls_while_a_batch_moves_and_stops_when_all_are_done(as_reader, reader):
    run = batch_run(reader, "B-live", status=BatchRun.Status.RUNNING, total=4, processed=1)
    moving = as_reader.get("/batches/", headers=HTMX)
    html = moving.content.decode()
    assert html.lstrip().startswith('<section id="batch-results"')
    assert 'hx-trigger="every 1s"' in html and 'hx-get="/batches/"' in html
    assert '<progress max="4" value="1"' in html and "1 / 4" in html
    assert "<html" not in html

    BatchRun.objects.filter(pk=run.pk).update(status=BatchRun.Status.COMPLETED, processed=4, successful=4)
    done = as_reader.get("/batches/", headers=HTMX).content.decode()
    assert "hx-trigger" not in done
    assert 'data-status="completed"' in done


@pytest.mark.django_db
def test_the_list_refuses_other_methods_and_roles(as_reader, as_stakeholder):
    assert as_reader.post("/batches/").status_code == 405
    assert as_stakeholder.get("/batches/").status_code == 403


# ---- one batch ------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_detail_lists_each_operation_with_its_result(as_reader, reader):
    results = [
        {"index": 0, "success": True, "output": {"item_id": "ITEM-001", "available": 50}},
        {"index": 1, "success": False, "error": "CUST_NOT_FOUND", "message": "customer 'CUST-404' does not exist"},
        {"index": 2, "success": False, "error": "VALIDATION_ERROR", "message": "requests[2]: must be an object"},
    ]
    batch_run(reader, "B-detail", total=3, results=results, requests=[CHECK, MISSING, "garbage"])
    response = as_reader.get("/batches/B-detail/")
    assert response.status_code == 200
    html = response.content.decode()
    assert [op.success for op in response.context["operations"]] == [True, False, False]
    assert "&quot;available&quot;: 50" in html
    assert "CUST_NOT_FOUND" in html and "customer &#x27;CUST-404&#x27; does not exist" in html
    assert "(malformed entry)" in html
    assert 'href="/audit/?batch=B-detail"' in html
    assert "hx-trigger" not in html

    failed_only = as_reader.get("/batches/B-detail/?only=failed")
    assert [op.index for op in failed_only.context["operations"]] == [1, 2]


@pytest.mark.django_db
def test_the_detail_of_a_running_batch_polls_a_fragment_until_done(as_reader, reader):
    run = batch_run(reader, "B-run", status=BatchRun.Status.RUNNING, total=10, processed=3)
    page = as_reader.get("/batches/B-run/").content.decode()
    assert 'hx-get="/batches/B-run/" hx-trigger="every 1s"' in page

    fragment = as_reader.get("/batches/B-run/", headers=HTMX)
    html = fragment.content.decode()
    assert html.lstrip().startswith('<div id="batch-live"')
    assert "3 / 10" in html and 'hx-trigger="every 1s"' in html and "<html" not in html

    BatchRun.objects.filter(pk=run.pk).update(
        status=BatchRun.Status.COMPLETED, processed=10, successful=10,
        results=[{"index": i, "success": True, "output": {}} for i in range(10)])
    final = as_reader.get("/batches/B-run/", headers=HTMX).content.decode()
    assert "hx-trigger" not in final
    assert "10 / 10" in final and "Operations" in final


@pytest.mark.django_db
def test_the_detail_of_someone_elses_batch_is_refused_except_to_admins(as_reader, as_admin, writer):
    batch_run(writer, "B-theirs")
    assert as_reader.get("/batches/B-theirs/").status_code == 403
    assert as_admin.get("/batches/B-theirs/").status_code == 200
    assert as_admin.get("/batches/B-nothing/").status_code == 404


@pytest.mark.django_db
def test_the_detail_refuses_other_methods_and_roles(as_reader, as_stakeholder, reader):
    batch_run(reader, "B-x")
    assert as_reader.post("/batches/B-x/").status_code == 405
    assert as_stakeholder.get("/batches/B-x/").status_code == 403


# ---- submitting -----------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_form_is_for_admins_only(as_admin, as_writer, as_reader, as_stakeholder):
    assert as_admin.get("/batches/new/").status_code == 200
    for client in (as_writer, as_reader, as_stakeholder):
        assert client.get("/batches/new/").status_code == 403
        assert client.post("/batches/new/", {"payload": json.dumps([CHECK]), "max_parallel": 5}).status_code == 403
    assert BatchRun.objects.count() == 0


@pytest.mark.django_db
def test_the_form_refuses_other_methods(as_admin):
    assert as_admin.put("/batches/new/").status_code == 405
    assert as_admin.delete("/batches/new/").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_submitting_a_batch_runs_it_and_shows_its_results(as_admin, staff_admin, erp):
    response = as_admin.post("/batches/new/", {"payload": json.dumps([CHECK, MISSING]), "max_parallel": 2})
    run = BatchRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/batches/{run.batch_id}/"
    assert (run.status, run.successful, run.failed, run.via) == ("completed", 1, 1, "dashboard")
    assert set(AuditEntry.objects.values_list("via", flat=True)) == {"dashboard"}
    page = as_admin.get(response["Location"])
    assert b"1 succeeded, 1 failed" in page.content  # the flash message
    assert b"CUST_NOT_FOUND" in page.content


@pytest.mark.django_db(transaction=True)
def test_submitting_async_queues_the_batch_on_the_worker(as_admin, erp):
    payload = {"requests": [CHECK], "stop_on_error": True}
    response = as_admin.post("/batches/new/", {"payload": json.dumps(payload), "is_async": "on", "max_parallel": 3})
    run = BatchRun.objects.get()
    assert response.status_code == 302
    assert (run.status, run.is_async, run.stop_on_error, run.max_parallel) == ("queued", True, True, 3)
    assert OrmQ.objects.count() == 1
    assert b"is queued" in as_admin.get(response["Location"]).content


@pytest.mark.django_db(transaction=True)
def test_submitting_twice_with_one_idempotency_key_runs_once(as_admin, erp):
    form = {"payload": json.dumps([CHECK]), "max_parallel": 1, "idempotency_key": "ops-7"}
    first = as_admin.post("/batches/new/", form)
    second = as_admin.post("/batches/new/", form)
    assert first["Location"] == second["Location"]
    assert BatchRun.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("payload, message", [
    ("[{\"tool\": ", "This is not valid JSON"),
    ("NaN", "This is not valid JSON"),
    ("[" * 100_000, "This is not valid JSON"),
    ("42", "Give a JSON array of requests"),
    ("{\"tool\": \"ax_get_customer\"}", "Give a JSON array of requests"),
    ("", "This field is required"),
])
def test_invalid_json_is_a_form_error_never_a_500(as_admin, payload, message):
    response = as_admin.post("/batches/new/", {"payload": payload, "max_parallel": 5})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert BatchRun.objects.count() == 0


@pytest.mark.django_db
def test_a_refused_batch_shows_the_tool_error_on_the_form(as_admin):
    response = as_admin.post("/batches/new/", {"payload": "[]", "max_parallel": 5})
    assert response.status_code == 200
    assert "VALIDATION_ERROR (requests)" in response.content.decode()
    too_parallel = as_admin.post("/batches/new/", {"payload": json.dumps([CHECK]), "max_parallel": 50})
    assert "less than or equal to 20" in too_parallel.content.decode()
    assert BatchRun.objects.count() == 0


@pytest.mark.django_db
def test_an_htmx_submission_with_errors_returns_the_form_fragment(as_admin):
    response = as_admin.post("/batches/new/", {"payload": "{oops", "max_parallel": 5}, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<form method="post" action="/batches/new/"')
    assert "This is not valid JSON" in html and "<html" not in html


@pytest.mark.django_db(transaction=True)
def test_an_htmx_submission_that_succeeds_redirects_the_browser(as_admin, erp):
    response = as_admin.post("/batches/new/", {"payload": json.dumps([CHECK]), "max_parallel": 1}, headers=HTMX)
    run = BatchRun.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/batches/{run.batch_id}/"
