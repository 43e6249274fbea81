"""ax_batch_operations and ax_get_batch_status."""

from __future__ import annotations

from typing import Any

from core.accounts.roles import MCP_READ, MCP_WRITE
from core.tools import batch
from core.tools.models import BatchRun
from core.tools.pipeline import CallContext
from core.tools.registry import obj, register
from core.tools.schemas import COUNT, JSON_OBJECT, STRING, record, ref

# core/tools/batch.py: an entry of `results`, in request order.
RESULT = {"type": "object", "oneOf": [
    record({"index": COUNT, "success": {"const": True},
            "output": {**JSON_OBJECT, "description": "the tool's output, as its own output schema says"}}),
    record({"index": COUNT, "success": {"const": False}, "error": {**STRING, "description": "the error code"},
            "message": STRING}),
]}
STATUS = {"enum": list(BatchRun.Status.values)}
SUMMARY = record({
    "batch_id": STRING, "status": STATUS, "total": COUNT, "processed": COUNT, "successful": COUNT, "failed": COUNT,
    "results": {"type": "array", "items": RESULT, "description": "once the batch is done"},
    "duration_ms": {"type": ["integer", "null"], "minimum": 0, "description": "once the batch is done"},
    "error": {**STRING, "description": "why a batch stopped"},
}, optional=("results", "duration_ms", "error"))


@register(
    batch.BATCH_TOOL, role=MCP_WRITE, transactional=False,
    description="Run up to 1000 tool calls in one request, up to max_parallel at a time. Each operation is "
                "checked, audited and idempotent on its own; results come back in request order. With "
                "async=true the batch is queued and ax_get_batch_status reports progress.",
    schema=obj({
        "requests": {"type": "array", "minItems": 1, "maxItems": batch.MAX_REQUESTS, "items": {
            # Checked per entry by the runner: one malformed entry fails alone, not the batch.
            "description": "{tool, arguments, idempotency_key?}"}},
        "stop_on_error": {"type": "boolean", "default": False},
        "max_parallel": {"type": "integer", "minimum": 1, "maximum": batch.MAX_PARALLEL, "default": 5},
        "async": {"type": "boolean", "default": False},
    }, ["requests"]),
    output={"type": "object", "description": "the finished batch, or with async=true {batch_id, status, total}",
            "anyOf": [SUMMARY, record({"batch_id": STRING, "status": STATUS, "total": COUNT})]},
)
def batch_operations(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return batch.submit(ctx.user, args["requests"], stop_on_error=args.get("stop_on_error", False),
                        max_parallel=args.get("max_parallel", 5), is_async=args.get("async", False),
                        via=ctx.via, role_cap=ctx.role_level)


@register("ax_get_batch_status", role=MCP_READ,
          description="Progress of a batch (processed of total) and, once done, its full result.",
          schema=obj({"batch_id": ref(40, "batch id, e.g. B-…")}, ["batch_id"]), output=SUMMARY)
def get_batch_status(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return batch.summary(batch.get_for_user(ctx.user, args["batch_id"], ctx.role_level))
