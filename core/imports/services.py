"""Import jobs: submit, status, cancel, resume, recovery, templates and the failed-rows file."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import logging
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from core.accounts.roles import owned_by_or_admin
from core.db import write_slot
from core.errors import ToolError
from core.events.bus import publish_many
from core.imports.mapping import check_mapping
from core.imports.models import Dialect, ImportJob, ImportMapping, ImportMode
from core.imports.specs import get_spec
from core.jobs import requeue_waiting
from core.spreadsheet import neutralise

log = logging.getLogger(__name__)

MAX_BATCH_SIZE = 10_000
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ERRORS_PAGE = 100


def _enqueue(task: str, job_pk: int) -> None:
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task(task, job_pk, group="imports"))


# The encodings a CSV may come in: the ones the engine detects (core.imports.readers.detect_encoding).
CSV_ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1")


def decode_data(fmt: str, data: str, encoding: str = "utf-8") -> bytes:
    """The file bytes from the tool's `data`: CSV as text, stored in the encoding the file came
    in (so the engine detects it and the failed rows go back in it), XLSX as base64."""
    if fmt == "csv":
        if encoding in ("utf-8-sig", "utf-16") and data.startswith("\ufeff"):
            data = data[1:]  # the text kept its byte-order mark; the encoding writes one
        try:
            return data.encode(encoding)
        except UnicodeEncodeError as exc:
            raise ToolError("VALIDATION_ERROR", f"data holds {data[exc.start]!r} (character {exc.start + 1}), "
                                                f"which encoding {encoding} cannot hold; send the text with the "
                                                f"encoding the file came in", field="encoding") from None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ToolError("VALIDATION_ERROR", "data must be base64 for format xlsx", field="data") from None


def _check_options(type: str, mode: str, batch_size: int) -> None:
    spec = get_spec(type)
    if mode not in ImportMode.values:
        raise ToolError("VALIDATION_ERROR", f"mode must be one of {', '.join(ImportMode.values)}", field="mode")
    if mode != ImportMode.CREATE and not spec.updatable:
        raise ToolError("VALIDATION_ERROR", f"{type} imports only create (mode create): an order imported twice "
                                            f"fails with ORDER_ALREADY_EXISTS, so a re-run is safe", field="mode")
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ToolError("VALIDATION_ERROR", f"batch_size must be 1..{MAX_BATCH_SIZE}", field="batch_size")


def _mapping(user, type: str, given: dict[str, Any] | None, name: str) -> dict[str, Any]:
    """The job's mapping: as given (and saved under `name` when one is given too), or the one
    saved under `name`, or none."""
    if given is not None:
        result = check_mapping(get_spec(type), given)
        if name:
            ImportMapping.objects.update_or_create(type=type, name=name, defaults={
                "mapping": result, "user": user if getattr(user, "pk", None) else None, "updated": timezone.now()})
        return result
    if not name:
        return {}
    saved = ImportMapping.objects.filter(type=type, name=name).first()
    if saved is None:
        known = list(ImportMapping.objects.filter(type=type).values_list("name", flat=True)[:20])
        raise ToolError("MAPPING_NOT_FOUND", f"there is no saved {type} mapping named {name!r}"
                                             + (f"; saved: {', '.join(known)}" if known else ""), field="mapping_name")
    return dict(saved.mapping)


def submit(user, *, type: str, fmt: str, content: bytes, filename: str = "", validate_only: bool = False,
           batch_size: int = 100, sheet: str = "", mode: str = ImportMode.CREATE,
           mapping: dict[str, Any] | None = None, mapping_name: str = "", roi: bool = True) -> ImportJob:
    _check_options(type, mode, batch_size)
    if fmt not in ImportJob.Format.values:
        raise ToolError("VALIDATION_ERROR", f"format must be csv or xlsx, got {fmt!r}", field="format")
    if not content:
        raise ToolError("EMPTY_FILE", "the file is empty", field="data")
    if len(content) > settings.IMPORT_MAX_FILE_BYTES:
        raise ToolError("FILE_TOO_LARGE", f"the file is larger than {settings.IMPORT_MAX_FILE_BYTES} bytes",
                        field="data")
    job_id = f"IMP-{uuid.uuid4().hex[:16]}"
    with write_slot(), transaction.atomic():
        job = ImportJob(job_id=job_id, user=user, type=type, format=fmt, original_name=filename[:255],
                        validate_only=validate_only, batch_size=batch_size, sheet=sheet[:100], mode=mode,
                        mapping=_mapping(user, type, mapping, mapping_name), mapping_name=mapping_name, roi=roi)
        job.file.save(f"{job_id}.{fmt}", ContentFile(content), save=False)
        job.save()
        _enqueue("core.imports.tasks.run_import", job.pk)
    return job


def submit_from_job(user, source: ImportJob, *, mode: str | None = None, batch_size: int | None = None,
                    validate_only: bool = False) -> ImportJob:
    """Run the stored file of an earlier job (typically a validate-only one) with its settings:
    type, format, sheet, mapping, dialect, ROI flag, and mode and batch size unless given."""
    mode = mode or source.mode
    batch_size = batch_size or source.batch_size
    _check_options(source.type, mode, batch_size)
    if not source.done:
        raise ToolError("INVALID_STATE", f"import {source.job_id} is {source.status}; wait until it has finished",
                        field="from_job")
    if source.status == ImportJob.Status.FAILED and source.last_error.startswith(FILE_ERRORS):
        raise ToolError("INVALID_STATE", f"import {source.job_id} failed on the file itself "
                                         f"({source.last_error[:80]}); upload a corrected file", field="from_job")
    if not source.file or not source.file.storage.exists(source.file.name):
        raise ToolError("INVALID_STATE", f"the stored file of import {source.job_id} is no longer kept "
                                         f"(retention); upload the file again", field="from_job")
    job_id = f"IMP-{uuid.uuid4().hex[:16]}"
    with write_slot(), transaction.atomic():
        job = ImportJob(job_id=job_id, user=user, type=source.type, format=source.format,
                        original_name=source.original_name, validate_only=validate_only, batch_size=batch_size,
                        sheet=source.sheet, mode=mode, mapping=source.mapping, mapping_name=source.mapping_name,
                        roi=source.roi, dialect=source.dialect, source_job=source)
        with source.file.open("rb") as stored:
            job.file.save(f"{job_id}.{source.format}", File(stored), save=False)
        job.save()
        _enqueue("core.imports.tasks.run_import", job.pk)
    return job


def get_for_user(user, job_id: str, role_level: int, *, field: str = "job_id") -> ImportJob:
    job = (owned_by_or_admin(ImportJob.objects.all(), user, role_level).select_related("source_job")
           .filter(job_id=job_id).first())
    if job is None:
        raise ToolError("IMPORT_NOT_FOUND", f"import job {job_id!r} does not exist", field=field)
    return job


def error_summary(job: ImportJob) -> dict[str, int]:
    """How many row errors of each code, most frequent first."""
    counts = job.errors.order_by().values("code").annotate(n=Count("id")).values_list("code", "n")
    return dict(sorted(counts, key=lambda pair: (-pair[1], pair[0])))


def status(job: ImportJob, *, errors_offset: int = 0, errors_limit: int = ERRORS_PAGE) -> dict[str, Any]:
    errors = job.errors.all()[errors_offset:errors_offset + errors_limit]
    summary = error_summary(job)
    data = {
        "job_id": job.job_id, "type": job.type, "format": job.format, "status": job.status,
        "validate_only": job.validate_only, "mode": job.mode, "roi": job.roi,
        "mapping": job.mapping or {}, "mapping_name": job.mapping_name,
        "from_job": job.source_job.job_id if job.source_job_id and job.source_job else None,
        "total": job.total, "processed": job.processed,
        "successful": job.successful, "failed": job.failed,
        "records": {"created": job.records_created, "updated": job.records_updated,
                    "unchanged": job.records_unchanged},
        "preview": job.preview,
        "error_summary": summary,
        "errors": [{"row": e.row, "column": e.column, "error": e.code, "message": e.message, "value": e.value}
                   for e in errors],
        "errors_total": sum(summary.values()),
        "errors_offset": errors_offset,
        "created": job.created.isoformat(),
        "finished": job.finished.isoformat() if job.finished else None,
    }
    if job.last_error:
        data["error"] = job.last_error
    return data


def finish(job_pk: int, states: list[str], status: str, **fields: Any) -> bool:
    """Move the job from one of `states` to a final status, and publish import.finished in the
    same transaction: a sync that runs unattended tells its integrator how it ended. False when
    the job was in none of those states."""
    with write_slot(), transaction.atomic():
        if not ImportJob.objects.filter(pk=job_pk, status__in=states).update(
                status=status, finished=fields.pop("finished", None) or timezone.now(), **fields):
            return False
        job = ImportJob.objects.select_related("user").get(pk=job_pk)
        publish_many("import.finished", [finished_data(job)], user=job.user, via="import")
    return True


def finished_data(job: ImportJob) -> dict[str, Any]:
    """import.finished's data: how the job ended, its counts and its errors by code."""
    return {"job_id": job.job_id, "type": job.type, "mode": job.mode, "status": job.status,
            "validate_only": job.validate_only, "filename": job.original_name, "total": job.total,
            "successful": job.successful, "failed": job.failed,
            "records": {"created": job.records_created, "updated": job.records_updated,
                        "unchanged": job.records_unchanged},
            "error_summary": error_summary(job), "error": job.last_error or None}


