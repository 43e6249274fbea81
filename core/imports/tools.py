"""Bulk import tools: ax_bulk_import, ax_get_import_status, ax_resume_import, ax_cancel_import,
ax_list_import_mappings."""

from __future__ import annotations

from typing import Any

from core.accounts.roles import MCP_READ, MCP_WRITE
from core.imports import mapping, services
from core.imports.models import ImportJob, ImportMapping, ImportMode
from core.imports.specs import SPECS
from core.tools.pipeline import CallContext
from core.tools.registry import obj, register
from core.tools.schemas import (
    BASE64,
    BOOLEAN,
    COUNT,
    JSON_OBJECT,
    NO_NUL,
    STRING,
    TIMESTAMP,
    nullable,
    record,
    ref,
    text,
)

JOB_ID = ref(40, "import job id, e.g. IMP-…")
FIELD_NAMES = sorted({c.name for spec in SPECS.values() for c in spec.columns})
MAPPING = {"type": "object", "maxProperties": 200,
           "propertyNames": {"minLength": 1, "maxLength": 255},
           "additionalProperties": {"anyOf": [{"enum": FIELD_NAMES}, {"type": "null"}]},
           "description": "file column (as the header spells it; case, spaces and umlauts ignored) -> the field it "
                          "gives, or null to ignore the column; columns not named match a field of their name"}
MAPPING_NAME = text(100)
# What from_job takes from the job it names.
FROM_JOB_EXCLUDES = ("type", "format", "data", "encoding", "filename", "sheet", "mapping", "mapping_name", "roi")
# core/imports/services.py status()
JOB = record({
    "job_id": STRING, "type": {"enum": list(SPECS)}, "format": {"enum": list(ImportJob.Format.values)},
    "status": {"enum": list(ImportJob.Status.values)}, "validate_only": BOOLEAN,
    "mode": {"enum": list(ImportMode.values)},
    "roi": {**BOOLEAN, "description": "false: a one-off migration, its records not counted in ROI"},
    "mapping": {"type": "object", "additionalProperties": nullable(STRING)}, "mapping_name": STRING,
    "from_job": {**nullable(STRING), "description": "the job whose stored file this one runs"},
    "total": {**nullable(COUNT), "description": "data rows in the file; null until it has been read"},
    "processed": COUNT, "successful": COUNT, "failed": COUNT,
    "records": {**record({"created": COUNT, "updated": COUNT, "unchanged": COUNT}),
                "description": "rows that created a record, changed one, or matched one exactly (validate_only: "
                               "what the import would do)"},
    "preview": {**nullable(JSON_OBJECT), "description": "how the file was read (format, encoding, delimiter, "
                                                        "decimal_separator), its columns and the fields they give, "
                                                        "and the first rows as parsed; null until read"},
    "error_summary": {"type": "object", "additionalProperties": COUNT,
                      "description": "row errors per code, most frequent first"},
    "errors": {"type": "array", "items": record({
        "row": {**COUNT, "description": "line number in the file (the header is line 1)"},
        "column": STRING, "error": STRING, "message": STRING, "value": STRING})},
    "errors_total": COUNT, "errors_offset": COUNT,
    "created": {**TIMESTAMP, "description": "when the job was submitted (records.created counts new records)"},
    "finished": nullable(TIMESTAMP),
    "error": {**STRING, "description": "why the job failed or stopped"},
}, optional=("error",))


