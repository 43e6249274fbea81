"""An OpenAPI 3.1 document generated from the tool registry (JSON Schema 2020-12 fits 3.1)."""

from __future__ import annotations

from typing import Any

from core.tools.registry import all_tools

_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"},
                           "retry_after": {"type": "integer"}},
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}
_ERROR_STATUSES = {
    "400": "invalid JSON", "401": "missing, unknown or revoked token", "403": "role too low",
    "404": "unknown tool or record", "409": "conflict (state, duplicate, idempotency key)",
    "413": "body too large", "422": "invalid arguments or a business rule refused the call",
    "429": "rate limited (see Retry-After)", "503": "circuit open or backend unavailable",
}


def openapi_document(server_url: str) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/api/tools": {
            "get": {
                "summary": "List the tools with their JSON Schemas",
                "responses": {"200": {"description": "the tools"}},
            }
        }
    }
    for tool in all_tools():
        responses = {"200": {"description": "the tool's output", "content": {"application/json": {"schema": {
            "type": "object"}}}}}
        for status, text in _ERROR_STATUSES.items():
            responses[status] = {"description": text, "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/Error"}}}}
        paths[f"/api/tools/{tool.name}"] = {
            "post": {
                "operationId": tool.name,
                "summary": tool.description,
                "description": f"Requires role {tool.role}.",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                "schema": {"type": "string", "maxLength": 255}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": tool.input_schema}}},
                "responses": responses,
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "AX Integration Hub", "version": "1.0.0"},
        "servers": [{"url": server_url.rstrip("/")}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _ERROR},
        },
        "paths": paths,
    }
