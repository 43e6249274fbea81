"""Schemathesis hooks for tests/api/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

positive_data_acceptance is told that 422 can answer valid data, because some rules are beyond
JSON Schema (stock, credit limits, a date range's order). This check keeps the part that is
not: data that fits the schema must never be refused for its shape, i.e. with a code that says
an argument is malformed, except where a rule spans fields or the server's state.
"""

from __future__ import annotations

import itertools

import schemathesis

# Codes that mean "this argument is malformed".
SHAPE_CODES = {"VALIDATION_ERROR", "INVALID_NUMBER", "MISSING_FIELD", "INVALID_JSON"}
# (operation, field) refusals whose rule JSON Schema cannot state: a range's order and span, stock
# that would pass the maximum, text anywhere inside a batch's free-form entries.
BEYOND_SCHEMA = {
    ("ax_get_roi_metrics", "date_to"),
    ("ax_adjust_inventory", "quantity_change"),
    ("ax_batch_operations", "requests"),
}


_serial = itertools.count()


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    """In a case of valid data, the idempotency key is made unique (a prefix keeps it valid).
    Generated keys repeat ("0", "a"), and a key reused for other arguments is
    IDEMPOTENCY_KEY_REUSED (409): without this, most valid calls would stop there and never
    reach the tools. Cases of invalid data are sent as generated."""
    meta = case.meta
    key = (case.headers or {}).get("Idempotency-Key")
    if meta is not None and meta.generation.mode.is_positive and isinstance(key, str):
        case.headers["Idempotency-Key"] = f"{next(_serial)}:{key}"[:255]


@schemathesis.check
def valid_data_is_not_refused_as_malformed(ctx, response, case) -> None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in (400, 422):
        return
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return  # the schema checks report a body that is not the error object
    if error.get("code") not in SHAPE_CODES:
        return
    operation = case.operation.definition.raw.get("operationId", case.operation.label)
    field = str(error.get("field") or "").split(".")[0].split("[")[0]
    if (operation, field) in BEYOND_SCHEMA:
        return
    raise AssertionError(f"data that fits the schema was refused as malformed: {error.get('code')} "
                         f"{error.get('message')!r}")
