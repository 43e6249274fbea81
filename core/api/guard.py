"""The door of /api/ and /mcp: an address that keeps presenting bad credentials is turned away.

Both ways in authenticate with a Bearer token (core.accounts.auth). A request that carried an
Authorization header and was answered 401 counts as a failure of its address
(core.accounts.throttle); once the address is over API_AUTH_FAILURE_LIMIT in the current
window, every request of it is answered 429 RATE_LIMITED with Retry-After before any token is
looked up. Counting the answer rather than the lookup keeps the views and the MCP app as they
are, and the address (which only the transport knows) where it is known.

/mcp is an ASGI app beside Django (core.asgi), so it gets the same guard as an ASGI wrapper,
which also does for it what Django's SecurityMiddleware does for /api/: X-Content-Type-Options,
and with HTTPS on (README "Security") the redirect of plain HTTP and the HSTS header.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import anyio
from django.conf import settings
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


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _is_secure(scope) -> bool:
    """As Django's request.is_secure(): the scheme, or the proxy's header when trusted."""
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, expected = settings.SECURE_PROXY_SSL_HEADER
        value = _header(scope, meta_name.removeprefix("HTTP_").replace("_", "-").lower().encode())
        if value is not None:
            return value.split(",", 1)[0].strip() == expected
    return scope.get("scheme") == "https"


def _security_headers(secure: bool) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-content-type-options", b"nosniff")]
    if secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers.append((b"strict-transport-security", hsts.encode()))
    return headers


async def _answer(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class McpGuard:
    """The same for the MCP app (ASGI), plus the headers SecurityMiddleware adds for Django."""

    def __init__(self, app) -> None:
        self.app = app

    async def lifespan(self, receive, send) -> None:
        await self.app.lifespan(receive, send)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure = _is_secure(scope)
        extra = _security_headers(secure)
        if settings.SECURE_SSL_REDIRECT and not secure:
            host = _header(scope, b"host") or "localhost"
            location = f"https://{host}{scope.get('root_path', '')}{scope['path']}"
            await _answer(send, 301, b"", [(b"location", location.encode("latin-1")), *extra])
            return
        client = scope.get("client")
        address = client[0] if client else None
        # The cache may be Redis: its calls block, so they run on a worker thread.
        wait = await anyio.to_thread.run_sync(throttle.retry_after, address)
        if wait is not None:
            await _answer(send, 429, _refusal(wait), [(b"retry-after", str(wait).encode()), *extra])
            return
        credentials = _header(scope, b"authorization") is not None
        status = 0

        async def guarded_send(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers") or ())
                present = {name.lower() for name, _ in headers}
                message = {**message, "headers": headers + [h for h in extra if h[0] not in present]}
            await send(message)

        await self.app(scope, receive, guarded_send)
        if status == 401 and credentials:
            await anyio.to_thread.run_sync(throttle.record_failure, address)