def cancel(job: ImportJob) -> ImportJob:
    changed = finish(job.pk, [ImportJob.Status.QUEUED, ImportJob.Status.RUNNING], ImportJob.Status.CANCELLED)
    if not changed:
        raise ToolError("INVALID_STATE", f"import {job.job_id} is {job.status} and cannot be cancelled")
    job.refresh_from_db()
    return job


# Failures of the file itself: resuming would only fail again; a corrected file is needed.
FILE_ERRORS = ("EMPTY_FILE", "MISSING_COLUMNS", "DUPLICATE_COLUMN", "INVALID_FILE", "SHEET_NOT_FOUND",
               "ENCRYPTED_FILE", "ZIP_BOMB", "FILE_TOO_LARGE")


def resume(job: ImportJob) -> ImportJob:
    """Queue an interrupted, failed or cancelled job again; it continues at its checkpoint."""
    if job.status == ImportJob.Status.FAILED and job.last_error.startswith(FILE_ERRORS):
        raise ToolError("INVALID_STATE", f"import {job.job_id} failed on the file itself ({job.last_error[:80]}); "
                                         f"upload a corrected file instead")
    stale = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS)
    with write_slot(), transaction.atomic():
        changed = (ImportJob.objects.filter(pk=job.pk, status__in=[ImportJob.Status.FAILED,
                                                                    ImportJob.Status.CANCELLED])
                   | ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING, heartbeat__lt=stale)
                   ).update(status=ImportJob.Status.QUEUED, finished=None, last_error="", heartbeat=timezone.now())
        if not changed:
            raise ToolError("INVALID_STATE", f"import {job.job_id} is {job.status}; only failed, cancelled or "
                                             f"interrupted imports can be resumed")
        _enqueue("core.imports.tasks.run_import", job.pk)
    job.refresh_from_db()
    return job


