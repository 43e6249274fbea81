"""MCP: the SDK's own client talks to the hub over streamable HTTP (/mcp) and over stdio.

Every test is transactional: the server answers from other threads (HTTP) or another
process (stdio), which only see committed data.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from django.db import connection
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from core.accounts.models import ApiToken, Profile
from core.accounts.roles import MCP_READ, MCP_WRITE
from core.audit.models import AuditEntry
from core.erp.models import SalesOrder
from core.tools.registry import all_tools
from tests import livehub

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
ORDER = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 2}]}
TIMEOUT = 30

Work = Callable[[Client], Awaitable[Any]]


@pytest.fixture(scope="module")
def hub() -> Iterator[str]:
    with livehub.serve() as url:
        yield f"{url}/mcp"


def token_for(user, role: str) -> str:
    return ApiToken.issue(user, role)[1]


def over_http(url: str, token: str, work: Work) -> Any:
    async def session() -> Any:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                      timeout=httpx2.Timeout(TIMEOUT)) as http:
            async with Client(streamable_http_client(url, http_client=http), read_timeout_seconds=TIMEOUT) as client:
                return await work(client)

    return anyio.run(session)


def payload(result) -> dict:
    """The structured content of a successful call, which the JSON text repeats."""
    assert result.is_error is False, result.content
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def tool_error(result) -> dict:
    """The {code, message} of a call that came back as an MCP tool error."""
    assert result.is_error is True
    assert json.loads(result.content[0].text) == result.structured_content
    error = result.structured_content["error"]
    assert isinstance(error["message"], str) and error["message"]
    return error


def assert_lists_every_tool(listed) -> None:
    by_name = {tool.name: tool for tool in listed.tools}
    registered = all_tools()
    assert sorted(by_name) == [tool.name for tool in registered]
    for tool in registered:
        assert by_name[tool.name].input_schema == tool.input_schema
        assert by_name[tool.name].description.startswith(tool.description)


# --- streamable HTTP -----------------------------------------------------------------------


def test_http_lists_every_registered_tool_with_its_schema(hub, reader):
    assert_lists_every_tool(over_http(hub, token_for(reader, MCP_READ), lambda c: c.list_tools()))


def test_http_read_tool_returns_structured_content_and_json_text(hub, reader, erp):
    result = over_http(hub, token_for(reader, MCP_READ),
                       lambda c: c.call_tool("ax_get_customer", {"customer_account": "CUST-001"}))
    customer = payload(result)
    assert (customer["customer_account"], customer["name"]) == ("CUST-001", "Müller GmbH")
    entry = AuditEntry.objects.get()
    assert (entry.tool, entry.username, entry.via, entry.success) == ("ax_get_customer", "reader", "mcp", True)


def test_http_write_tool_creates_the_order_and_audits_it_as_mcp(hub, writer, erp):
    order = payload(over_http(hub, token_for(writer, MCP_WRITE), lambda c: c.call_tool("ax_create_salesorder", ORDER)))
    assert order["status"] == "open" and order["total_amount"] == 200.0
    assert SalesOrder.objects.get().sales_id == order["sales_id"]
    entry = AuditEntry.objects.get()
    assert (entry.tool, entry.username, entry.department, entry.via, entry.success) == (
        "ax_create_salesorder", "writer", "SALES", "mcp", True)


@pytest.mark.parametrize(("who", "role"), [("reader", MCP_READ), ("writer", MCP_READ)],
                         ids=["reader", "writer-with-read-token"])
def test_http_forbidden_tool_is_a_tool_error(request, hub, erp, who, role):
    # A writer's token issued for MCP_Read caps the writer at reading, as over HTTP.
    user = request.getfixturevalue(who)
    result = over_http(hub, token_for(user, role), lambda c: c.call_tool("ax_create_salesorder", ORDER))
    assert tool_error(result)["code"] == "FORBIDDEN"
    assert not SalesOrder.objects.exists()
    assert AuditEntry.objects.get().error_code == "FORBIDDEN"


def test_http_bad_arguments_are_a_validation_error(hub, writer, erp):
    result = over_http(hub, token_for(writer, MCP_WRITE),
                       lambda c: c.call_tool("ax_create_salesorder", {"customer_account": "CUST-001", "lines": []}))
    error = tool_error(result)
    assert error["code"] == "VALIDATION_ERROR" and error["field"] == "lines"
    assert not SalesOrder.objects.exists()


def test_http_unknown_tool_is_a_tool_error(hub, reader):
    result = over_http(hub, token_for(reader, MCP_READ), lambda c: c.call_tool("ax_no_such_tool", {}))
    assert tool_error(result)["code"] == "TOOL_NOT_FOUND"


def test_http_business_error_keeps_its_code(hub, writer, erp):
    result = over_http(hub, token_for(writer, MCP_WRITE), lambda c: c.call_tool(
        "ax_create_salesorder", {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-002", "quantity": 6}]}))
    assert tool_error(result)["code"] == "INSUFFICIENT_STOCK"


def test_http_idempotency_key_in_meta_replays_the_first_result(hub, writer, erp):
    async def twice(client: Client) -> tuple[Any, Any]:
        meta = {"idempotency_key": "mcp-order-1"}
        first = await client.call_tool("ax_create_salesorder", ORDER, meta=meta)
        second = await client.call_tool("ax_create_salesorder", ORDER, meta=meta)
        return first, second

    first, second = over_http(hub, token_for(writer, MCP_WRITE), twice)
    assert payload(second) == payload(first)
    assert SalesOrder.objects.count() == 1
    assert list(AuditEntry.objects.order_by("id").values_list("idempotency_key", "replayed")) == [
        ("mcp-order-1", False), ("mcp-order-1", True)]


def test_http_calls_count_against_the_rate_limit(settings, hub, reader, erp):
    settings.RATE_LIMIT_PER_MINUTE = 1

    async def twice(client: Client) -> tuple[Any, Any]:
        args = {"customer_account": "CUST-001"}
        return await client.call_tool("ax_get_customer", args), await client.call_tool("ax_get_customer", args)

    first, second = over_http(hub, token_for(reader, MCP_READ), twice)
    payload(first)
    error = tool_error(second)
    assert error["code"] == "RATE_LIMITED" and error["retry_after"] >= 1


def test_http_legacy_initialize_handshake_works_too(hub, reader, erp):
    async def session() -> Any:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
            async with Client(streamable_http_client(hub, http_client=http), mode="legacy") as client:
                return await client.call_tool("ax_get_customer", {"customer_account": "CUST-002"})

    token = token_for(reader, MCP_READ)
    assert payload(anyio.run(session))["customer_account"] == "CUST-002"


@pytest.mark.parametrize("case", ["unknown", "revoked", "missing", "not-bearer"])
def test_http_without_a_valid_token_is_401(hub, reader, case):
    token, raw = ApiToken.issue(reader, MCP_READ)
    if case == "revoked":
        token.revoke()
    headers = {
        "unknown": {"Authorization": "Bearer axh_" + "x" * 43},
        "revoked": {"Authorization": f"Bearer {raw}"},
        "missing": {},
        "not-bearer": {"Authorization": f"Basic {raw}"},
    }[case]
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "ax_get_customer", "arguments": {"customer_account": "CUST-001"}}}
    response = httpx2.post(hub, json=body, timeout=TIMEOUT, headers={
        **headers, "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
    assert not AuditEntry.objects.exists()


def test_http_valid_token_passes_the_same_raw_request(hub, reader, erp):
    # The control for the 401 cases: the very same request with a live token is answered.
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "ax_get_customer", "arguments": {"customer_account": "CUST-001"}}}
    response = httpx2.post(hub, json=body, timeout=TIMEOUT, headers={
        "Authorization": f"Bearer {token_for(reader, MCP_READ)}", "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25"})
    assert response.status_code == 200
    assert response.json()["result"]["structuredContent"]["customer_account"] == "CUST-001"


def test_http_serves_a_user_without_profile(hub, reader, erp):
    # Users created before the profile signal existed have no profile row.
    Profile.objects.filter(user=reader).delete()
    result = over_http(hub, token_for(reader, MCP_READ),
                       lambda c: c.call_tool("ax_get_customer", {"customer_account": "CUST-001"}))
    assert payload(result)["customer_account"] == "CUST-001"
    assert AuditEntry.objects.get().department == ""


def test_http_batch_runs_each_operation_through_the_pipeline_as_mcp(hub, writer, erp):
    requests = [{"tool": "ax_create_salesorder", "arguments": ORDER}, {"tool": "ax_nope", "arguments": {}}]
    result = payload(over_http(hub, token_for(writer, MCP_WRITE),
                               lambda c: c.call_tool("ax_batch_operations", {"requests": requests})))
    assert [r["success"] for r in result["results"]] == [True, False]
    assert result["results"][1]["error"] == "TOOL_NOT_FOUND"
    assert SalesOrder.objects.get().sales_id == result["results"][0]["output"]["sales_id"]
    rows = AuditEntry.objects.filter(batch_id=result["batch_id"])
    assert sorted(rows.values_list("tool", "via")) == [("ax_create_salesorder", "mcp"), ("ax_nope", "mcp")]


# --- stdio -----------------------------------------------------------------------------------


# The subprocess is pointed at the test database by file name.
sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="the stdio server needs a SQLite test database")


def stdio_params(username: str) -> StdioServerParameters:
    env = {"DJANGO_SETTINGS_MODULE": "core.settings", "PATH": os.environ.get("PATH", ""),
           "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}"}
    if "AX_VAR_DIR" in os.environ:  # the same secret key and var/ as this process
        env["AX_VAR_DIR"] = os.environ["AX_VAR_DIR"]
    return StdioServerParameters(command=sys.executable, args=["manage.py", "mcp_stdio", "--user", username],
                                 cwd=str(ROOT), env=env)


def over_stdio(username: str, work: Work) -> Any:
    async def session() -> Any:
        async with Client(stdio_params(username), read_timeout_seconds=TIMEOUT) as client:
            return await work(client)

    return anyio.run(session)


@sqlite_only
def test_stdio_serves_every_tool_as_the_named_user(writer, erp):
    async def work(client: Client) -> tuple[Any, ...]:
        return (await client.list_tools(),
                await client.call_tool("ax_check_inventory", {"item_id": "ITEM-001"}),
                await client.call_tool("ax_create_salesorder", ORDER, meta={"idempotency_key": "stdio-1"}),
                await client.call_tool("ax_create_salesorder", ORDER, meta={"idempotency_key": "stdio-1"}))

    listed, stock, order, replay = over_stdio("writer", work)
    assert_lists_every_tool(listed)
    assert payload(stock)["available"] == 50
    assert payload(replay) == payload(order)
    assert SalesOrder.objects.get().sales_id == payload(order)["sales_id"]
    rows = list(AuditEntry.objects.order_by("id").values_list("tool", "username", "via", "replayed"))
    assert rows == [("ax_check_inventory", "writer", "mcp-stdio", False),
                    ("ax_create_salesorder", "writer", "mcp-stdio", False),
                    ("ax_create_salesorder", "writer", "mcp-stdio", True)]


@sqlite_only
def test_stdio_refuses_a_forbidden_tool_and_bad_arguments(reader, erp):
    async def work(client: Client) -> tuple[Any, Any]:
        return (await client.call_tool("ax_create_salesorder", ORDER),
                await client.call_tool("ax_get_customer", {"customer_account": "CUST-001", "extra": 1}))

    forbidden, invalid = over_stdio("reader", work)
    assert tool_error(forbidden)["code"] == "FORBIDDEN"
    assert tool_error(invalid)["code"] == "VALIDATION_ERROR"
    assert not SalesOrder.objects.exists()
    assert list(AuditEntry.objects.order_by("id").values_list("error_code", "via")) == [
        ("FORBIDDEN", "mcp-stdio"), ("VALIDATION_ERROR", "mcp-stdio")]


