from __future__ import annotations

import base64
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from core.erp.models import Customer
from core.errors import ToolError
from core.imports import engine, services, tasks
from core.imports.models import ImportJob
from core.imports.specs import SPECS
from core.tools.pipeline import call_tool
from tests.imports.helpers import run_import, xlsx_bytes

HEADER = "customer_account,name,currency\n"
ROWS = "".join(f"R-{n:03d},Name {n},EUR\n" for n in range(50))


def _crash_on_chunk(n: int):
    """Make the n-th chunk's write die the way a killed worker does (nothing of it commits)."""
    original = SPECS["customers"].write
    calls = {"n": 0}

    def write(outcomes, ctx):
        calls["n"] += 1
        if calls["n"] == n:
            raise RuntimeError("worker killed")
        return original(outcomes, ctx)

    return mock.patch.object(SPECS["customers"], "write", side_effect=write)


def test_interrupted_import_resumes_from_checkpoint_without_duplicates(writer, erp):
    job = services.submit(writer, type="customers", fmt="csv", content=(HEADER + ROWS).encode(), batch_size=10)
    with _crash_on_chunk(3), pytest.raises(RuntimeError):
        tasks.run_import(job.pk)
    job.refresh_from_db()
    assert (job.status, job.checkpoint) == ("failed", 20)
    assert Customer.objects.filter(customer_account__startswith="R-").count() == 20
    services.resume(job)
    tasks.run_import(job.pk)
    job.refresh_from_db()
    assert (job.status, job.processed, job.successful, job.failed) == ("completed", 50, 50, 0)
    assert Customer.objects.filter(customer_account__startswith="R-").count() == 50


def test_stale_running_job_is_recovered_automatically(settings, writer, erp):
    job = services.submit(writer, type="customers", fmt="csv", content=(HEADER + ROWS).encode(), batch_size=10)
    ImportJob.objects.filter(pk=job.pk).update(status="running", attempts=1,
                                               heartbeat=timezone.now() - timedelta(minutes=5))
    with mock.patch("django_q.tasks.async_task"):
        assert services.recover_stale() == {"resumed": 1, "failed": 0, "requeued": 0}
    job.refresh_from_db()
    assert job.status == "queued"
    tasks.run_import(job.pk)
    job.refresh_from_db()
    assert (job.status, job.successful) == ("completed", 50)


def test_job_failing_too_often_is_marked_failed(settings, writer, erp):
    settings.IMPORT_MAX_ATTEMPTS = 2
    job = services.submit(writer, type="customers", fmt="csv", content=(HEADER + ROWS).encode())
    ImportJob.objects.filter(pk=job.pk).update(status="running", attempts=2,
                                               heartbeat=timezone.now() - timedelta(minutes=5))
    assert services.recover_stale() == {"resumed": 0, "failed": 1, "requeued": 0}
    job.refresh_from_db()
    assert job.status == "failed" and "2 times" in job.last_error


def test_cancel_stops_at_the_next_batch_and_keeps_committed_ones(writer, erp):
    job = services.submit(writer, type="customers", fmt="csv", content=(HEADER + ROWS).encode(), batch_size=10)
    original = engine._commit_chunk
    seen = {"n": 0}

    def commit_then_cancel(job_, spec, outcomes, started, prepared):
        seen["n"] += 1
        if seen["n"] == 2:
            services.cancel(ImportJob.objects.get(pk=job_.pk))
        return original(job_, spec, outcomes, started, prepared)

    with mock.patch.object(engine, "_commit_chunk", side_effect=commit_then_cancel):
        assert tasks.run_import(job.pk) == "cancelled"
    job.refresh_from_db()
    assert (job.status, job.checkpoint) == ("cancelled", 10)
    assert not [t for t in threading.enumerate() if t.name == "import-read-ahead"]  # stopped with the job
    assert Customer.objects.filter(customer_account__startswith="R-").count() == 10
    services.resume(job)
    tasks.run_import(job.pk)
    assert Customer.objects.filter(customer_account__startswith="R-").count() == 50


def test_bulk_import_tool_with_csv_and_xlsx(writer, erp):
    out = call_tool("ax_bulk_import", {"type": "customers", "format": "csv", "data": HEADER + "T-1,Tee,EUR\n"},
                    writer)
    assert out["status"] == "queued" and out["job_id"].startswith("IMP-")
    tasks.run_import(ImportJob.objects.get(job_id=out["job_id"]).pk)
    status = call_tool("ax_get_import_status", {"job_id": out["job_id"]}, writer)
    assert (status["status"], status["total"], status["successful"]) == ("completed", 1, 1)
    data = base64.b64encode(xlsx_bytes([["customer_account", "name", "currency"], ["T-2", "Xl", "SEK"]])).decode()
    out = call_tool("ax_bulk_import", {"type": "customers", "format": "xlsx", "data": data}, writer)
    tasks.run_import(ImportJob.objects.get(job_id=out["job_id"]).pk)
    assert Customer.objects.get(customer_account="T-2").currency == "SEK"


