"""Runs an import job: reads the file in chunks of batch_size rows, validates, and writes the
valid rows of each chunk in one transaction together with the job's checkpoint.

A worker killed mid-chunk leaves the checkpoint at the last committed chunk; a resume skips
exactly the rows before it, so the result has no duplicate and no missing row. A cancel is
seen at the next chunk's commit (its conditional UPDATE of the job changes no row), which
then rolls back: nothing is half-written outside committed chunks.
"""

from __future__ import annotations

import gc
import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.db import transactions_held_in_memory, write_slot
from core.imports import mapping, services
from core.imports.ahead import read_ahead
from core.imports.models import Dialect, ImportJob, ImportRowError
from core.imports.readers import open_rows, sniff_csv
from core.imports.specs import ImportSpec, Outcome, Prepared, WriteContext, get_spec, xlsx_fast_reader

PREVIEW_ROWS = 5

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The job was cancelled (or taken over) while this chunk was being written."""


def _chunks(rows: Iterator[tuple[int, list[Any]]], size: int, group_index: int | None):
    """Chunks of about `size` rows; with group_index, a chunk never splits a group of
    consecutive rows sharing that column (the lines of one sales order)."""
    chunk: list[tuple[int, list[Any]]] = []
    for row in rows:
        if len(chunk) >= size and (group_index is None or _cell(row[1], group_index) != _cell(chunk[-1][1],
                                                                                                group_index)):
            yield chunk
            chunk = []
        chunk.append(row)
    if chunk:
        yield chunk


def _cell(values: list[Any], index: int) -> str:
    return str(values[index]).strip() if index < len(values) and values[index] is not None else ""


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Python's cycle collector off while a job runs. A run allocates millions of short-lived
    containers (rows, outcomes, records) and the collector, triggered by their number, walked
    them and every other object of the worker (Django's, pandas'): a third of the reading
    thread's time. Reference counting still frees every row as soon as it is done with; the
    few cycles a run leaves (some hundreds of objects per 100,000 rows) are collected when the
    collector is back on, after the run."""
    global _gc_runs, _gc_was_on
    with _gc_lock:
        _gc_runs += 1
        if _gc_runs == 1:
            _gc_was_on = gc.isenabled()
            gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_runs -= 1
            if _gc_runs == 0 and _gc_was_on:  # the last of the runs of this process at once
                gc.enable()


_gc_lock = threading.Lock()
_gc_runs = 0
_gc_was_on = True


def prepare(job: ImportJob) -> Dialect:
    path = Path(job.file.path)
    dialect = Dialect.from_json(job.dialect)
    if dialect is None:
        dialect = Dialect() if job.format == ImportJob.Format.XLSX else sniff_csv(path)
        ImportJob.objects.filter(pk=job.pk).update(dialect=dialect.as_json())
    return dialect


def resolve_header(job: ImportJob, header: list[str]) -> mapping.Resolved:
    """The job's mapping applied to the file's header (ImportFailure when it does not fit)."""
    spec = get_spec(job.type)
    return mapping.resolve(spec, header, job.mapping, required=spec.required_columns(job.mode))


def run(job: ImportJob) -> None:
    """Process a claimed (running) job from its checkpoint to the end."""
    started = time.perf_counter()
    spec = get_spec(job.type)
    dialect = prepare(job)
    # A batch's pages stay in memory until its commit (bounded: batch_size <= MAX_BATCH_SIZE).
    with (transactions_held_in_memory(), _without_cycle_collection(),
          open_rows(Path(job.file.path), job.format, dialect, job.sheet, raw_header=True) as (header, rows)):
        resolved = resolve_header(job, header)
        if job.total is None:
            job.total = rows.count()
            ImportJob.objects.filter(pk=job.pk).update(total=job.total)
        positions = resolved.positions
        key_index = positions[spec.key]
        seen: set[str] = set()
        # Rebuild the in-file duplicate check from the rows already handled.
        for _, values in itertools.islice(rows, job.checkpoint):
            seen.add(_cell(values, key_index))
        group = key_index if spec.key == "order_ref" else None
        xlsx = job.format == ImportJob.Format.XLSX

        def validated() -> Iterator[tuple[list[Outcome], Prepared | None]]:
            # Reading and validating (on the read-ahead thread) never touch the database;
            # checking and writing (below) do.
            for chunk in _chunks(rows, job.batch_size, group):
                outcomes = _validate(spec, chunk, positions, dialect, seen, grouped=group is not None,
                                     mode=job.mode, xlsx=xlsx)
                yield outcomes, None if job.validate_only else spec.prepare(outcomes, job.mode)

        # Only in create mode: there writing a chunk is the database's work, which the reader's
        # Python overlaps; the update modes compare and announce every row in Python here, and
        # a reader competing for the interpreter made them slower (README "Bulk import").
        with read_ahead(validated(), enabled=settings.IMPORT_READ_AHEAD and job.mode == "create") as chunks:
            for outcomes, prepared in chunks:
                # The update modes check in the write transaction; so does a create that writes
                # set-based rows, when its insert meets a taken key.
                if job.mode == "create" and (job.validate_only or not spec.insert_checks_keys):
                    _check(spec, outcomes)
                _commit_chunk(job, spec, outcomes, started, prepared)
                if job.preview is None or len(job.preview["rows"]) < min(PREVIEW_ROWS, job.total or 0):
                    _save_preview(job, spec, dialect, resolved, outcomes)
    finished = timezone.now()
    services.finish(job.pk, [ImportJob.Status.RUNNING], ImportJob.Status.COMPLETED, finished=finished,
                    heartbeat=finished,
                    duration_ms=int((finished - (job.started or finished)).total_seconds() * 1000))