def claim(job_pk: int) -> ImportJob | None:
    """queued -> running with a conditional UPDATE that must change exactly one row."""
    now = timezone.now()
    with write_slot():
        changed = ImportJob.objects.filter(pk=job_pk, status=ImportJob.Status.QUEUED).update(
            status=ImportJob.Status.RUNNING, heartbeat=now, attempts=F("attempts") + 1)
        if changed != 1:
            return None
        ImportJob.objects.filter(pk=job_pk, started__isnull=True).update(started=now)
    return ImportJob.objects.select_related("user").get(pk=job_pk)


def mark_failed(job_pk: int, message: str) -> None:
    finish(job_pk, [ImportJob.Status.RUNNING], ImportJob.Status.FAILED, last_error=message[:500])


def recover_stale() -> dict[str, int]:
    """Requeue running jobs whose worker died (no heartbeat), or fail them after too many tries;
    hand queued jobs whose task was lost to the broker again."""
    cutoff = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS)
    resumed = failed = 0
    for job in ImportJob.objects.filter(status=ImportJob.Status.RUNNING, heartbeat__lt=cutoff):
        if job.attempts >= settings.IMPORT_MAX_ATTEMPTS:
            mark_failed(job.pk, f"the worker stopped {job.attempts} times while running this import")
            failed += 1
            continue
        with write_slot(), transaction.atomic():
            if ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING, heartbeat__lt=cutoff).update(
                    status=ImportJob.Status.QUEUED, heartbeat=timezone.now()):
                _enqueue("core.imports.tasks.run_import", job.pk)
                resumed += 1
    requeued = requeue_waiting(ImportJob.objects.all(), lambda pk: _enqueue("core.imports.tasks.run_import", pk))
    return {"resumed": resumed, "failed": failed, "requeued": requeued}


