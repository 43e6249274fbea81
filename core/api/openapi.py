"""An OpenAPI 3.1 document generated from the tool registry (JSON Schema 2020-12 fits 3.1).

Each tool's operation takes its input schema as the request body and answers 200 with its
output schema; every error status the API answers is listed with the error object, whose
`code` is one of the codes that status carries (ERROR_CODES, the complete catalogue).
"""

from __future__ import annotations

from typing import Any

from core.errors import ToolError
from core.tools.idempotency import MAX_KEY_LENGTH
from core.tools.registry import all_tools

# Every code the server answers with, and what it means. A test holds this to the codes raised
# in core/; the status of each is ToolError(code).http_status.
ERROR_CODES = {
    "INVALID_JSON": "the body is not JSON (malformed, NaN, nested too deep) or has a bad Content-Length",
    "UNAUTHORIZED": "missing, unknown or revoked token",
    "FORBIDDEN": "the token's role (or its user's) is too low for the tool",
    "NOT_FOUND": "no such API endpoint",
    "TOOL_NOT_FOUND": "no tool of that name",
    "CUST_NOT_FOUND": "no customer with that account",
    "ITEM_NOT_FOUND": "no item with that number",
    "ORDER_NOT_FOUND": "no sales order with that id",
    "INVOICE_NOT_FOUND": "no invoice with that id",
    "BATCH_NOT_FOUND": "no batch with that id (or not yours)",
    "IMPORT_NOT_FOUND": "no import job with that id (or not yours)",
    "MAPPING_NOT_FOUND": "no saved import mapping of that type and name",
    "DUPLICATE_COLUMN": "an import mapping gives one field from two columns",
    "SUBSCRIPTION_NOT_FOUND": "no webhook subscription with that id",
    "DELIVERY_NOT_FOUND": "no webhook delivery with that id",
    "METHOD_NOT_ALLOWED": "wrong HTTP method (see the Allow header)",
    "CUST_ALREADY_EXISTS": "a customer with that account exists",
    "ITEM_ALREADY_EXISTS": "an item with that number exists",
    "INVALID_STATE": "the record's state forbids the change (an invoiced order, a disabled subscription, …)",
    "IDEMPOTENCY_KEY_REUSED": "the idempotency key was used for a different request",
    "IDEMPOTENCY_IN_PROGRESS": "a call with the same idempotency key is still running",
    "LENGTH_REQUIRED": "a chunked body where the server cannot read one; send Content-Length",
    "PAYLOAD_TOO_LARGE": "the body is over API_MAX_BODY_BYTES",
    "UNSUPPORTED_MEDIA_TYPE": "the body is not application/json",
    "VALIDATION_ERROR": "the arguments break the input schema or a rule of the tool; `field` names the argument",
    "INVALID_CURSOR": "the cursor is not one this list gave out for these filters; start again from the first page",
    "INVALID_DATE_RANGE": "date_to is before date_from",
    "INVALID_NUMBER": "an amount is not a number, has more than two decimals, or is 10^16 or more",
    "INVALID_CURRENCY": "not an active ISO 4217 currency code (XXX, XTS, metals and units of account are refused)",
    "INVALID_EMAIL": "not an e-mail address",
    "MISSING_FIELD": "a required text is blank",
    "INVALID_DATA": "the database refused a value of the call; nothing was applied",
    "INSUFFICIENT_STOCK": "more ordered than available (on hand minus reserved); `details` has the figures",
    "CREDIT_LIMIT_EXCEEDED": "balance plus the order would exceed the customer's credit limit",
    "CUST_BLOCKED": "the customer is blocked for new orders",
    "NO_EXCHANGE_RATE": "no exchange rate from the base currency to the customer's",
    "OVERPAYMENT": "the payment is more than the invoice's open amount",
    "CURRENCY_MISMATCH": "the payment's currency is not the customer's",
    "INVOICE_CUSTOMER_MISMATCH": "the invoice belongs to another customer",
    "EMPTY_FILE": "the import's data is empty",
    "FILE_TOO_LARGE": "the import's file is over IMPORT_MAX_FILE_BYTES",
    "NESTED_BATCH_NOT_ALLOWED": "a batch operation that is itself a batch (in batch results)",
    "NOT_EXECUTED": "not run because an earlier operation failed with stop_on_error (in batch results)",
    "RATE_LIMITED": "too many calls per minute, or too many failed authentications (see Retry-After)",
    "INTERNAL_ERROR": "a bug: logged on the server, nothing applied",
    "CIRCUIT_OPEN": "the ERP backend failed repeatedly; calls are refused for a while (see Retry-After)",
    "BACKEND_UNAVAILABLE": "the ERP backend failed to complete the call; nothing applied",
}
# Codes that only ever appear inside a batch's results, never as an HTTP answer.
BATCH_ONLY = ("NESTED_BATCH_NOT_ALLOWED", "NOT_EXECUTED")

