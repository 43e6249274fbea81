"""Retention of imports (README "Retention"): the stored upload of a finished job goes
RETENTION_IMPORT_FILES_DAYS after it finished, its row errors (and with them the failed-rows
file) RETENTION_IMPORT_ERRORS_DAYS after. The job row stays, with its counters and outcome.

Finished means completed, failed or cancelled. A failed or cancelled job whose file is gone
can no longer be resumed; a corrected upload starts a new job.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from core.db import write_slot
from core.imports.models import ImportJob, ImportRowError
from core.retention import older_than, prune_rows

FINISHED = [ImportJob.Status.COMPLETED, ImportJob.Status.FAILED, ImportJob.Status.CANCELLED]
FILES = f"{ImportJob._meta.db_table}.file"  # what the prune reports: stored files, not rows


def _finished_before(cutoff: datetime) -> QuerySet:
    return ImportJob.objects.filter(status__in=FINISHED, finished__lt=cutoff)


def prune_import_files(now: datetime, *, dry_run: bool, chunk_size: int) -> dict[str, int]:
    """Delete the stored files of jobs finished before the cutoff and clear their `file`."""
    jobs = _finished_before(older_than(now, days=settings.RETENTION_IMPORT_FILES_DAYS)).exclude(file="")
    if dry_run:
        return {FILES: jobs.count()}
    storage = ImportJob._meta.get_field("file").storage
    removed = 0
    while True:
        chunk = list(jobs.order_by().values_list("pk", "file")[:chunk_size])
        if not chunk:
            break
        # The files first, outside any transaction (no lock held during file I/O), then the
        # names: a crash in between leaves names of missing files, which the next pass clears
        # (deleting a missing file is no error). The other order could orphan files for good.
        for _pk, name in chunk:
            storage.delete(name)
        with write_slot(), transaction.atomic():
            removed += jobs.filter(pk__in=[pk for pk, _name in chunk]).update(file="")
        if len(chunk) < chunk_size:
            break
    return {FILES: removed}


def prune_import_errors(now: datetime, *, dry_run: bool, chunk_size: int) -> dict[str, int]:
    """Row errors of jobs finished before the cutoff."""
    jobs = _finished_before(older_than(now, days=settings.RETENTION_IMPORT_ERRORS_DAYS))
    rows = ImportRowError.objects.filter(job__in=jobs.values("pk"))
    return prune_rows(rows, chunk_size=chunk_size, dry_run=dry_run)
