"""MCP: tools/list carries each tool's outputSchema, and structuredContent fits it.

The SDK's client itself checks every successful result against the listed outputSchema (and
raises if it does not fit); the test checks again with jsonschema, so a client that trusts the
schema can rely on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import anyio
import httpx2
import pytest
from jsonschema import Draft202012Validator
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from core.accounts.models import ApiToken
from core.accounts.roles import MCP_ADMIN
from core.tools.registry import all_tools, get_tool
from tests import livehub

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 30


@pytest.fixture(scope="module")
def hub() -> Iterator[str]:
    with livehub.serve() as url:
        yield f"{url}/mcp"


def run(hub: str, user, work, mode: str = "auto"):
    token = ApiToken.issue(user, MCP_ADMIN)[1]

    async def session():
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                      timeout=httpx2.Timeout(TIMEOUT)) as http:
            async with Client(streamable_http_client(hub, http_client=http), mode=mode,
                              read_timeout_seconds=TIMEOUT) as client:
                return await work(client)

    return anyio.run(session)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_tools_list_carries_every_output_schema(hub, admin, mode):
    async def work(client):
        return await client.list_tools()

    listed = {tool.name: tool for tool in run(hub, admin, work, mode).tools}
    assert sorted(listed) == [tool.name for tool in all_tools()]
    for tool in all_tools():
        assert listed[tool.name].output_schema == tool.output_schema, tool.name


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_structured_content_fits_the_output_schema(hub, admin, erp, mode):
    today = date.today().isoformat()
    calls = [
        ("ax_get_customer", {"customer_account": "CUST-001"}),
        ("ax_check_inventory", {"item_ids": ["ITEM-001", "ITEM-003"]}),
        ("ax_create_salesorder", {"customer_account": "CUST-002", "lines": [
            {"item_id": "ITEM-001", "quantity": 2, "unit_price": 19.99}]}),
        ("ax_post_payment", {"customer_account": "CUST-002", "amount": 0.07}),
        ("ax_batch_operations", {"requests": [{"tool": "ax_get_customer",
                                               "arguments": {"customer_account": "CUST-001"}}]}),
        ("ax_list_events", {"event_type": "salesorder.*"}),
        ("ax_get_roi_metrics", {"date_from": today, "date_to": today, "group_by": "week"}),
    ]

    async def work(client):
        await client.list_tools()
        return [await client.call_tool(name, arguments) for name, arguments in calls]

    results = run(hub, admin, work, mode)
    for (name, _), result in zip(calls, results, strict=True):
        assert result.is_error is False, (name, result.content)
        errors = list(Draft202012Validator(get_tool(name).output_schema).iter_errors(result.structured_content))
        assert errors == [], name
    assert results[3].structured_content["amount"] == 0.07
