"""MCP resources and prompts, through the SDK's own client over streamable HTTP and stdio.

Transactional, as tests/api/test_mcp.py: the server answers from other threads (HTTP) or another
process (stdio), which see committed data only.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from django.db import connection
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from core.accounts.models import ApiToken
from core.accounts.roles import MCP_READ
from core.api import mcp_prompts
from core.audit.models import AuditEntry
from core.erp import services
from tests import livehub

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30
TEMPLATES = {"ax://customers/{customer_account}", "ax://salesorders/{sales_id}", "ax://items/{item_id}",
             "ax://invoices/{invoice_id}"}
INVALID_PARAMS = -32602

Work = Callable[[Client], Awaitable[Any]]


@pytest.fixture(scope="module")
def hub() -> Iterator[str]:
    with livehub.serve() as url:
        yield f"{url}/mcp"


def over_http(url: str, user, work: Work, role: str = MCP_READ) -> Any:
    token = ApiToken.issue(user, role)[1]

    async def session() -> Any:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                      timeout=httpx2.Timeout(TIMEOUT)) as http:
            async with Client(streamable_http_client(url, http_client=http), read_timeout_seconds=TIMEOUT) as client:
                return await work(client)

    return anyio.run(session)


sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="the stdio server needs a SQLite test database")


def over_stdio(username: str, work: Work) -> Any:
    env = {"DJANGO_SETTINGS_MODULE": "core.settings", "PATH": os.environ.get("PATH", ""),
           "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}"}
    if "AX_VAR_DIR" in os.environ:
        env["AX_VAR_DIR"] = os.environ["AX_VAR_DIR"]
    params = StdioServerParameters(command=sys.executable, args=["manage.py", "mcp_stdio", "--user", username],
                                   cwd=str(ROOT), env=env)

    async def session() -> Any:
        async with Client(params, read_timeout_seconds=TIMEOUT) as client:
            return await work(client)

    return anyio.run(session)


async def caught(call: Awaitable[Any]) -> MCPError | Any:
    try:
        return await call
    except MCPError as error:
        return error


def content(result) -> dict:
    (only,) = result.contents
    assert only.mime_type == "application/json"
    return json.loads(only.text)


@pytest.fixture
def invoiced(erp) -> dict[str, str]:
    order = services.create_sales_order("CUST-001", [{"item_id": "ITEM-001", "quantity": 2}])
    return {"sales_id": order.sales_id, "invoice_id": services.create_invoice(order.sales_id).invoice_id}


async def read_everything(client: Client, ids: dict[str, str]) -> dict[str, Any]:
    return {
        "templates": await client.list_resource_templates(),
        "customer": await client.read_resource("ax://customers/CUST-001"),
        "order": await client.read_resource(f"ax://salesorders/{ids['sales_id']}"),
        "item": await client.read_resource("ax://items/ITEM-001"),
        "invoice": await client.read_resource(f"ax://invoices/{ids['invoice_id']}"),
        "missing": await caught(client.read_resource("ax://customers/CUST-404")),
        "unknown_kind": await caught(client.read_resource("ax://planets/earth")),
    }


def check_everything(got: dict[str, Any], ids: dict[str, str]) -> None:
    templates = got["templates"].resource_templates
    assert {t.uri_template for t in templates} == TEMPLATES
    assert {t.mime_type for t in templates} == {"application/json"}
    assert content(got["customer"])["name"] == "Müller GmbH"
    assert content(got["order"])["total_amount"] == 200.0
    assert content(got["item"])["reserved"] == 0 and content(got["item"])["on_hand"] == 48
    assert content(got["invoice"])["open_amount"] == 200.0
    for name in ("missing", "unknown_kind"):
        error = got[name]
        assert isinstance(error, MCPError), name
        assert error.error.code == INVALID_PARAMS
    assert got["missing"].error.data["uri"] == "ax://customers/CUST-404"
    assert got["missing"].error.data["code"] == "CUST_NOT_FOUND"


def test_http_lists_templates_and_reads_each_record_as_the_caller(hub, reader, invoiced):
    check_everything(over_http(hub, reader, lambda c: read_everything(c, invoiced)), invoiced)
    # Each read is a call of the matching tool, audited as the reader over MCP.
    rows = list(AuditEntry.objects.order_by("id").values_list("tool", "username", "via", "error_code"))
    assert rows == [("ax_get_customer", "reader", "mcp", ""), ("ax_get_salesorder", "reader", "mcp", ""),
                    ("ax_check_inventory", "reader", "mcp", ""), ("ax_get_invoice", "reader", "mcp", ""),
                    ("ax_get_customer", "reader", "mcp", "CUST_NOT_FOUND")]


def test_http_a_user_without_a_read_role_cannot_read_a_resource(hub, stakeholder, erp):
    error = over_http(hub, stakeholder, lambda c: caught(c.read_resource("ax://customers/CUST-001")))
    assert isinstance(error, MCPError)
    assert error.error.data["code"] == "FORBIDDEN"
    assert AuditEntry.objects.get().error_code == "FORBIDDEN"


def test_http_an_id_with_a_slash_is_read_percent_encoded(hub, reader, erp):
    services.create_customer(customer_account="AB/12", name="Slash AG", currency="EUR")
    result = over_http(hub, reader, lambda c: c.read_resource("ax://customers/AB%2F12"))
    assert content(result)["customer_account"] == "AB/12"


async def prompt_work(client: Client) -> dict[str, Any]:
    return {
        "listed": await client.list_prompts(),
        "order": await client.get_prompt("take_order_from_email", {
            "email": "From: einkauf@mueller.test\nPlease send 3 chairs {urgent}. PO 4711"}),
        "chase": await client.get_prompt("chase_overdue_invoices", {"customer_account": "CUST-001"}),
        "unknown": await caught(client.get_prompt("no_such_prompt")),
        "missing_argument": await caught(client.get_prompt("take_order_from_email", {})),
    }


def check_prompts(got: dict[str, Any]) -> None:
    listed = {p.name: p for p in got["listed"].prompts}
    assert set(listed) == {"take_order_from_email", "chase_overdue_invoices", "reorder_check"}
    order_args = {a.name: a.required for a in listed["take_order_from_email"].arguments}
    assert order_args == {"email": True, "customer_account": False}
    for prompt in mcp_prompts.PROMPTS.values():
        assert all(tool in listed[prompt.name].description for tool in prompt.tools)
    (message,) = got["order"].messages
    assert message.role == "user"
    assert "PO 4711" in message.content.text and "{urgent}" in message.content.text
    assert "ax_find_customers" in message.content.text and "ax_create_salesorder" in message.content.text
    assert '"overdue": true' in got["chase"].messages[0].content.text
    assert "CUST-001" in got["chase"].messages[0].content.text
    for name in ("unknown", "missing_argument"):
        assert isinstance(got[name], MCPError), name
        assert got[name].error.code == INVALID_PARAMS


def test_http_lists_and_gets_prompts(hub, reader):
    check_prompts(over_http(hub, reader, prompt_work))


def test_every_tool_a_prompt_names_exists():
    from core.tools.registry import find_tool

    for prompt in mcp_prompts.PROMPTS.values():
        assert [t for t in prompt.tools if find_tool(t) is None] == [], prompt.name
        assert all(re.search(rf"\b{t}\b", prompt.text) for t in prompt.tools), prompt.name


@sqlite_only
def test_stdio_serves_resources_and_prompts_as_the_named_user(reader, invoiced):
    async def work(client: Client) -> tuple[dict[str, Any], dict[str, Any]]:
        return await read_everything(client, invoiced), await prompt_work(client)

    resources, prompts = over_stdio("reader", work)
    check_everything(resources, invoiced)
    check_prompts(prompts)
    assert set(AuditEntry.objects.values_list("via", flat=True)) == {"mcp-stdio"}
    assert AuditEntry.objects.filter(username="reader").count() == 5