def _validate(spec: ImportSpec, chunk, positions: dict[str, int], dialect: Dialect, seen: set[str], *,
              grouped: bool, mode: str = "create", xlsx: bool = False) -> list[Outcome]:
    outcomes = []
    previous_key = None
    fast = spec.fast_reader(positions, dialect)
    if fast is not None and xlsx:
        fast = xlsx_fast_reader(fast)
    key_name = spec.key
    for line, values in chunk:
        record = fast(values) if fast is not None else None
        if record is not None:
            outcome = Outcome(line, record=record, source=(positions, values))
            key = record[key_name]
        else:
            outcome = spec.read(line, _cells(positions, values), dialect, mode)
            key = outcome.raw.get(key_name, "")
        # Grouped rows (order lines) repeat their key while consecutive; elsewhere a key
        # seen before is a duplicate in the file.
        if key and key in seen and not (grouped and key == previous_key):
            outcome.fail(key_name, "DUPLICATE_KEY", f"{key_name} {key} appears more than once in the file")
        seen.add(key)
        previous_key = key
        outcomes.append(outcome)
    return outcomes


def _check(spec: ImportSpec, outcomes: list[Outcome]) -> None:
    valid = [o for o in outcomes if o.ok]
    if valid:
        spec.check(valid)


def _cells(positions: dict[str, int], values: list[Any]) -> dict[str, Any]:
    return {name: values[i] if i < len(values) else None for name, i in positions.items()}


def _save_preview(job: ImportJob, spec: ImportSpec, dialect: Dialect, resolved: mapping.Resolved,
                  outcomes: list[Outcome]) -> None:
    """The first rows as read (after mapping), with how the file was read: shown before anyone
    commits to a validated file."""
    fields = [c.name for c in spec.columns]
    rows = list((job.preview or {}).get("rows", []))  # small batches: the first rows of the next batch too
    for o in outcomes[:PREVIEW_ROWS - len(rows)]:
        shown = {name: ("" if value is None else str(value)) for name, value in o.record.items()}
        rows.append({"line": o.line, "values": {f: shown.get(f, o.raw.get(f, "")) for f in fields if f in
                                                resolved.positions},
                     "errors": [e.code for e in o.errors]})
    job.preview = {
        "format": job.format, "encoding": dialect.encoding if job.format == "csv" else None,
        "delimiter": dialect.delimiter if job.format == "csv" else None,
        "decimal_separator": "," if dialect.decimal_comma else ".",
        "columns": [{"column": column, "field": field} for column, field in resolved.columns],
        "rows": rows,
    }
    with write_slot():
        ImportJob.objects.filter(pk=job.pk).update(preview=job.preview)


def _commit_chunk(job: ImportJob, spec: ImportSpec, outcomes: list[Outcome], started: float,
                  prepared: Prepared | None = None) -> None:
    # As little Python as possible here: it runs beside the read-ahead thread, which holds the
    # interpreter much of the time. In create mode the reader has listed the valid outcomes
    # (Prepared), and every one the database takes is created.
    with write_slot(), transaction.atomic():
        valid = prepared.outcomes if prepared is not None else [o for o in outcomes if not o.errors]
        if valid and job.mode != "create":
            spec.classify(valid, job.mode, lock=not job.validate_only)
            valid = [o for o in valid if not o.errors]
        if valid and not job.validate_only:
            spec.write(valid, WriteContext(job=job, started=started, prepared=prepared))
        failed = [o for o in outcomes if o.errors]
        if job.mode == "create":
            actions = Counter(create=len(outcomes) - len(failed))
        else:
            actions = Counter(o.action for o in outcomes if not o.errors)
        ImportRowError.objects.bulk_create([
            ImportRowError(job=job, row=o.line, column=e.column, code=e.code, message=e.message, value=e.value,
                           data=o.raw if n == 0 else None)
            for o in failed for n, e in enumerate(o.errors)
        ])
        now = timezone.now()
        changed = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING, attempts=job.attempts).update(
            checkpoint=F("checkpoint") + len(outcomes), processed=F("processed") + len(outcomes),
            successful=F("successful") + len(outcomes) - len(failed), failed=F("failed") + len(failed),
            records_created=F("records_created") + actions["create"],
            records_updated=F("records_updated") + actions["update"],
            records_unchanged=F("records_unchanged") + actions["unchanged"], heartbeat=now)
        if changed != 1:
            raise Cancelled()
