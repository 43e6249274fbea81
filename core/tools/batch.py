"""Batch operations: many tool calls in one request, each through the full pipeline.

Operations run on up to max_parallel threads. Each keeps its own role check, transaction,
audit entry (carrying the batch id) and idempotency key; the batch as a whole was counted
once by the rate limiter and passed the circuit breaker once. Async batches give every
operation an implicit idempotency key (batch id + index), so a batch resumed after a killed
worker replays what was done instead of doing it twice.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from core.accounts.roles import owned_by_or_admin
from core.db import write_slot
from core.dialect import dialect
from core.errors import ToolError
from core.jobs import requeue_waiting
from core.tools.models import BatchRun

log = logging.getLogger(__name__)

BATCH_TOOL = "ax_batch_operations"
MAX_REQUESTS = 1000
MAX_PARALLEL = 20
_ENTRY_KEYS = {"tool", "arguments", "idempotency_key"}
_PROGRESS_EVERY_SECONDS = 0.5


@dataclass
class Entry:
    index: int
    tool: str | None
    arguments: Any
    idempotency_key: str | None
    error: ToolError | None  # the entry itself is malformed


def parse_entry(index: int, raw: Any) -> Entry:
    def bad(message: str, code: str = "VALIDATION_ERROR") -> Entry:
        return Entry(index, None, None, None, ToolError(code, f"requests[{index}]: {message}"))

    if not isinstance(raw, dict):
        return bad("must be an object with 'tool' and 'arguments'")
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        return bad(f"unknown field(s) {', '.join(sorted(unknown))}")
    tool = raw.get("tool")
    if not isinstance(tool, str) or not tool:
        return bad("'tool' must be a tool name")
    if tool == BATCH_TOOL:
        return bad("a batch cannot contain another batch", "NESTED_BATCH_NOT_ALLOWED")
    arguments = raw.get("arguments", {})
    if not isinstance(arguments, dict):
        return bad("'arguments' must be an object")
    key = raw.get("idempotency_key")
    if key is not None and not isinstance(key, str):
        return bad("'idempotency_key' must be a string")
    return Entry(index, tool, arguments, key, None)


def _writes_under_slot(tool_name: str | None) -> bool:
    from core.tools.registry import find_tool

    tool = find_tool(tool_name) if tool_name else None
    return dialect().one_writer and tool is not None and tool.transactional


def _parallelism(max_parallel: int, entries: list[Entry]) -> int:
    """Threads for a batch: up to max_parallel. On SQLite, a batch whose operations all write
    (every ERP tool writes at least its audit row) runs on one thread: its operations would
    take the one writer lock in turn whatever the number of threads, and more threads only
    add the cost of handing it over."""
    threads = min(max_parallel, len(entries)) or 1
    if all(_writes_under_slot(e.tool) for e in entries if e.error is None):
        return 1
    return threads


def _slot_for(tool_name: str):
    """On SQLite every tool call that writes (all but the orchestrators) runs under the one
    writer lock anyway. A batch thread takes it before the call's checks rather than inside
    them, so the threads waiting for it are parked on the lock instead of contending with the
    writer for the interpreter; operations of other tools still overlap."""
    return write_slot() if _writes_under_slot(tool_name) else nullcontext()


def _error_result(index: int, error: ToolError) -> dict[str, Any]:
    return {"index": index, "success": False, "error": error.code, "message": error.message}


def summary(run: BatchRun) -> dict[str, Any]:
    data: dict[str, Any] = {
        "batch_id": run.batch_id, "status": run.status, "total": run.total, "processed": run.processed,
        "successful": run.successful, "failed": run.failed,
    }
    if run.done:
        data["results"] = run.results or []
        data["duration_ms"] = run.duration_ms
        if run.last_error:
            data["error"] = run.last_error
    return data


def submit(user, requests: list[Any], *, stop_on_error: bool, max_parallel: int, is_async: bool, via: str,
           role_cap: int) -> dict[str, Any]:
    run = BatchRun.objects.create(
        batch_id=f"B-{uuid.uuid4().hex[:20]}", user=user, role_cap=role_cap, via=via, is_async=is_async,
        stop_on_error=stop_on_error, max_parallel=max_parallel, requests=requests, total=len(requests),
    )
    if is_async:
        _enqueue_run(run.pk)
        return {"batch_id": run.batch_id, "status": run.status, "total": run.total}
    claimed = claim(run.pk)
    execute(claimed)
    claimed.refresh_from_db()
    return summary(claimed)


def claim(run_pk: int, *, stale_after: timedelta | None = None) -> BatchRun | None:
    """Take a batch for execution with a conditional UPDATE that must change exactly one row:
    a queued batch, or (for recovery) a running one whose heartbeat is older than stale_after."""
    now = timezone.now()
    rows = BatchRun.objects.filter(pk=run_pk)
    if stale_after is None:
        rows = rows.filter(status=BatchRun.Status.QUEUED)
    else:
        rows = rows.filter(status=BatchRun.Status.RUNNING, heartbeat__lt=now - stale_after)
    run = BatchRun.objects.filter(pk=run_pk).first()
    if run is None:
        return None
    changed = rows.update(status=BatchRun.Status.RUNNING, started=run.started or now, heartbeat=now,
                          attempts=run.attempts + 1)
    if changed != 1:
        return None
    run.refresh_from_db()
    return run


def execute(run: BatchRun) -> None:
    """Run every operation of a claimed batch and store the results."""
    from core.tools.pipeline import call_tool

    started = time.perf_counter()
    user = run.user
    entries = [parse_entry(i, raw) for i, raw in enumerate(run.requests)]
    results: list[dict[str, Any] | None] = [None] * len(entries)
    stop = threading.Event()
    lock = threading.Lock()
    pending: queue.SimpleQueue[Entry] = queue.SimpleQueue()
    for entry in entries:
        pending.put(entry)

    def one(entry: Entry) -> dict[str, Any]:
        if entry.error is not None:
            return _error_result(entry.index, entry.error)
        key = entry.idempotency_key
        if key is None and run.is_async:
            key = f"{run.batch_id}:{entry.index}"
        try:
            with _slot_for(entry.tool):
                output = call_tool(entry.tool, entry.arguments, user, key, batch=run.batch_id,
                                   via=run.via or "batch", role_cap=run.role_cap)
        except ToolError as error:
            return _error_result(entry.index, error)
        return {"index": entry.index, "success": True, "output": output}

    def take() -> Entry | None:
        with lock:  # checked and taken together: nothing starts after a failure is stored
            if stop.is_set():
                return None
            try:
                return pending.get_nowait()
            except queue.Empty:
                return None

    def work() -> None:
        while (entry := take()) is not None:
            result = one(entry)
            with lock:
                results[entry.index] = result
                if not result["success"] and run.stop_on_error:
                    stop.set()

    def worker() -> None:
        try:
            work()
        finally:
            connection.close()

    parallelism = _parallelism(run.max_parallel, entries)
    if parallelism == 1:
        # One at a time: on this thread and its connection (no thread to start, no connection
        # to open), with the progress and heartbeat saved beside it as usual.
        finished = threading.Event()

        def beat() -> None:
            saved = 0
            try:
                while not finished.wait(_PROGRESS_EVERY_SECONDS):
                    try:
                        saved = _save_progress(run, results, saved)
                    except Exception:  # a busy database: try again at the next beat
                        log.exception("could not save the progress of batch %s", run.batch_id)
            finally:
                connection.close()

        beater = threading.Thread(target=beat, name=f"batch-{run.batch_id}-progress", daemon=True)
        beater.start()
        try:
            work()
        finally:
            finished.set()
            beater.join()
    else:
        threads = [threading.Thread(target=worker, name=f"batch-{run.batch_id}-{n}", daemon=True)
                   for n in range(parallelism)]
        for thread in threads:
            thread.start()
        saved = 0
        while alive := [t for t in threads if t.is_alive()]:
            alive[0].join(_PROGRESS_EVERY_SECONDS)
            saved = _save_progress(run, results, saved)
    not_run = ToolError("NOT_EXECUTED", "not run because an earlier operation failed (stop_on_error)")
    final = [r if r is not None else _error_result(i, not_run) for i, r in enumerate(results)]
    successful = sum(1 for r in final if r["success"])
    with write_slot():
        # Only the claim that is still current may finish the batch: a worker presumed dead
        # and resumed elsewhere must not overwrite the newer run's result.
        BatchRun.objects.filter(pk=run.pk, status=BatchRun.Status.RUNNING, attempts=run.attempts).update(
            status=BatchRun.Status.COMPLETED, results=final, processed=len(final), successful=successful,
            failed=len(final) - successful, finished=timezone.now(), heartbeat=timezone.now(),
            duration_ms=int((time.perf_counter() - started) * 1000),
        )


def _save_progress(run: BatchRun, results: list[dict[str, Any] | None], saved: int) -> int:
    """Write the counters (and the heartbeat that tells recovery this batch is alive)."""
    done = [r for r in results if r is not None]
    successful = sum(1 for r in done if r["success"])
    with write_slot():
        BatchRun.objects.filter(pk=run.pk, status=BatchRun.Status.RUNNING).update(
            processed=len(done), successful=successful, failed=len(done) - successful, heartbeat=timezone.now())
    return len(done)


def mark_failed(run_pk: int, message: str) -> None:
    BatchRun.objects.filter(pk=run_pk).exclude(status=BatchRun.Status.COMPLETED).update(
        status=BatchRun.Status.FAILED, last_error=message[:500], finished=timezone.now())


def recover_stale() -> dict[str, int]:
    """Resume batches whose worker died (no heartbeat), or fail them after too many attempts."""
    stale_after = timedelta(seconds=settings.BATCH_STALE_SECONDS)
    cutoff = timezone.now() - stale_after
    resumed = failed = 0
    for run in BatchRun.objects.filter(status=BatchRun.Status.RUNNING, heartbeat__lt=cutoff):
        if not run.is_async:
            # The caller of a synchronous batch is gone with its process; its results so far
            # are in the audit log, and nobody is waiting for the rest.
            mark_failed(run.pk, "the process running this synchronous batch stopped")
            failed += 1
            continue
        if run.attempts >= settings.BATCH_MAX_ATTEMPTS:
            mark_failed(run.pk, f"the worker stopped {run.attempts} times while running this batch")
            failed += 1
            continue
        from django_q.tasks import async_task

        async_task("core.tools.tasks.resume_batch", run.pk, group="batches")
        resumed += 1
    requeued = requeue_waiting(BatchRun.objects.filter(is_async=True), _enqueue_run)
    close_old_connections()
    return {"resumed": resumed, "failed": failed, "requeued": requeued}


def _enqueue_run(run_pk: int) -> None:
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task("core.tools.tasks.run_batch", run_pk, group="batches"))


def get_for_user(user, batch_id: str, role_level: int) -> BatchRun:
    run = owned_by_or_admin(BatchRun.objects.all(), user, role_level).filter(batch_id=batch_id).first()
    if run is None:
        raise ToolError("BATCH_NOT_FOUND", f"batch {batch_id!r} does not exist", field="batch_id")
    return run
