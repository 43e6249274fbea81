"""The HTTP tool API: POST /api/tools/<tool>, GET /api/tools, GET /api/openapi.json."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from core.accounts.auth import authenticate_token, parse_bearer
from core.accounts.roles import ROLE_LEVEL, role_level
from core.api.openapi import openapi_document
from core.errors import ToolError
from core.tools import jsonio
from core.tools.pipeline import call_tool
from core.tools.registry import all_tools


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(jsonio.dumps(data), status=status, content_type="application/json", headers=headers)


def error_response(error: ToolError, *, allow: str | None = None) -> HttpResponse:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    if error.code == "UNAUTHORIZED":
        headers = {"WWW-Authenticate": 'Bearer realm="axhub"'}
    if error.code == "METHOD_NOT_ALLOWED" and allow:
        headers = {"Allow": allow}  # RFC 9110 requires it on every 405.
    return json_response({"error": error.as_dict()}, status=error.http_status, headers=headers)


def _authenticate(request: HttpRequest):
    token = authenticate_token(parse_bearer(request.headers.get("Authorization")))
    if token is None:
        raise ToolError("UNAUTHORIZED", "send a valid API token as 'Authorization: Bearer <token>'")
    return token


def _read_arguments(request: HttpRequest) -> Any:
    content_type = request.content_type or ""
    if content_type and content_type != "application/json":
        raise ToolError("UNSUPPORTED_MEDIA_TYPE", "send the arguments as application/json")
    body = _read_body(request)
    if not body.strip():
        return {}
    try:
        return jsonio.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ToolError("INVALID_JSON", f"the body is not valid JSON: {str(exc)[:200]}") from None


def _too_large(limit: int) -> ToolError:
    return ToolError("PAYLOAD_TOO_LARGE", f"the body is larger than {limit} bytes")


def _read_body(request: HttpRequest) -> bytes:
    """The request body, at most API_MAX_BODY_BYTES.

    A body sent with Transfer-Encoding: chunked has no Content-Length, and Django reads only as
    many bytes as Content-Length says: none. It is read here to its end instead, where the
    server hands over the decoded body with an end (a2wsgi under uvicorn, and servers that set
    wsgi.input_terminated); elsewhere it is refused with 411 rather than taken for no arguments."""
    limit = settings.API_MAX_BODY_BYTES
    if not request.META.get("CONTENT_LENGTH") and request.META.get("HTTP_TRANSFER_ENCODING"):
        environ = getattr(request, "environ", {})  # WSGI requests only
        if not (environ.get("wsgi.input_terminated") or "asgi.scope" in environ):
            raise ToolError("LENGTH_REQUIRED", "send the body with a Content-Length header")
        return _read_to_end(environ["wsgi.input"], limit)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ToolError("INVALID_JSON", "bad Content-Length header") from None
    if length > limit:
        raise _too_large(limit)
    try:
        return request.body
    except RequestDataTooBig:
        raise _too_large(limit) from None


def _read_to_end(stream, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(64 * 1024, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise _too_large(limit)


@csrf_exempt
def tool_endpoint(request: HttpRequest, tool: str) -> HttpResponse:
    try:
        if request.method != "POST":
            raise ToolError("METHOD_NOT_ALLOWED", "call a tool with POST")
        token = _authenticate(request)
        arguments = _read_arguments(request)
        output = call_tool(tool, arguments, token.user, request.headers.get("Idempotency-Key"), via="http",
                           role_cap=ROLE_LEVEL[token.role])
    except ToolError as error:
        return error_response(error, allow="POST")
    return json_response(output)


@csrf_exempt
def tool_list(request: HttpRequest) -> HttpResponse:
    try:
        if request.method != "GET":
            raise ToolError("METHOD_NOT_ALLOWED", "list tools with GET")
        token = _authenticate(request)
    except ToolError as error:
        return error_response(error, allow="GET")
    # The same cap the pipeline applies: a token never grants more than its user holds now.
    level = min(role_level(token.user), ROLE_LEVEL[token.role])
    tools = [{**t.describe(), "allowed": level >= t.role_level} for t in all_tools()]
    return json_response({"tools": tools})


@csrf_exempt
def openapi(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return error_response(ToolError("METHOD_NOT_ALLOWED", "use GET"), allow="GET")
    return json_response(openapi_document(request.build_absolute_uri("/")))


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    return error_response(ToolError("NOT_FOUND", "no such API endpoint; see GET /api/openapi.json"))