@register(
    "ax_bulk_import", role=MCP_WRITE,
    description="Import customers, items or sales orders from CSV (data as text) or XLSX (data as base64). "
                "Runs in the background in batches of batch_size rows; returns the job id and the first "
                "progress. mode: create (default), update (existing records; a blank cell leaves a field, "
                "#N/A clears it) or upsert (customers and items). validate_only checks everything and writes "
                "nothing; from_job then runs that job's stored file for real. mapping names the file's columns; "
                "mapping_name uses a saved mapping (given with mapping: saves it under that name). "
                "roi: false marks a one-off migration that ROI does not count.",
    schema={**obj({
        "type": {"enum": list(SPECS)},
        "format": {"enum": list(ImportJob.Format.values)},
        "data": {"type": "string", "minLength": 1, "pattern": NO_NUL,
                 "description": "the file: CSV as text, XLSX as standard base64"},
        "encoding": {"enum": list(services.CSV_ENCODINGS), "default": "utf-8",
                     "description": "CSV only: the encoding the file came in, data being its text (utf-8-sig: "
                                    "UTF-8 with a byte-order mark, cp1252: Windows-1252). The file is kept, "
                                    "and its failed rows come back, in it"},
        "filename": text(255),
        "sheet": text(100),
        "mode": {"enum": list(ImportMode.values), "default": "create",
                 "description": "create, update or upsert (update and upsert: customers and items)"},
        "mapping": MAPPING,
        "mapping_name": {**MAPPING_NAME, "description": "a saved mapping of this type (see "
                                                        "ax_list_import_mappings); with mapping: save it under "
                                                        "this name"},
        "roi": {"type": "boolean", "default": True,
                "description": "false: a one-off migration; its records are not counted as saved manual work"},
        "from_job": {**JOB_ID, "description": "run the stored file of this finished job (e.g. a validate-only one) "
                                              "with its type, format, sheet, mapping and ROI flag; only mode, "
                                              "batch_size and validate_only may be given with it"},
        "validate_only": {"type": "boolean", "default": False},
        "batch_size": {"type": "integer", "minimum": 1, "maximum": services.MAX_BATCH_SIZE, "default": 100},
    }),
        "allOf": [
            # Stated for clients; checked by services.decode_data, as VALIDATION_ERROR, in time and memory
            # proportional to the file (Python's `re` keeps a frame per repetition of this pattern's group,
            # some 35 bytes per character: gigabytes for a workbook of the size IMPORT_MAX_FILE_BYTES allows).
            {"if": {"properties": {"format": {"const": "xlsx"}}, "required": ["format"]},
             "then": {"properties": {"data": {"pattern": BASE64, "x-error-code": "VALIDATION_ERROR"}}}},
            {"if": {"properties": {"format": {"const": "xlsx"}}, "required": ["format"]},
             "then": {"not": {"required": ["encoding"]},
                      "x-message": "encoding is for CSV text; an XLSX workbook (base64) holds its own"}},
            # A mapping names the fields of its type only; a type that cannot update is create-only.
            *({"if": {"properties": {"type": {"const": name}}, "required": ["type"]},
               "then": {"properties": {
                   "mapping": {"additionalProperties": {
                       "anyOf": [{"enum": [c.name for c in spec.columns]}, {"type": "null"}],
                       "x-message": f"a column maps to a field {name} does not have; fields are "
                                    f"{', '.join(c.name for c in spec.columns)} (or null to ignore the column)"}},
                   **({} if spec.updatable else {"mode": {
                       "const": "create", "x-message": f"{name} imports only create (mode create): an order "
                                                       f"imported twice fails with ORDER_ALREADY_EXISTS, so a re-run "
                                                       f"is safe"}})}}}
              for name, spec in SPECS.items()),
            {"if": {"required": ["from_job"]},
             "then": {"not": {"anyOf": [{"required": [name]} for name in FROM_JOB_EXCLUDES]},
                      "x-message": f"{', '.join(FROM_JOB_EXCLUDES)} cannot be given with from_job, which runs "
                                   f"that job's stored file with its settings"},
             "else": {"required": ["type", "format", "data"]}},
        ]},
    output=JOB,
)
def bulk_import(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    if "from_job" in args:
        source = services.get_for_user(ctx.user, args["from_job"], ctx.role_level, field="from_job")
        job = services.submit_from_job(ctx.user, source, mode=args.get("mode"), batch_size=args.get("batch_size"),
                                       validate_only=args.get("validate_only", False))
        return services.status(job)
    job = services.submit(ctx.user, type=args["type"], fmt=args["format"],
                          content=services.decode_data(args["format"], args["data"], args.get("encoding", "utf-8")),
                          filename=args.get("filename", ""), validate_only=args.get("validate_only", False),
                          batch_size=args.get("batch_size", 100), sheet=args.get("sheet", ""),
                          mode=args.get("mode", "create"), mapping=args.get("mapping"),
                          mapping_name=args.get("mapping_name", ""), roi=args.get("roi", True))
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


MAPPING_RECORD = record({"type": {"enum": list(SPECS)}, "name": STRING,
                         "mapping": {"type": "object", "additionalProperties": nullable(STRING)},
                         "updated": TIMESTAMP})


@register("ax_list_import_mappings", role=MCP_READ,
          description="The saved column mappings (per import type and name) that ax_bulk_import's mapping_name "
                      "uses, with the fields of each type and, given a header, the suggested mapping.",
          schema=obj({"type": {"enum": list(SPECS)},
                      "header": {"type": "array", "maxItems": 200, "items": text(255),
                                 "description": "a file's header row: the answer suggests a mapping and a type"}}),
          output=record({
              "mappings": {"type": "array", "items": MAPPING_RECORD},
              "fields": {"type": "object", "additionalProperties": {"type": "array", "items": record({
                  "name": STRING, "required": BOOLEAN, "description": STRING})}},
              "suggested_type": {**nullable(STRING), "description": "the type the header most likely belongs to"},
              "suggested_mapping": {"type": "object", "additionalProperties": STRING,
                                    "description": "header column -> field, for the type given or suggested"},
          }, optional=("suggested_type", "suggested_mapping")))
def list_import_mappings(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    mappings = ImportMapping.objects.all()
    if "type" in args:
        mappings = mappings.filter(type=args["type"])
    result: dict[str, Any] = {
        "mappings": [{"type": m.type, "name": m.name, "mapping": m.mapping, "updated": m.updated.isoformat()}
                     for m in mappings[:500]],
        "fields": {name: [{"name": c.name, "required": c.required, "description": c.description}
                          for c in spec.columns] for name, spec in SPECS.items()},
    }
    if "header" in args:
        guessed = mapping.guess_type(args["header"])
        result["suggested_type"] = guessed
        chosen = args.get("type") or guessed
        result["suggested_mapping"] = mapping.suggest(SPECS[chosen], args["header"]) if chosen else {}
    return result
