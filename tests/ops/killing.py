"""What the kill tests do to a live worker and what they expect of it afterwards (SQLite and,
in tests/integration, PostgreSQL + Redis)."""

from __future__ import annotations

import os
import signal
import time

from django.db import close_old_connections

from core.erp.models import Customer
from core.imports import services as imports
from core.imports.models import ImportJob
from core.tools.models import BatchRun
from core.tools.pipeline import call_tool
from tests.ops.liveworker import LiveWorker
from tests.waiting import wait_until

# The bound: work submitted after a worker died completes within this many seconds.
WITHIN = 60


def customers_csv(prefix: str, rows: int) -> str:
    lines = ["customer_account,name,currency"]
    lines += [f"{prefix}-{i:06d},Customer {i},EUR" for i in range(rows)]
    return "\n".join(lines) + "\n"


def submit_import(user, prefix: str, rows: int = 20, batch_size: int = 100) -> str:
    result = call_tool("ax_bulk_import", {"type": "customers", "format": "csv", "data": customers_csv(prefix, rows),
                                          "batch_size": batch_size}, user)
    return result["job_id"]


def submit_batch(user, account: str) -> str:
    result = call_tool("ax_batch_operations", {"async": True, "requests": [
        {"tool": "ax_create_customer", "arguments": {"customer_account": account, "name": "Batch", "currency": "EUR"}},
    ]}, user)
    return result["batch_id"]


def import_status(job_id: str) -> str:
    close_old_connections()
    return ImportJob.objects.get(job_id=job_id).status


def batch_status(batch_id: str) -> str:
    close_old_connections()
    return BatchRun.objects.get(batch_id=batch_id).status


def kill(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def assert_new_work_completes(worker: LiveWorker, user, tag: str) -> None:
    """An import and an async batch submitted now both complete within WITHIN seconds."""
    started = time.monotonic()
    job_id = submit_import(user, tag)
    batch_id = submit_batch(user, f"{tag}-BATCH")
    wait_until(lambda: import_status(job_id) == "completed", WITHIN,
               lambda: f"the import (still {import_status(job_id)}; heartbeat: {worker.heartbeat().__dict__})")
    wait_until(lambda: batch_status(batch_id) == "completed", WITHIN - (time.monotonic() - started),
               lambda: f"the batch (still {batch_status(batch_id)})")
    assert Customer.objects.filter(customer_account__startswith=f"{tag}-").count() == 21


def kill_mid_import_and_resume(worker: LiveWorker, user) -> None:
    """Kill every cluster process while an import runs; the stale-job recovery resumes it from
    its checkpoint: every row once, none twice."""
    rows = 6000
    job_id = submit_import(user, "MID", rows=rows, batch_size=20)
    wait_until(lambda: ImportJob.objects.get(job_id=job_id).processed > 0, WITHIN)
    kill(worker.cluster_children())
    job = ImportJob.objects.get(job_id=job_id)
    assert job.status == "running" and job.processed < rows, "the import finished before the kill"
    # Once the job's heartbeat is stale (IMPORT_STALE_SECONDS=5 here and in the worker) the
    # recovery schedule would find it within a minute; here it is called directly.
    wait_until(lambda: imports.recover_stale() == {"resumed": 1, "failed": 0, "requeued": 0}, WITHIN)
    # 300 batches of 20 rows: a busy machine needs more than a minute for the rest of them.
    wait_until(lambda: import_status(job_id) == "completed", 3 * WITHIN)
    job = ImportJob.objects.get(job_id=job_id)
    assert (job.successful, job.failed, job.attempts) == (rows, 0, 2)
    assert Customer.objects.filter(customer_account__startswith="MID-").count() == rows
