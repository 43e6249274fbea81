"""The one error type every area raises and every way in renders: a stable code and a message.

Codes are part of the public interface (HTTP, MCP, call_tool, batch results); never rename one.
"""

from __future__ import annotations

from typing import Any

# HTTP status per code; codes not listed are business-rule refusals (422).
HTTP_STATUS = {
    "INVALID_JSON": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "TOOL_NOT_FOUND": 404,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "LENGTH_REQUIRED": 411,
    "IDEMPOTENCY_KEY_REUSED": 409,
    "IDEMPOTENCY_IN_PROGRESS": 409,
    "INVALID_STATE": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "VALIDATION_ERROR": 422,
    "INVALID_DATA": 422,
    "RATE_LIMITED": 429,
    "INTERNAL_ERROR": 500,
    "CIRCUIT_OPEN": 503,
    "BACKEND_UNAVAILABLE": 503,
}


class ToolError(Exception):
    """A refusal with a stable code. Never carries a traceback to the caller."""

    def __init__(self, code: str, message: str, *, field: str | None = None, retry_after: int | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after
        self.details = details or {}

    @property
    def http_status(self) -> int:
        if self.code in HTTP_STATUS:
            return HTTP_STATUS[self.code]
        if self.code.endswith("_NOT_FOUND"):
            return 404
        if self.code.endswith("_ALREADY_EXISTS"):
            return 409
        return 422

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        if self.details:
            body["details"] = self.details
        return body

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolError:
        return cls(data["code"], data.get("message", ""), field=data.get("field"),
                   retry_after=data.get("retry_after"), details=data.get("details"))

    def __repr__(self) -> str:
        return f"ToolError({self.code!r}, {self.message!r})"