STATUS_TEXT = {
    400: "invalid JSON", 401: "missing, unknown or revoked token", 403: "role too low",
    404: "unknown tool or record", 405: "method not allowed", 409: "conflict (state, duplicate, idempotency key)",
    411: "length required", 413: "body too large", 415: "not JSON", 422: "invalid arguments, or a business rule "
    "refused the call", 429: "rate limited", 500: "internal error", 503: "circuit open or backend unavailable",
}

# core/tools/idempotency.check_key: printable ASCII, not only spaces.
IDEMPOTENCY_KEY = {
    "type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": "^[ -~]*[!-~][ -~]*$",
    "description": f"1-{MAX_KEY_LENGTH} printable ASCII characters, not only spaces. The same key with the same "
                   "arguments replays the stored outcome; with other arguments it is IDEMPOTENCY_KEY_REUSED.",
}

_HEADERS = {
    401: {"WWW-Authenticate": {"required": True, "schema": {"type": "string", "pattern": "^Bearer"}}},
    405: {"Allow": {"required": True, "schema": {"type": "string"}}},
    429: {"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"},
                          "description": "seconds to wait"}},
    503: {"Retry-After": {"required": False, "schema": {"type": "string", "pattern": "^[0-9]+$"},
                          "description": "seconds until the circuit half-opens (CIRCUIT_OPEN)"}},
}


def codes_by_status() -> dict[int, list[str]]:
    by_status: dict[int, list[str]] = {}
    for code in ERROR_CODES:
        if code not in BATCH_ONLY:
            by_status.setdefault(ToolError(code, "").http_status, []).append(code)
    return dict(sorted(by_status.items()))


def error_schema(codes: list[str] | None = None) -> dict[str, Any]:
    """The error body (core/errors.py ToolError.as_dict), with `code` one of `codes` when given."""
    code: dict[str, Any] = {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"}
    if codes:
        code = {"enum": codes}
    return {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": code,
                    "message": {"type": "string"},
                    "field": {"type": "string", "description": "the argument at fault, as a dotted path"},
                    "retry_after": {"type": "integer", "minimum": 0, "description": "seconds"},
                    "details": {"type": "object"},
                },
                "required": ["code", "message"],
                "additionalProperties": False,
            }
        },
        "required": ["error"],
        "additionalProperties": False,
    }


def _error_responses(statuses: list[int]) -> dict[str, Any]:
    responses = {}
    for status in statuses:
        response: dict[str, Any] = {"description": STATUS_TEXT[status], "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/Error{status}"}}}}
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        responses[str(status)] = response
    return responses


_JSON_OBJECT = {"type": "object"}
_TOOL_LIST = {
    "type": "object",
    "properties": {"tools": {"type": "array", "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "description": {"type": "string"},
            "role": {"enum": ["MCP_Read", "MCP_Write", "MCP_Admin"]},
            "input_schema": _JSON_OBJECT, "output_schema": {"type": ["object", "null"]},
            "allowed": {"type": "boolean", "description": "whether your token may call it"},
        },
        "required": ["name", "description", "role", "input_schema", "output_schema", "allowed"],
        "additionalProperties": False,
    }}},
    "required": ["tools"],
    "additionalProperties": False,
}
# 405 answers any method but POST (with Allow: POST); 411 a chunked body the server cannot read.
TOOL_ERRORS = [400, 401, 403, 404, 405, 409, 411, 413, 415, 422, 429, 500, 503]


def openapi_document(server_url: str) -> dict[str, Any]:
    by_status = codes_by_status()
    paths: dict[str, Any] = {
        "/api/tools": {
            "get": {
                "operationId": "list_tools",
                "summary": "List the tools with their input and output JSON Schemas",
                "responses": {"200": {"description": "the tools", "content": {"application/json": {
                    "schema": _TOOL_LIST}}}, **_error_responses([401, 429, 500])},
            }
        },
    }
    for tool in all_tools():
        paths[f"/api/tools/{tool.name}"] = {
            "post": {
                "operationId": tool.name,
                "summary": tool.description,
                "description": f"Requires role {tool.role}.",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                "schema": IDEMPOTENCY_KEY}],
                # An empty body is a call without arguments, which only some tools take.
                "requestBody": {"required": not tool.validator.is_valid({}),
                                "content": {"application/json": {"schema": tool.input_schema}}},
                "responses": {
                    "200": {"description": "the tool's output", "content": {"application/json": {
                        "schema": tool.output_schema or _JSON_OBJECT}}},
                    **_error_responses(TOOL_ERRORS),
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "AX Integration Hub", "version": "1.0.0",
                 "description": "Every error is {\"error\": {\"code\", \"message\", \"field\"?, \"retry_after\"?, "
                                "\"details\"?}}; each status lists the codes it carries."},
        "servers": [{"url": server_url.rstrip("/")}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": error_schema(), **{f"Error{status}": error_schema(codes)
                                                    for status, codes in by_status.items()}},
        },
        "paths": paths,
    }
