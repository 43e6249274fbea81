"""MCP resources: the hub's records by URI, for agents that attach a record to their context.

Four templates, ax://customers/{customer_account}, ax://salesorders/{sales_id},
ax://items/{item_id} and ax://invoices/{invoice_id}. Reading one is a call of the matching read
tool through core.tools.pipeline.call_tool as the caller, so the role check, rate limit and
audit row are those of the tool. A record that does not exist is the SDK's missing-resource
error (INVALID_PARAMS, -32602, with the URI in `data`, as MCPServer answers ResourceNotFoundError).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import mcp.types as types
from mcp import MCPError
from mcp_types import INVALID_PARAMS, INVALID_REQUEST

from core.errors import ToolError
from core.tools import jsonio

JSON = "application/json"
SCHEME = "ax://"
# kind -> (the URI's variable, the tool that reads it, what the template is).
KINDS = {
    "customers": ("customer_account", "ax_get_customer", "A customer: account, name, currency, credit limit, "
                                                         "balance, blocked."),
    "salesorders": ("sales_id", "ax_get_salesorder", "A sales order with its lines, total and status."),
    "items": ("item_id", "ax_check_inventory", "An item with its price and stock: on hand, reserved, available, "
                                               "reorder point."),
    "invoices": ("invoice_id", "ax_get_invoice", "An invoice with its open amount, due date, the order's lines "
                                                 "and the payments on it."),
}

# Runs a tool as the caller: (tool, arguments) -> output, raising ToolError.
RunTool = Callable[[str, dict[str, Any]], dict[str, Any]]


def templates() -> list[types.ResourceTemplate]:
    return [types.ResourceTemplate(name=kind[:-1], title=f"{kind[:-1].capitalize()} by {variable}",
                                   uri_template=f"{SCHEME}{kind}/{{{variable}}}", description=description,
                                   mime_type=JSON)
            for kind, (variable, _tool, description) in KINDS.items()]


def _missing(uri: str, message: str, code: str | None = None) -> MCPError:
    data = {"uri": uri, **({"code": code} if code else {})}
    return MCPError(code=INVALID_PARAMS, message=message, data=data)


def parse(uri: str) -> tuple[str, dict[str, Any]]:
    """The tool and arguments that read `uri`, or the missing-resource error. The id is
    percent-decoded, as RFC 6570 expansion encodes a '/' in it."""
    kind, _, raw_id = uri.removeprefix(SCHEME).partition("/") if uri.startswith(SCHEME) else ("", "", "")
    if kind not in KINDS or not raw_id:
        raise _missing(uri, f"Unknown resource: {uri[:200]}; resources/templates/list names the hub's URIs")
    variable, tool, _description = KINDS[kind]
    return tool, {variable: unquote(raw_id)}


def read(uri: str, run: RunTool) -> types.ReadResourceResult:
    tool, arguments = parse(uri)
    try:
        output = run(tool, arguments)
    except ToolError as error:
        if error.code.endswith("_NOT_FOUND") or error.code == "VALIDATION_ERROR":
            raise _missing(uri, f"Unknown resource: {error.message}", error.code) from None
        # Refused for the caller (FORBIDDEN, RATE_LIMITED, …): the tool's code says why.
        raise MCPError(code=INVALID_REQUEST, message=error.message,
                       data={"uri": uri, **error.as_dict()}) from None
    return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, mime_type=JSON,
                                                                         text=jsonio.dumps(output))])
