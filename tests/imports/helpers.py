"""Imports as the tests run them: an XLSX built in memory, a job run the way the worker runs it."""

from __future__ import annotations

import io

from openpyxl import Workbook

from core.imports import services, tasks
from core.imports.models import ImportJob


def xlsx_bytes(rows: list[list], sheet: str = "Sheet1") -> bytes:
    workbook = Workbook()
    ws = workbook.active
    ws.title = sheet
    for row in rows:
        ws.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def run_import(user, type_: str, content: bytes | str, *, fmt: str = "csv", **options) -> ImportJob:
    """Submit and run an import the way the worker does; returns the finished job."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    job = services.submit(user, type=type_, fmt=fmt, content=content, **options)
    tasks.run_import(job.pk)
    job.refresh_from_db()
    return job


def errors_of(job: ImportJob) -> list[tuple[int, str, str]]:
    return [(e.row, e.column, e.code) for e in job.errors.all()]
