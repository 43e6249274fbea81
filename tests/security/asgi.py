"""Requests to /mcp through the hub's ASGI application, in this process, from any address."""

from __future__ import annotations

import anyio
import httpx2

MCP_BODY = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


def mcp(address: str, authorization: str | None = None, *, base_url: str = "http://127.0.0.1",
        headers: dict[str, str] | None = None) -> httpx2.Response:
    """One POST to /mcp from `address`. No lifespan runs, so a request that passes the guard and
    authenticates is answered 503 "MCP is starting" by the MCP app: enough to tell it got past."""
    from core.asgi import application

    async def post() -> httpx2.Response:
        transport = httpx2.ASGITransport(app=application, client=(address, 40000))
        sent = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25",
                **(headers or {})}
        if authorization:
            sent["Authorization"] = authorization
        async with httpx2.AsyncClient(transport=transport, base_url=base_url) as http:
            return await http.post("/mcp", json=MCP_BODY, headers=sent)

    return anyio.run(post)
