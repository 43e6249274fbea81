"""The MCP server: every registered ax_* tool, reachable over stdio and streamable HTTP, with
the records as resources (core/api/mcp_resources.py) and prompts (core/api/mcp_prompts.py).

Built on the official SDK's low-level Server, because the tools are a dynamic registry with
raw JSON Schemas. Every call goes through core.tools.pipeline.call_tool, so roles, rate
limit, idempotency and audit apply exactly as over HTTP. The caller (user and the token's
role cap) travels in a context variable set by the transport: the Bearer middleware for
HTTP, the management command for stdio.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from dataclasses import dataclass
from typing import Any

import anyio
import mcp.types as types
from django.conf import settings
from django.db import close_old_connections
from mcp import MCPError
from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import INVALID_REQUEST, UNSUPPORTED_PROTOCOL_VERSION
from mcp_types.version import SUPPORTED_PROTOCOL_VERSIONS

from core.accounts.auth import authenticate_token, parse_bearer
from core.accounts.roles import ROLE_LEVEL
from core.api import mcp_prompts, mcp_resources
from core.errors import ToolError
from core.tools import jsonio
from core.tools.pipeline import call_tool
from core.tools.registry import all_tools, get_tool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    user: Any
    role_cap: int | None
    via: str


current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("mcp_principal", default=None)


def _result(payload: dict[str, Any], *, is_error: bool = False) -> types.CallToolResult:
    # Structured content must be a JSON object; JSON text keeps older clients working.
    data = json.loads(jsonio.dumps(payload))
    return types.CallToolResult(is_error=is_error, content=[types.TextContent(text=jsonio.dumps(payload))],
                                structured_content=data)


def _run_tool(principal: Principal, name: str, arguments: Any, key: str | None) -> dict[str, Any]:
    close_old_connections()
    try:
        return call_tool(name, arguments, principal.user, key, via=principal.via, role_cap=principal.role_cap)
    finally:
        close_old_connections()


async def _list_tools(ctx: ServerRequestContext, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[
        types.Tool(name=t.name, description=f"{t.description} (role {t.role})", input_schema=t.input_schema,
                   output_schema=t.output_schema)
        for t in all_tools()
    ])


async def _call_tool(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> types.CallToolResult:
    principal = current_principal.get()
    if principal is None:
        return _result({"error": ToolError("UNAUTHORIZED", "no authenticated caller").as_dict()}, is_error=True)
    meta = params.meta or {}
    key = meta.get("idempotency_key") if isinstance(meta, dict) else None
    arguments = params.arguments if params.arguments is not None else {}
    try:
        output = await anyio.to_thread.run_sync(_run_tool, principal, params.name, arguments, key)
    except ToolError as error:
        return _result({"error": error.as_dict()}, is_error=True)
    except Exception:  # never let the SDK turn an exception's text into the reply
        log.exception("MCP call of %s failed", params.name)
        return _result({"error": {"code": "INTERNAL_ERROR", "message": "the call failed unexpectedly"}},
                       is_error=True)
    return _result(output)


def _input_schema(name: str) -> dict[str, Any] | None:
    try:
        return get_tool(name).input_schema
    except ToolError:
        return None


async def _list_resources(ctx: ServerRequestContext,
                          params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
    # Every record is reached through a template; the empty list announces the resources capability.
    return types.ListResourcesResult(resources=[])


async def _list_resource_templates(ctx: ServerRequestContext,
                                   params: types.PaginatedRequestParams | None) -> types.ListResourceTemplatesResult:
    return types.ListResourceTemplatesResult(resource_templates=mcp_resources.templates())


async def _read_resource(ctx: ServerRequestContext,
                         params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    principal = current_principal.get()
    if principal is None:
        raise MCPError(code=INVALID_REQUEST, message="no authenticated caller")

    def run(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return _run_tool(principal, tool, arguments, None)

    uri = str(params.uri)
    return await anyio.to_thread.run_sync(mcp_resources.read, uri, run)


async def _list_prompts(ctx: ServerRequestContext,
                        params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
    return types.ListPromptsResult(prompts=mcp_prompts.listed())


async def _get_prompt(ctx: ServerRequestContext, params: types.GetPromptRequestParams) -> types.GetPromptResult:
    return mcp_prompts.get(params.name, params.arguments)


def build_server() -> Server:
    return Server("ax-integration-hub", version="1.0.0", on_list_tools=_list_tools, on_call_tool=_call_tool,
                  get_tool_input_schema=_input_schema, on_list_resources=_list_resources,
                  on_list_resource_templates=_list_resource_templates, on_read_resource=_read_resource,
                  on_list_prompts=_list_prompts, on_get_prompt=_get_prompt)


# --- streamable HTTP -----------------------------------------------------------------------


async def _send_json(send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()) -> None:
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()), *headers]})
    await send({"type": "http.response.body", "body": raw})


async def _send_rpc_error(send, status: int, code: int, message: str, data: dict[str, Any] | None = None,
                          headers: list[tuple[bytes, bytes]] = ()) -> None:
    """A JSON-RPC error object answering a request the transport refuses before reading it."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    await _send_json(send, status, {"jsonrpc": "2.0", "id": None, "error": error}, headers)