def test_bulk_import_tool_refuses_bad_input(writer, erp):
    for args, code in [
        ({"type": "vendors", "format": "csv", "data": "x"}, "VALIDATION_ERROR"),
        ({"type": "customers", "format": "xlsx", "data": "not base64!"}, "VALIDATION_ERROR"),
        ({"type": "customers", "format": "csv", "data": "x", "batch_size": 0}, "VALIDATION_ERROR"),
    ]:
        with pytest.raises(ToolError) as exc:
            call_tool("ax_bulk_import", args, writer)
        assert exc.value.code == code


def test_import_status_paginates_errors_and_hides_other_users_jobs(writer, reader, erp):
    rows = "".join(f"E-{n},Name,BAD\n" for n in range(7))
    out = call_tool("ax_bulk_import", {"type": "customers", "format": "csv", "data": HEADER + rows}, writer)
    tasks.run_import(ImportJob.objects.get(job_id=out["job_id"]).pk)
    page = call_tool("ax_get_import_status", {"job_id": out["job_id"], "errors_offset": 5, "errors_limit": 5}, writer)
    assert page["errors_total"] == 7 and [e["row"] for e in page["errors"]] == [7, 8]
    assert set(page["errors"][0]) == {"row", "column", "error", "message", "value"}
    with pytest.raises(ToolError) as exc:
        call_tool("ax_get_import_status", {"job_id": out["job_id"]}, reader)
    assert exc.value.code == "IMPORT_NOT_FOUND"


def test_resume_and_cancel_refuse_wrong_states(writer, erp):
    out = call_tool("ax_bulk_import", {"type": "customers", "format": "csv", "data": HEADER + "S-1,x,EUR\n"}, writer)
    with pytest.raises(ToolError) as exc:
        call_tool("ax_resume_import", {"job_id": out["job_id"]}, writer)
    assert exc.value.code == "INVALID_STATE"
    tasks.run_import(ImportJob.objects.get(job_id=out["job_id"]).pk)
    with pytest.raises(ToolError) as exc:
        call_tool("ax_cancel_import", {"job_id": out["job_id"]}, writer)
    assert exc.value.code == "INVALID_STATE"


def test_templates_list_the_columns():
    import io

    from openpyxl import load_workbook

    csv_text = services.template_csv("customers").decode("utf-8-sig")
    assert csv_text.splitlines()[0] == "customer_account,name,currency,credit_limit,segment,email"
    sheet = load_workbook(io.BytesIO(services.template_xlsx("salesorders"))).active
    assert [c.value for c in sheet[1]] == ["order_ref", "customer_account", "item_id", "quantity", "unit_price"]


def test_a_job_that_failed_on_its_file_cannot_be_resumed(writer, erp):
    job = run_import(writer, "customers", "customer_account,name\nC-1,x\n")
    assert job.status == "failed" and job.percent == 0
    with pytest.raises(ToolError) as exc:
        services.resume(job)
    assert exc.value.code == "INVALID_STATE" and "corrected file" in exc.value.message


def test_a_queued_job_whose_task_was_lost_is_handed_over_again_once_per_interval(
        settings, writer, erp, django_capture_on_commit_callbacks):
    """A worker process that dies holding the job's task (before it ran) loses it: after
    JOB_REQUEUE_SECONDS the recovery enqueues it again, and only once per interval."""
    job = services.submit(writer, type="customers", fmt="csv", content=(HEADER + ROWS).encode())
    later = timezone.now() + timedelta(seconds=settings.JOB_REQUEUE_SECONDS + 1)
    assert services.recover_stale()["requeued"] == 0  # not waiting long enough yet
    with mock.patch("django_q.tasks.async_task") as enqueue, mock.patch("django.utils.timezone.now",
                                                                        return_value=later):
        with django_capture_on_commit_callbacks(execute=True):
            assert services.recover_stale() == {"resumed": 0, "failed": 0, "requeued": 1}
            assert services.recover_stale()["requeued"] == 0
    enqueue.assert_called_once_with("core.imports.tasks.run_import", job.pk, group="imports")
    tasks.run_import(job.pk)
    tasks.run_import(job.pk)  # the original task, if it was not lost after all, finds nothing to do
    job.refresh_from_db()
    assert (job.status, job.successful, job.attempts) == ("completed", 50, 1)
