"""/mcp over raw HTTP: what the stateless transport answers to requests it does not serve.

GET (an idle event stream in stateful servers), an unsupported MCP-Protocol-Version and a
JSON-RPC batch each get a short, clear answer at once; the SDK's own client keeps working in
both of its modes.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import SUPPORTED_PROTOCOL_VERSIONS

from core.accounts.models import ApiToken
from core.accounts.roles import MCP_READ
from core.audit.models import AuditEntry
from tests import livehub

pytestmark = pytest.mark.django_db(transaction=True)

# Short: a GET held open as an event stream would run into it.
TIMEOUT = 5
CALL = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "ax_get_customer", "arguments": {"customer_account": "CUST-001"}}}


@pytest.fixture(scope="module")
def hub() -> Iterator[str]:
    with livehub.serve() as url:
        yield f"{url}/mcp"


@pytest.fixture
def headers(reader) -> dict[str, str]:
    return {"Authorization": f"Bearer {ApiToken.issue(reader, MCP_READ)[1]}",
            "Accept": "application/json, text/event-stream"}


def rpc_error(response, status: int) -> dict:
    """The JSON-RPC error object of a refused request, checked for a short, clear message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["jsonrpc"], body["id"]) == ("2.0", None)
    assert 0 < len(body["error"]["message"]) < 200
    return body["error"]


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT", "PATCH"])
@pytest.mark.parametrize("authorized", [True, False], ids=["token", "no-token"])
def test_any_method_but_post_is_405_with_allow_post_at_once(hub, headers, method, authorized):
    sent = {**headers, "Accept": "text/event-stream"} if authorized else {"Accept": "text/event-stream"}
    response = httpx2.request(method, hub, headers=sent, timeout=TIMEOUT)
    assert response.headers["allow"] == "POST"
    assert rpc_error(response, 405)["code"] == -32600


def test_unsupported_protocol_version_is_a_short_400(hub, headers, erp):
    response = httpx2.post(hub, json=CALL, timeout=TIMEOUT, headers={**headers, "MCP-Protocol-Version": "1999-01-01"})
    error = rpc_error(response, 400)
    assert error["code"] == -32022  # UNSUPPORTED_PROTOCOL_VERSION, which the SDK's client negotiates on
    assert "1999-01-01" in error["message"]
    assert error["data"] == {"supported": list(SUPPORTED_PROTOCOL_VERSIONS), "requested": "1999-01-01"}
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25"])
def test_a_supported_protocol_version_is_served(hub, headers, erp, version):
    response = httpx2.post(hub, json=CALL, timeout=TIMEOUT, headers={**headers, "MCP-Protocol-Version": version})
    assert response.status_code == 200
    assert response.json()["result"]["structuredContent"]["customer_account"] == "CUST-001"


@pytest.mark.parametrize("body", [b"[]", b'  \n[{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]'],
                         ids=["empty", "one-request"])
@pytest.mark.parametrize("version", [None, "2025-11-25"])
def test_a_json_rpc_batch_is_a_short_400(hub, headers, erp, body, version):
    sent = {**headers, "Content-Type": "application/json"}
    if version:
        sent["MCP-Protocol-Version"] = version
    response = httpx2.post(hub, content=body, timeout=TIMEOUT, headers=sent)
    error = rpc_error(response, 400)
    assert error["code"] == -32600 and "batch" in error["message"]
    assert not AuditEntry.objects.exists()


def test_a_body_in_many_chunks_still_reaches_the_server(hub, headers, erp):
    # The batch check reads only up to the first non-blank byte and hands the rest on intact.
    def chunks() -> Iterator[bytes]:
        yield b"   "
        yield b'{"jsonrpc": "2.0", "id": 3, '
        yield b'"method": "tools/call", "params": {"name": "ax_get_customer", '
        yield b'"arguments": {"customer_account": "CUST-002"}}}'

    response = httpx2.post(hub, content=chunks(), timeout=TIMEOUT, headers={
        **headers, "Content-Type": "application/json", "MCP-Protocol-Version": "2025-11-25"})
    assert response.status_code == 200, response.text
    assert response.json()["result"]["structuredContent"]["customer_account"] == "CUST-002"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_the_sdk_client_works_in_either_mode(hub, headers, erp, mode):
    async def session():
        async with httpx2.AsyncClient(headers={"Authorization": headers["Authorization"]}) as http:
            async with Client(streamable_http_client(hub, http_client=http), mode=mode,
                              read_timeout_seconds=30) as client:
                listed = await client.list_tools()
                return listed, await client.call_tool("ax_get_customer", {"customer_account": "CUST-001"})

    listed, result = anyio.run(session)
    assert listed.tools and result.is_error is False
    assert result.structured_content["customer_account"] == "CUST-001"
