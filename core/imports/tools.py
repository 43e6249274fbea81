"""Bulk import tools: ax_bulk_import, ax_get_import_status, ax_resume_import, ax_cancel_import."""

from __future__ import annotations

from typing import Any

from core.accounts.roles import MCP_READ, MCP_WRITE
from core.imports import services
from core.imports.models import ImportJob
from core.imports.specs import SPECS
from core.tools.pipeline import CallContext
from core.tools.registry import obj, register
from core.tools.schemas import BASE64, BOOLEAN, COUNT, NO_NUL, STRING, TIMESTAMP, nullable, record, ref, text

JOB_ID = ref(40, "import job id, e.g. IMP-…")
# core/imports/services.py status()
JOB = record({
    "job_id": STRING, "type": {"enum": list(SPECS)}, "format": {"enum": list(ImportJob.Format.values)},
    "status": {"enum": list(ImportJob.Status.values)}, "validate_only": BOOLEAN,
    "total": {**nullable(COUNT), "description": "data rows in the file; null until it has been read"},
    "processed": COUNT, "successful": COUNT, "failed": COUNT,
    "errors": {"type": "array", "items": record({
        "row": {**COUNT, "description": "line number in the file (the header is line 1)"},
        "column": STRING, "error": STRING, "message": STRING, "value": STRING})},
    "errors_total": COUNT, "errors_offset": COUNT, "created": TIMESTAMP, "finished": nullable(TIMESTAMP),
    "error": {**STRING, "description": "why the job failed or stopped"},
}, optional=("error",))


@register(
    "ax_bulk_import", role=MCP_WRITE,
    description="Import customers, items or sales orders from CSV (data as text) or XLSX (data as base64). "
                "Runs in the background in batches of batch_size rows; returns the job id and the first "
                "progress. validate_only checks everything and writes nothing.",
    schema={**obj({
        "type": {"enum": list(SPECS)},
        "format": {"enum": list(ImportJob.Format.values)},
        "data": {"type": "string", "minLength": 1, "pattern": NO_NUL,
                 "description": "the file: CSV as text, XLSX as standard base64"},
        "filename": text(255),
        "sheet": text(100),
        "validate_only": {"type": "boolean", "default": False},
        "batch_size": {"type": "integer", "minimum": 1, "maximum": services.MAX_BATCH_SIZE, "default": 100},
    }, ["type", "format", "data"]),
        # Stated for clients; checked by services.decode_data, as VALIDATION_ERROR, in time and memory
        # proportional to the file (Python's `re` keeps a frame per repetition of this pattern's group,
        # some 35 bytes per character: gigabytes for a workbook of the size IMPORT_MAX_FILE_BYTES allows).
        "if": {"properties": {"format": {"const": "xlsx"}}, "required": ["format"]},
        "then": {"properties": {"data": {"pattern": BASE64, "x-error-code": "VALIDATION_ERROR"}}}},
    output=JOB,
)
def bulk_import(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    job = services.submit(ctx.user, type=args["type"], fmt=args["format"],
                          content=services.decode_data(args["format"], args["data"]),
                          filename=args.get("filename", ""), validate_only=args.get("validate_only", False),
                          batch_size=args.get("batch_size", 100), sheet=args.get("sheet", ""))
    return services.status(job)


@register("ax_get_import_status", role=MCP_READ,
          description="Progress of an import: status, total, processed, successful, failed, and the row errors "
                      "(paginated with errors_offset / errors_limit; row = the line number in the file).",
          schema=obj({"job_id": JOB_ID, "errors_offset": {"type": "integer", "minimum": 0},
                      "errors_limit": {"type": "integer", "minimum": 1, "maximum": 1000}}, ["job_id"]),
          output=JOB)
def get_import_status(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    job = services.get_for_user(ctx.user, args["job_id"], ctx.role_level)
    return services.status(job, errors_offset=args.get("errors_offset", 0),
                           errors_limit=args.get("errors_limit", services.ERRORS_PAGE))


@register("ax_resume_import", role=MCP_WRITE,
          description="Resume a failed, cancelled or interrupted import from its last committed batch.",
          schema=obj({"job_id": JOB_ID}, ["job_id"]), output=JOB)
def resume_import(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return services.status(services.resume(services.get_for_user(ctx.user, args["job_id"], ctx.role_level)))


@register("ax_cancel_import", role=MCP_WRITE,
          description="Cancel a queued or running import; batches already committed stay imported.",
          schema=obj({"job_id": JOB_ID}, ["job_id"]), output=JOB)
def cancel_import(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return services.status(services.cancel(services.get_for_user(ctx.user, args["job_id"], ctx.role_level)))
