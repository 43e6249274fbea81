"""The door of /api/ and /mcp: an address that keeps presenting bad credentials is turned away.

Both ways in authenticate with a Bearer token (core.accounts.auth). A request that carried an
Authorization header and was answered 401 counts as a failure of its address
(core.accounts.throttle); once the address is over API_AUTH_FAILURE_LIMIT in the current
window, every request of it is answered 429 RATE_LIMITED with Retry-After before any token is
looked up. Counting the answer rather than the lookup keeps the views and the MCP app as they
are, and the address (which only the transport knows) where it is known.

/mcp is an ASGI app beside Django (core.asgi), so it gets the same guard as an ASGI wrapper,
which also adds the X-Content-Type-Options header that Django's SecurityMiddleware gives /api/.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import anyio
from django.http import HttpRequest, HttpResponse

from core.accounts import throttle
from core.errors import ToolError

API_PREFIX = "/api/"


def _refusal(retry_after: int) -> bytes:
    error = ToolError("RATE_LIMITED", f"too many failed authentications from your address; retry in "
                                      f"{retry_after} s", retry_after=retry_after)
    return json.dumps({"error": error.as_dict()}).encode()


class TokenGuardMiddleware:
    """/api/: refuse an address over the failure limit; count 401s to requests with credentials."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        address = throttle.client_address(request)
        wait = throttle.retry_after(address)
        if wait is not None:
            return HttpResponse(_refusal(wait), status=429, content_type="application/json",
                                headers={"Retry-After": str(wait)})
        response = self.get_response(request)
        if response.status_code == 401 and "HTTP_AUTHORIZATION" in request.META:
            throttle.record_failure(address)
        return response


class McpGuard:
    """The same for the MCP app (ASGI), plus X-Content-Type-Options: nosniff on every answer."""

    def __init__(self, app) -> None:
        self.app = app

    async def lifespan(self, receive, send) -> None:
        await self.app.lifespan(receive, send)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else None
        # The cache may be Redis: its calls block, so they run on a worker thread.
        wait = await anyio.to_thread.run_sync(throttle.retry_after, address)
        if wait is not None:
            body = _refusal(wait)
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(wait).encode()), (b"x-content-type-options", b"nosniff")]})
            await send({"type": "http.response.body", "body": body})
            return
        credentials = any(name.lower() == b"authorization" for name, _ in scope.get("headers") or ())
        status = 0

        async def guarded_send(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers") or ())
                if not any(name.lower() == b"x-content-type-options" for name, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, guarded_send)
        if status == 401 and credentials:
            await anyio.to_thread.run_sync(throttle.record_failure, address)
