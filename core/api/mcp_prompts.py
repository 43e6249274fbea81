"""MCP prompts: how an agent uses the hub well for the jobs a sales clerk hands it.

Each prompt names the tools it needs, in the order that avoids the common mistakes: find the
customer before ordering, check stock and credit before writing, page with next_cursor, send
an idempotency key with every write.
"""

from __future__ import annotations

from dataclasses import dataclass

import mcp.types as types
from mcp import MCPError
from mcp_types import INVALID_PARAMS


@dataclass(frozen=True)
class Argument:
    name: str
    description: str
    required: bool = False


@dataclass(frozen=True)
class Prompt:
    name: str
    title: str
    description: str
    arguments: tuple[Argument, ...]
    tools: tuple[str, ...]
    text: str  # str.format()ed with the arguments; a missing optional one is "(not given)"


PROMPTS = {p.name: p for p in [
    Prompt(
        "take_order_from_email", "Take an order from an e-mail",
        "Turn a customer's e-mail into a sales order: find the customer and the items, check credit and "
        "stock, create the order once, and answer with its sales id.",
        (Argument("email", "the e-mail's text, sender included", required=True),
         Argument("customer_account", "the customer's account, if already known")),
        ("ax_find_customers", "ax_get_customer_balance", "ax_list_items", "ax_check_inventory",
         "ax_create_salesorder", "ax_get_salesorder"),
        """Take the order in this e-mail into the ERP hub.

E-mail:
---
{email}
---
Customer account given: {customer_account}

1. Customer. Unless an account is given, call ax_find_customers {{"query": "<company name or account from
   the e-mail>"}}; the best match comes first. Several plausible matches: ask, do not guess.
2. Credit. Call ax_get_customer_balance {{"customer_account": ...}}. If "blocked" is true, stop and say so.
   credit_available (null means no limit) must cover the order's total.
3. Items. For each product named, call ax_list_items {{"query": "<name or item number>"}} and take its
   item_id; check "available" (on hand minus reserved) covers the quantity, or ax_check_inventory
   {{"item_ids": [...]}} for several at once.
4. Order. Call ax_create_salesorder {{"customer_account": ..., "lines": [{{"item_id": ..., "quantity": ...}}],
   "customer_ref": "<the customer's PO number, if any>"}} with an idempotency key made from the e-mail
   (e.g. its Message-ID), so a retry never makes a second order. Leave unit_price out: the item's price
   applies in the customer's currency.
5. Errors keep their code: INSUFFICIENT_STOCK (details has the figures), CREDIT_LIMIT_EXCEEDED,
   CUST_BLOCKED. Report them; do not work around them.
6. Answer with the sales_id, total_amount and currency, and the lines as created; ax_get_salesorder
   {{"sales_id": ...}} reads the order back later."""),
    Prompt(
        "chase_overdue_invoices", "Chase overdue invoices",
        "List a customer's (or every customer's) overdue invoices with what is still open, check for payments "
        "not yet matched, and draft a friendly reminder per customer.",
        (Argument("customer_account", "one customer's account; leave out for every customer"),),
        ("ax_list_invoices", "ax_get_invoice", "ax_list_payments", "ax_get_customer_balance"),
        """Chase the overdue invoices. Customer account: {customer_account}

1. Call ax_list_invoices {{"overdue": true, "customer_account": ... (only if given), "limit": 100}}. While
   next_cursor is not null, call again with the same filters and "cursor": next_cursor.
2. Per customer, call ax_get_customer_balance {{"customer_account": ...}}: balance, overdue_count and
   overdue_amount, credit left.
3. Before chasing, call ax_list_payments {{"customer_account": ..., "date_from": "<the oldest due_date>"}}:
   a payment without an invoice_id may already cover an invoice; mention it rather than chase it.
4. For any invoice in doubt, ax_get_invoice {{"invoice_id": ...}} shows its lines and the payments on it.
5. Draft one reminder per customer: each invoice_id, due_date, open_amount and currency, and the total
   overdue. Amounts are exact to the cent; do not round them. Send nothing yourself."""),
    Prompt(
        "reorder_check", "Which items to reorder",
        "Find the items whose available stock is below the reorder point and what open orders hold them.",
        (),
        ("ax_list_items", "ax_list_salesorders"),
        """Find what needs reordering.

1. Call ax_list_items {{"below_reorder_point": true, "limit": 200}}, following next_cursor to the end.
2. For each item: on_hand, reserved (held by open and confirmed orders), available and reorder_point.
   Suggest ordering at least reorder_point - available.
3. To see which orders hold the stock, ax_list_salesorders {{"status": ["open", "confirmed"]}} lists the
   open orders, newest first; the dashboard's item page lists them per item.
4. Answer with a table: item_id, name, available, reorder_point, suggested quantity."""),
]}


def listed() -> list[types.Prompt]:
    return [types.Prompt(name=p.name, title=p.title, description=f"{p.description} Tools: {', '.join(p.tools)}.",
                         arguments=[types.PromptArgument(name=a.name, description=a.description, required=a.required)
                                    for a in p.arguments])
            for p in PROMPTS.values()]


def get(name: str, arguments: dict[str, str] | None) -> types.GetPromptResult:
    prompt = PROMPTS.get(name)
    if prompt is None:
        raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {name[:100]}; prompts/list names them")
    given = {k: v for k, v in (arguments or {}).items() if isinstance(v, str) and v.strip()}
    known = {a.name for a in prompt.arguments}
    unknown = sorted(set(given) - known)
    if unknown:
        raise MCPError(code=INVALID_PARAMS, message=f"prompt {name} has no argument {unknown[0][:100]!r}")
    missing = [a.name for a in prompt.arguments if a.required and a.name not in given]
    if missing:
        raise MCPError(code=INVALID_PARAMS, message=f"prompt {name} needs the argument {missing[0]!r}")
    values = {a.name: given.get(a.name, "(not given)") for a in prompt.arguments}
    return types.GetPromptResult(description=prompt.description, messages=[
        types.PromptMessage(role="user", content=types.TextContent(text=prompt.text.format(**values)))])