def _failed_rows(job: ImportJob) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the failed-rows file: the line, each field the file gave, under the
    file's own column name, as it was read (text; decimal commas as they were), and the errors."""
    spec = get_spec(job.type)
    fields = [c.name for c in spec.columns]
    named = {f: c for c, f in ((col["column"], col["field"]) for col in (job.preview or {}).get("columns", []))
             if f}
    if named:
        fields = [f for f in fields if f in named]
    header = ["line", *(named.get(f, f) for f in fields), "errors"]
    rows: list[list[str]] = []
    current, messages, data = None, [], None

    def flush() -> None:
        rows.append([str(current), *[neutralise(str((data or {}).get(f, ""))) for f in fields],
                     neutralise("; ".join(messages))])

    for error in job.errors.order_by("row", "id").iterator():
        if error.row != current:
            if current is not None:
                flush()
            current, messages, data = error.row, [], error.data
        messages.append(f"{error.column + ': ' if error.column else ''}{error.code} {error.message}")
    if current is not None:
        flush()
    return header, rows


def failed_rows_file(job: ImportJob) -> tuple[bytes, str, str]:
    """The rows that failed, to fix and upload again, as the file came in: a CSV with its
    delimiter and encoding (so German Excel opens it in columns), an XLSX as XLSX. Returns
    (content, file name, content type). The `line` and `errors` columns are ignored on upload."""
    header, rows = _failed_rows(job)
    name = f"{job.job_id}-failed-rows.{job.format}"
    if job.format == ImportJob.Format.XLSX:
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(job.sheet or "failed rows")
        sheet.append(header)
        for row in rows:
            sheet.append([int(row[0]), *row[1:]])
        buffer = io.BytesIO()
        workbook.save(buffer)
        return buffer.getvalue(), name, XLSX_TYPE
    dialect = Dialect.from_json(job.dialect) or Dialect()
    encoding = {"utf-8": "utf-8-sig", "utf-16": "utf-16"}.get(dialect.encoding, dialect.encoding)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=dialect.delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    charset = {"utf-8-sig": "utf-8", "cp1252": "windows-1252", "latin-1": "iso-8859-1"}.get(encoding, encoding)
    return out.getvalue().encode(encoding, errors="replace"), name, f"text/csv; charset={charset}"


def template_csv(type_name: str) -> bytes:
    spec = get_spec(type_name)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c.name for c in spec.columns])
    writer.writerow([c.example for c in spec.columns])
    return out.getvalue().encode("utf-8-sig")


def template_xlsx(type_name: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font

    spec = get_spec(type_name)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = type_name
    sheet.append([c.name for c in spec.columns])
    sheet.append([c.example for c in spec.columns])
    for cell, column in zip(sheet[1], spec.columns, strict=True):
        cell.font = Font(bold=column.required)
        cell.comment = Comment(("required: " if column.required else "optional: ") + column.description, "hub")
        sheet.column_dimensions[cell.column_letter].width = max(14, len(column.name) + 4)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
