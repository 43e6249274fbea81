"""ax_batch_operations and ax_get_batch_status: many calls in one, each through the pipeline.

Operations run on worker threads with their own database connections, so every test is
transactional: the workers only see committed data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

from core.accounts.roles import MCP_ADMIN, MCP_READ, MCP_WRITE, ROLE_LEVEL
from core.audit.models import AuditEntry
from core.erp.models import SalesOrder
from core.errors import ToolError
from core.tools import batch, breaker, ratelimit, registry, tasks
from core.tools.models import BatchRun
from core.tools.pipeline import call_tool
from core.tools.registry import obj, register
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

ORDER = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 2}]}
TOO_MANY_DESKS = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-002", "quantity": 6}]}
READ = {"tool": "ax_get_customer", "arguments": {"customer_account": "CUST-001"}}
CREATE = {"tool": "ax_create_salesorder", "arguments": ORDER}
FAIL = {"tool": "ax_create_salesorder", "arguments": TOO_MANY_DESKS}
WAIT = 10.0


def run_batch(user, requests: list[Any], *, role_cap: int | None = None, key: str | None = None,
              **options: Any) -> dict[str, Any]:
    return call_tool("ax_batch_operations", {"requests": requests, **options}, user, key, role_cap=role_cap)


def refused(code: str, user, arguments: dict[str, Any]) -> ToolError:
    with pytest.raises(ToolError) as exc:
        call_tool("ax_batch_operations", arguments, user)
    assert exc.value.code == code, exc.value.message
    return exc.value


def outcomes(result: dict[str, Any]) -> list[str]:
    """'ok' or the error code of each operation, in result order."""
    return ["ok" if r["success"] else r["error"] for r in result["results"]]


def batch_audit(batch_id: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(batch_id=batch_id).order_by("id"))


@pytest.fixture
def throwaway_tool() -> Iterator[Callable[..., None]]:
    """Register test-only tools in the real registry and remove them afterwards."""
    added: list[str] = []

    def add(name: str, handler, *, role: str = MCP_READ, transactional: bool = False) -> None:
        register(name, role=role, transactional=transactional, description="test only", schema=obj({}))(handler)
        added.append(name)

    yield add
    for name in added:
        registry._TOOLS.pop(name, None)


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple]:
    """Capture what would go to the django-q broker; the test runs the task itself, as a worker would."""
    calls: list[tuple] = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: calls.append((func, *args)))
    return calls


# --- the envelope ------------------------------------------------------------------------------


def test_results_come_back_in_request_order_and_are_stored(writer, erp):
    stock = {"tool": "ax_check_inventory", "arguments": {"item_id": "ITEM-001"}}
    result = run_batch(writer, [CREATE, READ, FAIL, stock])
    assert outcomes(result) == ["ok", "ok", "INSUFFICIENT_STOCK", "ok"]
    assert [r["index"] for r in result["results"]] == [0, 1, 2, 3]
    assert (result["total"], result["successful"], result["failed"]) == (4, 3, 1)
    assert result["results"][0]["output"]["sales_id"] == SalesOrder.objects.get().sales_id
    assert result["results"][1]["output"]["customer_account"] == "CUST-001"
    assert isinstance(result["results"][2]["message"], str) and "output" not in result["results"][2]
    assert isinstance(result["duration_ms"], int)
    run = BatchRun.objects.get(batch_id=result["batch_id"])
    assert (run.status, run.user, run.processed, run.successful, run.failed) == ("completed", writer, 4, 3, 1)
    assert run.results == result["results"] and run.finished is not None


def test_every_operation_is_audited_with_the_batch_id(writer, erp):
    result = run_batch(writer, [CREATE, READ, FAIL])
    rows = batch_audit(result["batch_id"])
    assert sorted((r.tool, r.success, r.error_code, r.username) for r in rows) == [
        ("ax_create_salesorder", False, "INSUFFICIENT_STOCK", "writer"),
        ("ax_create_salesorder", True, "", "writer"),
        ("ax_get_customer", True, "", "writer")]
    outer = AuditEntry.objects.get(tool="ax_batch_operations")
    assert outer.success and outer.batch_id == ""


@pytest.mark.parametrize("requests", [[], [READ] * (batch.MAX_REQUESTS + 1)], ids=["empty", "over-1000"])
def test_request_count_out_of_bounds_is_a_validation_error(writer, erp, requests):
    error = refused("VALIDATION_ERROR", writer, {"requests": requests})
    assert error.field == "requests"
    assert not BatchRun.objects.exists()
    assert not AuditEntry.objects.exclude(batch_id="").exists()


@pytest.mark.parametrize("max_parallel", [0, 21, -1])
def test_max_parallel_outside_1_to_20_is_a_validation_error(writer, erp, max_parallel):
    error = refused("VALIDATION_ERROR", writer, {"requests": [READ], "max_parallel": max_parallel})
    assert error.field == "max_parallel"
    assert not BatchRun.objects.exists()


@pytest.mark.parametrize("max_parallel", [1, 20])
def test_max_parallel_bounds_are_accepted(writer, erp, max_parallel):
    assert outcomes(run_batch(writer, [READ, READ], max_parallel=max_parallel)) == ["ok", "ok"]


def test_malformed_entries_fail_alone_while_the_others_succeed(writer, erp):
    result = run_batch(writer, [
        READ,
        "ax_get_customer",
        {"arguments": {"customer_account": "CUST-001"}},
        {"tool": "ax_get_customer", "arguments": ["CUST-001"]},
        {**READ, "priority": "high"},
        {**READ, "idempotency_key": 7},
        {"tool": "ax_no_such_tool", "arguments": {}},
        {"tool": "ax_get_customer", "arguments": {"customer_account": "CUST-001", "extra": 1}},
        CREATE,
    ])
    assert outcomes(result) == ["ok", "VALIDATION_ERROR", "VALIDATION_ERROR", "VALIDATION_ERROR", "VALIDATION_ERROR",
                                "VALIDATION_ERROR", "TOOL_NOT_FOUND", "VALIDATION_ERROR", "ok"]
    assert "priority" in result["results"][4]["message"]
    assert (result["successful"], result["failed"]) == (2, 7)
    assert SalesOrder.objects.count() == 1


def test_nested_batch_is_refused_per_operation(writer, erp):
    nested = {"tool": "ax_batch_operations", "arguments": {"requests": [CREATE]}}
    result = run_batch(writer, [READ, nested, CREATE])
    assert outcomes(result) == ["ok", "NESTED_BATCH_NOT_ALLOWED", "ok"]
    assert SalesOrder.objects.count() == 1
    assert BatchRun.objects.count() == 1


# --- stop_on_error -------------------------------------------------------------------------


def test_stop_on_error_starts_nothing_after_a_failure(writer, erp):
    result = run_batch(writer, [CREATE, FAIL, CREATE, READ], stop_on_error=True, max_parallel=1)
    assert outcomes(result) == ["ok", "INSUFFICIENT_STOCK", "NOT_EXECUTED", "NOT_EXECUTED"]
    assert (result["successful"], result["failed"]) == (1, 3)
    assert SalesOrder.objects.count() == 1
    assert len(batch_audit(result["batch_id"])) == 2


def test_without_stop_on_error_every_operation_runs(writer, erp):
    result = run_batch(writer, [CREATE, FAIL, CREATE, READ], max_parallel=1)
    assert outcomes(result) == ["ok", "INSUFFICIENT_STOCK", "ok", "ok"]
    assert SalesOrder.objects.count() == 2


# --- the pipeline, per operation -----------------------------------------------------------


@pytest.fixture
def admin_only_tool(throwaway_tool) -> str:
    throwaway_tool("ax_test_admin_only", lambda args, ctx: {"ran": True}, role=MCP_ADMIN, transactional=True)
    return "ax_test_admin_only"


def test_writer_cannot_smuggle_an_admin_tool_into_a_batch(writer, erp, admin_only_tool):
    result = run_batch(writer, [READ, {"tool": admin_only_tool, "arguments": {}}])
    assert outcomes(result) == ["ok", "FORBIDDEN"]
    assert sorted((r.tool, r.error_code) for r in batch_audit(result["batch_id"])) == [
        ("ax_get_customer", ""), (admin_only_tool, "FORBIDDEN")]


def test_token_role_cap_applies_to_every_operation(admin, erp, admin_only_tool):
    operation = {"tool": admin_only_tool, "arguments": {}}
    capped = run_batch(admin, [operation], role_cap=ROLE_LEVEL[MCP_WRITE])
    assert outcomes(capped) == ["FORBIDDEN"]
    assert BatchRun.objects.get(batch_id=capped["batch_id"]).role_cap == ROLE_LEVEL[MCP_WRITE]
    uncapped = run_batch(admin, [operation], role_cap=ROLE_LEVEL[MCP_ADMIN])
    assert outcomes(uncapped) == ["ok"] and uncapped["results"][0]["output"] == {"ran": True}


def test_reader_cannot_submit_a_batch(reader, erp):
    refused("FORBIDDEN", reader, {"requests": [READ]})
    assert not BatchRun.objects.exists()


def test_operation_key_replays_across_batches(writer, erp):
    keyed = {**CREATE, "idempotency_key": "op-1"}
    first = run_batch(writer, [keyed])
    second = run_batch(writer, [keyed, CREATE])
    assert outcomes(second) == ["ok", "ok"]
    assert second["results"][0]["output"] == first["results"][0]["output"]
    assert SalesOrder.objects.count() == 2  # the keyed one once, the unkeyed one
    replayed = batch_audit(second["batch_id"])
    assert sorted((r.idempotency_key, r.replayed) for r in replayed) == [("", False), ("op-1", True)]


def test_batch_key_replays_the_whole_batch(writer, erp):
    first = run_batch(writer, [CREATE], key="batch-1")
    second = run_batch(writer, [CREATE], key="batch-1")
    assert second == first
    assert BatchRun.objects.count() == 1 and SalesOrder.objects.count() == 1


def test_rate_limiter_counts_the_whole_batch_once(settings, monkeypatch, writer, erp):
    settings.RATE_LIMIT_PER_MINUTE = 2
    monkeypatch.setattr(ratelimit, "clock", lambda: 6_000_000.0)  # one window for the whole test
    result = run_batch(writer, [READ] * 50, max_parallel=10)
    assert result["successful"] == 50
    call_tool("ax_get_customer", READ["arguments"], writer)  # the second request of the minute
    with pytest.raises(ToolError) as exc:
        call_tool("ax_get_customer", READ["arguments"], writer)
    assert exc.value.code == "RATE_LIMITED"


def test_open_circuit_refuses_the_whole_batch_before_any_operation(settings, writer, erp):
    settings.CIRCUIT_FAILURE_THRESHOLD = 1
    breaker.record_failure(breaker.before_call())
    assert breaker.state() == "open"
    refused("CIRCUIT_OPEN", writer, {"requests": [CREATE, READ]})
    assert not BatchRun.objects.exists()
    assert not SalesOrder.objects.exists()
    assert list(AuditEntry.objects.values_list("tool", "error_code", "batch_id")) == [
        ("ax_batch_operations", "CIRCUIT_OPEN", "")]


# --- parallelism ---------------------------------------------------------------------------


class ConcurrencyProbe:
    """A handler that records how many copies of itself run at once.

    Each call waits (bounded) until `target` calls run together, so a runner that serializes
    them cannot reach the target by luck of timing; then it stays a moment longer, so a
    runner that starts more than `target` at once shows it in the peak.
    """

    def __init__(self, target: int) -> None:
        self.target = target
        self.running = self.peak = self.calls = 0
        self.reached = threading.Event()
        self.exceeded = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, args: dict[str, Any], ctx) -> dict[str, Any]:
        with self.lock:
            self.running += 1
            self.calls += 1
            self.peak = max(self.peak, self.running)
            if self.running >= self.target:
                self.reached.set()
            if self.running > self.target:
                self.exceeded.set()
        try:
            if not self.reached.wait(timeout=3):
                self.reached.set()  # serialized: the peak already shows it; let the rest pass
            self.exceeded.wait(timeout=0.05)
        finally:
            with self.lock:
                self.running -= 1
        return {"batch_id": ctx.batch_id}


@pytest.mark.parametrize("max_parallel", [1, 4])
def test_operations_run_in_parallel_up_to_max_parallel(writer, throwaway_tool, max_parallel):
    probe = ConcurrencyProbe(target=max_parallel)
    throwaway_tool("ax_test_probe", probe)
    result = run_batch(writer, [{"tool": "ax_test_probe", "arguments": {}}] * 12, max_parallel=max_parallel)
    assert result["successful"] == 12 and probe.calls == 12
    assert probe.peak == max_parallel
    assert all(r["output"] == {"batch_id": result["batch_id"]} for r in result["results"])


# --- async batches ----------------------------------------------------------------------------


def test_async_batch_is_queued_and_completed_by_the_worker(writer, erp, enqueued):
    queued = run_batch(writer, [CREATE, READ], **{"async": True})
    assert queued["status"] == "queued" and set(queued) >= {"batch_id", "status"}
    run = BatchRun.objects.get(batch_id=queued["batch_id"])
    assert enqueued == [("core.tools.tasks.run_batch", run.pk)]
    assert not SalesOrder.objects.exists()
    status = call_tool("ax_get_batch_status", {"batch_id": run.batch_id}, writer)
    assert (status["status"], status["processed"], status["total"]) == ("queued", 0, 2)
    assert "results" not in status

    assert tasks.run_batch(run.pk) == "done"
    assert tasks.run_batch(run.pk) == "not claimed (already running or done)"
    done = call_tool("ax_get_batch_status", {"batch_id": run.batch_id}, writer)
    assert (done["status"], done["processed"], done["successful"], done["failed"]) == ("completed", 2, 2, 0)
    assert [r["index"] for r in done["results"]] == [0, 1]
    assert done["results"][0]["output"]["sales_id"] == SalesOrder.objects.get().sales_id
    keys = sorted(r.idempotency_key for r in batch_audit(run.batch_id))
    assert keys == [f"{run.batch_id}:0", f"{run.batch_id}:1"]


def test_batch_status_reports_progress_while_running(monkeypatch, writer, erp, enqueued, throwaway_tool):
    monkeypatch.setattr(batch, "_PROGRESS_EVERY_SECONDS", 0.01)
    gate = threading.Event()
    throwaway_tool("ax_test_gate", lambda args, ctx: {"opened": gate.wait(timeout=WAIT)})
    queued = run_batch(writer, [READ, {"tool": "ax_test_gate", "arguments": {}}], max_parallel=1, **{"async": True})
    pk = BatchRun.objects.get(batch_id=queued["batch_id"]).pk

    def worker() -> None:
        try:
            tasks.run_batch(pk)
        finally:
            connection.close()

    def first_reported() -> dict[str, Any] | None:
        status = call_tool("ax_get_batch_status", {"batch_id": queued["batch_id"]}, writer)
        return status if status["processed"] == 1 else None

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        status = wait_until(first_reported, WAIT, "the first operation to be reported")
        assert (status["status"], status["total"], status["successful"]) == ("running", 2, 1)
        assert "results" not in status
    finally:
        gate.set()
        thread.join(WAIT)
    assert not thread.is_alive()
    done = call_tool("ax_get_batch_status", {"batch_id": queued["batch_id"]}, writer)
    assert done["status"] == "completed" and done["results"][1]["output"] == {"opened": True}


def test_someone_elses_batch_is_not_found(writer, reader, admin, erp, enqueued):
    queued = run_batch(writer, [READ], **{"async": True})
    with pytest.raises(ToolError) as exc:
        call_tool("ax_get_batch_status", {"batch_id": queued["batch_id"]}, reader)
    assert exc.value.code == "BATCH_NOT_FOUND"
    with pytest.raises(ToolError) as exc:
        call_tool("ax_get_batch_status", {"batch_id": "B-doesnotexist"}, writer)
    assert exc.value.code == "BATCH_NOT_FOUND"
    assert call_tool("ax_get_batch_status", {"batch_id": queued["batch_id"]}, admin)["status"] == "queued"


# --- a killed worker -------------------------------------------------------------------------


def killed_mid_batch(user, requests: list[Any], ran: int, *, attempts: int = 1) -> BatchRun:
    """An async batch whose worker ran the first `ran` operations, then died without a trace."""
    queued = run_batch(user, requests, max_parallel=1, **{"async": True})
    run = BatchRun.objects.get(batch_id=queued["batch_id"])
    for index in range(ran):
        # What the dead worker did: each operation with its implicit key.
        call_tool(requests[index]["tool"], requests[index]["arguments"], user, f"{run.batch_id}:{index}",
                  batch=run.batch_id, via=run.via, role_cap=run.role_cap)
    BatchRun.objects.filter(pk=run.pk).update(status=BatchRun.Status.RUNNING, attempts=attempts, processed=ran,
                                              heartbeat=timezone.now() - timedelta(minutes=10))
    return run


def test_stale_batch_is_resumed_without_running_an_operation_twice(writer, erp, enqueued):
    orders = [{"tool": "ax_create_salesorder", "arguments": {
        "customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": n}]}} for n in (1, 2, 3, 4)]
    run = killed_mid_batch(writer, orders, ran=2)
    before = list(SalesOrder.objects.order_by("id").values_list("sales_id", flat=True))
    assert len(before) == 2
    enqueued.clear()

    assert batch.recover_stale() == {"resumed": 1, "failed": 0, "requeued": 0}
    assert enqueued == [("core.tools.tasks.resume_batch", run.pk)]
    assert tasks.resume_batch(run.pk) == "resumed"

    run.refresh_from_db()
    assert (run.status, run.attempts, run.successful, run.failed) == ("completed", 2, 4, 0)
    assert SalesOrder.objects.count() == 4
    assert [r["output"]["sales_id"] for r in run.results[:2]] == before
    assert [r["output"]["lines"][0]["quantity"] for r in run.results] == [1, 2, 3, 4]
    replays = [(r.idempotency_key, r.replayed) for r in batch_audit(run.batch_id)[2:]]
    assert sorted(replays) == [(f"{run.batch_id}:{i}", i < 2) for i in range(4)]
    assert batch.recover_stale() == {"resumed": 0, "failed": 0, "requeued": 0}


def test_live_batch_is_not_recovered(writer, erp, enqueued):
    run = killed_mid_batch(writer, [READ, READ], ran=1)
    BatchRun.objects.filter(pk=run.pk).update(heartbeat=timezone.now())
    enqueued.clear()
    assert batch.recover_stale() == {"resumed": 0, "failed": 0, "requeued": 0}
    assert enqueued == []
    assert tasks.resume_batch(run.pk) == "not claimed"
    assert BatchRun.objects.get(pk=run.pk).attempts == 1


def test_batch_is_failed_after_max_attempts(settings, writer, erp, enqueued):
    run = killed_mid_batch(writer, [CREATE, CREATE], ran=1, attempts=settings.BATCH_MAX_ATTEMPTS)
    enqueued.clear()
    assert batch.recover_stale() == {"resumed": 0, "failed": 1, "requeued": 0}
    assert enqueued == []
    run.refresh_from_db()
    assert run.status == "failed" and run.finished is not None
    assert str(settings.BATCH_MAX_ATTEMPTS) in run.last_error
    assert tasks.resume_batch(run.pk) == "not claimed"
    assert SalesOrder.objects.count() == 1
    status = call_tool("ax_get_batch_status", {"batch_id": run.batch_id}, writer)
    assert status["status"] == "failed" and status["error"] == run.last_error


# --- over HTTP ---------------------------------------------------------------------------------


def test_batch_over_http_audits_each_operation_as_http(writer_api, erp):
    response = writer_api.call("ax_batch_operations", {"requests": [CREATE, READ, "junk"], "max_parallel": 2})
    assert response.status_code == 200
    body = response.json()
    assert outcomes(body) == ["ok", "ok", "VALIDATION_ERROR"]
    assert SalesOrder.objects.get().sales_id == body["results"][0]["output"]["sales_id"]
    assert {r.via for r in batch_audit(body["batch_id"])} == {"http"}
    assert BatchRun.objects.get(batch_id=body["batch_id"]).via == "http"


def test_stale_synchronous_batch_is_marked_failed_not_resumed(writer, erp):
    run = BatchRun.objects.create(batch_id="B-sync-stale", user=writer, is_async=False, requests=[{}], total=1,
                                  status=BatchRun.Status.RUNNING, attempts=1,
                                  heartbeat=timezone.now() - timedelta(minutes=10))
    assert batch.recover_stale() == {"resumed": 0, "failed": 1, "requeued": 0}
    run.refresh_from_db()
    assert run.status == BatchRun.Status.FAILED and "synchronous" in run.last_error


def test_a_superseded_worker_cannot_overwrite_the_result(writer, erp):
    out = call_tool("ax_batch_operations", {"requests": [{"tool": "ax_get_customer", "arguments": {
        "customer_account": "CUST-001"}}], "async": True}, writer)
    run = batch.claim(BatchRun.objects.get(batch_id=out["batch_id"]).pk)
    BatchRun.objects.filter(pk=run.pk).update(attempts=run.attempts + 1)  # resumed elsewhere meanwhile
    batch.execute(run)
    run.refresh_from_db()
    assert run.status == BatchRun.Status.RUNNING and run.results is None


def test_threads_for_a_batch(monkeypatch, throwaway_tool):
    """On SQLite a batch of writing operations runs on one thread (they take the one writer lock in
    turn anyway); a batch with an operation that does not write under it, or any batch on
    PostgreSQL, gets up to max_parallel threads."""
    throwaway_tool("ax_test_orchestrator", lambda args, ctx: {}, role=MCP_WRITE, transactional=False)
    writes = [batch.parse_entry(i, CREATE if i % 2 else READ) for i in range(10)]
    mixed = [*writes, batch.parse_entry(10, {"tool": "ax_test_orchestrator", "arguments": {}})]
    malformed = [*writes, batch.parse_entry(10, "junk"), batch.parse_entry(11, {"tool": "ax_nope"})]
    monkeypatch.setattr(batch, "dialect", lambda: SimpleNamespace(one_writer=True))  # SQLite
    assert batch._parallelism(5, writes) == 1
    assert batch._parallelism(5, mixed) == 5
    assert batch._parallelism(20, mixed) == 11  # never more threads than operations
    assert batch._parallelism(5, malformed) == 5  # an unknown tool: not known to write
    monkeypatch.setattr(batch, "dialect", lambda: SimpleNamespace(one_writer=False))  # PostgreSQL
    assert batch._parallelism(5, writes) == 5


def test_progress_keeps_being_saved_after_a_failed_save(monkeypatch, writer, erp, throwaway_tool):
    """A busy database failing one progress save must not stop the heartbeat (recovery would take
    the batch for dead and run it a second time)."""
    from django.db import OperationalError

    monkeypatch.setattr(batch, "_PROGRESS_EVERY_SECONDS", 0.01)
    calls = []
    real = batch._save_progress

    def flaky(run, results, saved):
        calls.append(len(calls))
        if len(calls) <= 3:
            raise OperationalError("database is locked")
        return real(run, results, saved)

    monkeypatch.setattr(batch, "_save_progress", flaky)
    # The operation lasts until the heartbeat has beaten after the three failures.
    throwaway_tool("ax_test_slow", lambda args, ctx: wait_until(lambda: len(calls) > 5) and {})
    result = run_batch(writer, [{"tool": "ax_test_slow", "arguments": {}}], max_parallel=1)
    assert result["successful"] == 1
    assert len(calls) > 5  # it went on beating after the three failures


def test_a_queued_async_batch_whose_task_was_lost_is_handed_over_again(
        settings, writer, erp, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = call_tool("ax_batch_operations", {"async": True, "requests": [
            {"tool": "ax_get_customer", "arguments": {"customer_account": "CUST-001"}}]}, writer)
    run = BatchRun.objects.get(batch_id=result["batch_id"])
    assert enqueued == [("core.tools.tasks.run_batch", run.pk)]
    enqueued.clear()  # the task is lost with the worker that took it
    later = timezone.now() + timedelta(seconds=settings.JOB_REQUEUE_SECONDS + 1)
    with mock.patch("django.utils.timezone.now", return_value=later), \
            django_capture_on_commit_callbacks(execute=True):
        assert batch.recover_stale() == {"resumed": 0, "failed": 0, "requeued": 1}
        assert batch.recover_stale()["requeued"] == 0
    assert enqueued == [("core.tools.tasks.run_batch", run.pk)]
    assert tasks.run_batch(run.pk) == "done"
    assert tasks.run_batch(run.pk) == "not claimed (already running or done)"
    run.refresh_from_db()
    assert (run.status, run.successful) == ("completed", 1)