async def _peek_body(receive) -> tuple[bytes, Any]:
    """The first non-blank byte of the request body (b"" if none), and a `receive` that still
    yields the whole body: the body is read only as far as that byte."""
    taken: list[dict[str, Any]] = []
    first = b""
    while True:
        message = await receive()
        taken.append(message)
        if message["type"] != "http.request":
            break
        stripped = message.get("body", b"").lstrip()
        if stripped:
            first = stripped[:1]
            break
        if not message.get("more_body", False):
            break

    async def replay() -> dict[str, Any]:
        return taken.pop(0) if taken else await receive()

    return first, replay


def _authenticate(header: str | None) -> Principal | None:
    close_old_connections()
    try:
        token = authenticate_token(parse_bearer(header))
        if token is None:
            return None
        # authenticate_token loaded the profile and department the audit rows read; a user
        # without a profile (created before the signal) has none, which the audit allows.
        return Principal(user=token.user, role_cap=ROLE_LEVEL[token.role], via="mcp")
    finally:
        close_old_connections()


def _allowed_hosts() -> list[str]:
    hosts = []
    for host in settings.ALLOWED_HOSTS:
        if host == "*":
            return ["*"]
        hosts += [host.lstrip("."), f"{host.lstrip('.')}:*"]
    return hosts


class McpHttpApp:
    """/mcp: Bearer auth in front of the SDK's streamable HTTP transport (stateless, JSON).

    Stateless, it has no session to stream server messages on, so only POST is served: a GET
    (which would hold an idle event stream open) or any other method is answered 405 with
    Allow: POST. An MCP-Protocol-Version the SDK does not speak and a JSON-RPC batch (a JSON
    array, which MCP dropped in 2025-06-18) get a short 400 with a JSON-RPC error.
    """

    def __init__(self) -> None:
        self.manager: StreamableHTTPSessionManager | None = None

    def _new_manager(self) -> StreamableHTTPSessionManager:
        hosts = _allowed_hosts()
        security = None
        if hosts != ["*"]:
            security = TransportSecuritySettings(
                enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                allowed_origins=[f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")])
        return StreamableHTTPSessionManager(app=build_server(), stateless=True, json_response=True,
                                            security_settings=security)

    async def __call__(self, scope, receive, send) -> None:
        if scope.get("method") != "POST":
            await _send_rpc_error(send, 405, INVALID_REQUEST, "this MCP endpoint is stateless: send each "
                                  "JSON-RPC request as a POST; it opens no event stream", headers=[(b"allow", b"POST")])
            return
        headers = dict(scope.get("headers") or [])
        header = headers.get(b"authorization", b"").decode("latin-1") or None
        principal = await anyio.to_thread.run_sync(_authenticate, header)
        if principal is None:
            await _send_json(send, 401, {"error": {"code": "UNAUTHORIZED", "message":
                             "send a valid API token as 'Authorization: Bearer <token>'"}},
                             [(b"www-authenticate", b'Bearer realm="axhub"')])
            return
        version = headers.get(b"mcp-protocol-version")
        if version is not None and version.decode("latin-1") not in SUPPORTED_PROTOCOL_VERSIONS:
            requested = version.decode("latin-1")[:100]
            await _send_rpc_error(send, 400, UNSUPPORTED_PROTOCOL_VERSION,
                                  f"unsupported MCP-Protocol-Version {requested!r}; this server speaks "
                                  f"{', '.join(SUPPORTED_PROTOCOL_VERSIONS)}",
                                  {"supported": list(SUPPORTED_PROTOCOL_VERSIONS), "requested": requested})
            return
        first, receive = await _peek_body(receive)
        if first == b"[":
            await _send_rpc_error(send, 400, INVALID_REQUEST, "JSON-RPC batches are not supported: send one "
                                  "request (a JSON object) per POST")
            return
        if self.manager is None:
            await _send_json(send, 503, {"error": {"code": "BACKEND_UNAVAILABLE", "message": "MCP is starting"}})
            return
        token = current_principal.set(principal)
        try:
            await self.manager.handle_request(scope, receive, send)
        finally:
            current_principal.reset(token)

    async def lifespan(self, receive, send) -> None:
        # A session manager runs once; each lifespan (server start) gets a new one.
        async with contextlib.AsyncExitStack() as stack:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        self.manager = self._new_manager()
                        await stack.enter_async_context(self.manager.run())
                    except Exception as exc:
                        await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await stack.aclose()
                    self.manager = None
                    await send({"type": "lifespan.shutdown.complete"})
                    return


# --- stdio -----------------------------------------------------------------------------------


async def serve_stdio(user) -> None:
    from mcp.server.stdio import stdio_server

    current_principal.set(Principal(user=user, role_cap=None, via="mcp-stdio"))
    server = build_server()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
