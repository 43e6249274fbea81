"""Ninety days of plausible history for the demo, made through the hub's own tools.

Every operation is a real `call_tool` (audited, priced for ROI, publishing events) by the
users and integrations that would make it, through the way in they would use: the webshop
over HTTP, an AI assistant over MCP, accounting's system over HTTP (payments as a batch),
people in the dashboard, the admin on the command line. Two imports run through the import
engine, and the events go to four webhook subscriptions (core/ops/demo_webhooks.py). Each
operation runs at its moment in the past (core.ops.demo.hub_time), so every timestamp, also
inside event data, due dates and webhook attempts, is where it would be.

The history is made once: it belongs to the integration accounts it creates (webshop,
assistant, accounting), so where they exist it is there. A fixed seed makes the same
history each time, relative to the day it is made.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.accounts.roles import MCP_WRITE
from core.accounts.services import create_user
from core.audit.models import AuditEntry
from core.erp.models import Customer, Item
from core.errors import ToolError
from core.events import bus
from core.imports.models import ImportJob
from core.imports.tasks import run_import
from core.ops.demo import ITEMS, hub_time
from core.ops.demo_webhooks import PAUSED_NOTE, SUBSCRIPTIONS, Outage, Receivers
from core.roi import rollup
from core.tools.models import BatchRun
from core.tools.pipeline import call_tool

HISTORY_DAYS = 90
SEED = 4711
# Tools that publish no event: no fan-out to look for after them.
READS = frozenset({"ax_get_customer", "ax_get_salesorder", "ax_check_inventory"})
INTEGRATIONS = [("webshop", "SALES"), ("assistant", "SALES"), ("accounting", "FIN")]  # all MCP_Write
IMPORT_CUSTOMERS_DAY, IMPORT_ITEMS_DAY, OUTAGE_DAY = 15, 50, 69  # days after the first
NEW_CUSTOMERS = [
    # customer_account, name, currency, credit_limit, segment; imported on IMPORT_CUSTOMERS_DAY
    ("CUST-006", "Alpine Ski House AG", "CHF", "30000.00", "retail"),
    ("CUST-007", "Northwind Traders Ltd", "GBP", "40000.00", "wholesale"),
    ("CUST-008", "Tailspin Toys GmbH", "EUR", "15000.00", "retail"),
    ("CUST-009", "Wide World Importers BV", "EUR", "60000.00", "wholesale"),
    ("CUST-010", "Coho Winery SARL", "EUR", "0.00", "retail"),
    ("CUST-011", "Lucerne Publishing AG", "CHF", "20000.00", "wholesale"),
    ("CUST-012", "Adventure Works Cycles Inc", "USD", "35000.00", "webshop"),
    ("CUST-013", "Fourth Coffee Oy", "EUR", "10000.00", "retail"),
    ("CUST-014", "Graphic Design Institute AB", "SEK", "150000.00", "webshop"),
    ("CUST-015", "Litware Inc", "USD", "0.00", "webshop"),
]
# Rows the import refuses, as real files have them: a currency that is no code, a repeated key.
BAD_CUSTOMER_ROWS = [("CUST-016", "Proseware GmbH", "EURO", "5000.00", "retail"),
                     ("CUST-008", "Tailspin Toys GmbH", "EUR", "15000.00", "retail")]
PRICE_LIST = [
    # item_id, name, unit_price, on_hand, reorder_point; imported (upsert) on IMPORT_ITEMS_DAY
    ("ITEM-001", "Office chair ergonomic", "154.00", "", ""),
    ("ITEM-003", "Monitor arm dual", "92.50", "", ""),
    ("ITEM-007", "Footrest adjustable", "34.90", 200, 30),
    ("ITEM-008", "Acoustic panel 120x60", "89.00", 150, 20),
    ("ITEM-009", "Laptop stand aluminium", "45.00", 250, 40),
    ("ITEM-010", "Meeting table 240x110", "890.00", 25, 5),
]
# Units per order line: (least, most).
QUANTITIES = {"ITEM-001": (1, 6), "ITEM-002": (1, 2), "ITEM-003": (1, 4), "ITEM-004": (5, 30), "ITEM-005": (1, 5),
              "ITEM-006": (1, 1), "ITEM-007": (1, 8), "ITEM-008": (2, 6), "ITEM-009": (1, 5), "ITEM-010": (1, 1)}


@dataclass
class Invoice:
    invoice_id: str
    account: str
    open: Decimal
    pay_on: date | None  # None: never paid (overdue in the demo)
    split: bool  # paid in two parts


@dataclass
class History:
    start: datetime  # midnight UTC of the first day
    end: datetime  # the history stops here (just before the command runs)
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))
    users: dict = field(default_factory=dict)
    customers: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    open_orders: list[str] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    subscriptions: dict[str, str] = field(default_factory=dict)  # key -> subscription_id
    receivers: Receivers | None = None
    refs: int = 10_000

    # --- the calls

    def call(self, at: datetime, who: str, tool: str, arguments: dict, via: str, key: str | None = None):
        """One tool call at `at`, as `who`; its output, or None when the hub refused it."""
        if self.receivers:
            self.receivers.dispatch(at)
        with hub_time(at):
            try:
                output = call_tool(tool, arguments, self.users[who], idempotency_key=key, via=via, count_rate=False)
            except ToolError:
                output = None
            bus.drain()  # the fan-out of its events (a background thread in the hub) at its moment too
        if self.receivers and tool not in READS:
            self.receivers.after_call(at)
            if tool == "ax_retry_webhook_delivery":
                self.receivers.expect(at)
        return output

    def run(self, departments: dict) -> None:
        for username, dept in INTEGRATIONS:
            create_user(username, MCP_WRITE, department=departments[dept])
        self.users = {u.username: u for u in get_user_model().objects.filter(
            username__in=["admin", "writer", "reader", *(name for name, _ in INTEGRATIONS)])}
        self.customers = [c for c in ("CUST-001", "CUST-002", "CUST-003", "CUST-004", "CUST-005")
                          if Customer.objects.filter(customer_account=c, blocked=False).exists()]
        self.items = [item_id for item_id, *_ in ITEMS if Item.objects.filter(item_id=item_id).exists()]
        outage_day = self.start + timedelta(days=OUTAGE_DAY)
        outage = Outage(outage_day + timedelta(hours=13), outage_day + timedelta(hours=15, minutes=30))
        self._subscribe(self.start + timedelta(hours=8, minutes=40))
        self.receivers = Receivers(self.rng, self.subscriptions, outage)
        for n in range(HISTORY_DAYS + 1):
            for at, action in sorted(self._plan(n), key=lambda pair: pair[0]):
                if at < self.end:
                    action(at)
        self.receivers.dispatch(self.end)
        # The demo sends nothing anywhere: its subscriptions wait, paused, for a real receiver.
        for key, _, _, description in SUBSCRIPTIONS:
            if key in self.subscriptions:
                self.call(self.end, "admin", "ax_update_webhook", {
                    "subscription_id": self.subscriptions[key], "status": "paused",
                    "description": description + PAUSED_NOTE}, "cli")
        rollup.rebuild()

    def _subscribe(self, at: datetime) -> None:
        for n, (key, event_type, url, description) in enumerate(SUBSCRIPTIONS):
            out = self.call(at + timedelta(minutes=n), "admin", "ax_subscribe_webhook", {
                "event_type": event_type, "webhook_url": url, "description": description}, "dashboard")
            if out:
                self.subscriptions[key] = out["subscription_id"]

    # --- a day

    def _plan(self, n: int) -> list[tuple[datetime, Callable[[datetime], None]]]:
        day = self.start + timedelta(days=n)
        weekday = day.weekday() < 5
        rng = self.rng

        def at(first_hour: float, last_hour: float) -> datetime:
            return day + timedelta(seconds=rng.uniform(first_hour * 3600, last_hour * 3600))

        plan = [(at(6, 22), self._webshop_order) for _ in range(rng.randint(4, 8) if weekday else rng.randint(1, 4))]
        if weekday:
            plan += [(day + timedelta(hours=7, minutes=5), self._restock),
                     (day + timedelta(hours=7, minutes=30), self._invoice_open_orders),
                     (day + timedelta(hours=16, minutes=10), self._post_payments)]
            plan += [(at(8, 17), self._writer_work) for _ in range(rng.randint(1, 2))]
            plan += [(at(8, 19), self._assistant_question) for _ in range(rng.randint(1, 4))]
            plan += [(at(8, 17), self._reader_lookup) for _ in range(rng.randint(1, 3))]
        if n == IMPORT_CUSTOMERS_DAY:
            plan.append((day + timedelta(hours=10, minutes=12), self._import_customers))
        if n == IMPORT_ITEMS_DAY:
            plan.append((day + timedelta(hours=11, minutes=5), self._import_price_list))
        if n == OUTAGE_DAY + 1:
            plan.append((day + timedelta(hours=8, minutes=20), self._retry_after_outage))
        return plan

    # --- who does what

    def _lines(self) -> list[dict]:
        chosen = self.rng.sample(self.items, k=self.rng.choice((1, 1, 1, 2, 2, 3)))
        return [{"item_id": item_id, "quantity": self.rng.randint(*QUANTITIES.get(item_id, (1, 3)))}
                for item_id in chosen]

    def _customer(self) -> str:
        # The first customers are the big ones.
        return self.rng.choices(self.customers, weights=[max(1, 8 - i) for i in range(len(self.customers))])[0]

    def _order(self, at: datetime, who: str, via: str, ref: str, key: str | None = None) -> dict:
        """A new sales order; returns its arguments."""
        customer, lines = self._customer(), self._lines()
        if self.rng.random() < 0.015:
            lines[0]["quantity"] = 0  # a client's bug, refused by the schema
        arguments = {"customer_account": customer, "lines": lines, "customer_ref": ref}
        out = self.call(at, who, "ax_create_salesorder", arguments, via, key)
        if out:
            self.open_orders.append(out["sales_id"])
        return arguments

    def _webshop_order(self, at: datetime) -> None:
        self.refs += 1
        ref = f"WEB-{self.refs}"
        if self.rng.random() < 0.5:
            self.call(at - timedelta(seconds=4), "webshop", "ax_get_customer", {"customer_account": self._customer()},
                      "http")
        if self.rng.random() < 0.3:
            self.call(at - timedelta(seconds=2), "webshop", "ax_check_inventory",
                      {"item_ids": self.rng.sample(self.items, k=2)}, "http")
        arguments = self._order(at, "webshop", "http", ref, key=f"order-{ref}")
        if self.rng.random() < 0.02:  # the shop timed out and sent it again: answered from the stored result
            self.call(at + timedelta(seconds=31), "webshop", "ax_create_salesorder", arguments, "http",
                      key=f"order-{ref}")

    def _writer_work(self, at: datetime) -> None:
        roll = self.rng.random()
        recent = self.open_orders[-15:]
        if roll < 0.12 and recent:
            sales_id = self.rng.choice(recent)
            self.call(at, "writer", "ax_update_salesorder",
                      {"sales_id": sales_id, "customer_ref": f"PO-{self.rng.randint(4000, 9999)}"}, "dashboard")
        elif roll < 0.18 and recent:
            sales_id = self.rng.choice(recent)
            if self.call(at, "writer", "ax_cancel_salesorder",
                         {"sales_id": sales_id, "reason": "the customer withdrew the order"}, "dashboard"):
                self.open_orders.remove(sales_id)
        else:
            self._order(at, "writer", "dashboard", f"PO-{self.rng.randint(4000, 9999)}")

    def _assistant_question(self, at: datetime) -> None:
        roll = self.rng.random()
        if roll < 0.45:
            account = self._customer() if self.rng.random() > 0.12 else "CUST-0O1"  # a letter O for a zero
            self.call(at, "assistant", "ax_get_customer", {"customer_account": account}, "mcp")
        elif roll < 0.75 and self.open_orders:
            self.call(at, "assistant", "ax_get_salesorder", {"sales_id": self.rng.choice(self.open_orders[-30:])},
                      "mcp")
        elif roll < 0.93:
            self.call(at, "assistant", "ax_check_inventory", {"item_ids": self.rng.sample(self.items, k=3)}, "mcp")
        else:
            self._order(at, "assistant", "mcp", "chat order")

    def _reader_lookup(self, at: datetime) -> None:
        if self.open_orders and self.rng.random() < 0.6:
            self.call(at, "reader", "ax_get_salesorder", {"sales_id": self.rng.choice(self.open_orders[-20:])},
                      "dashboard")
        else:
            self.call(at, "reader", "ax_check_inventory", {"item_id": self.rng.choice(self.items)}, "dashboard")

    def _restock(self, at: datetime) -> None:
        """Goods receipts for the items whose available stock fell under the reorder point."""
        low = (Item.objects.filter(item_id__in=self.items, reorder_point__gt=0)
               .filter(on_hand__lt=F("reserved") + F("reorder_point")).order_by("item_id"))
        for n, item in enumerate(low):
            self.call(at + timedelta(minutes=2 * n), "admin", "ax_adjust_inventory", {
                "item_id": item.item_id, "quantity_change": max(20, item.reorder_point * 5),
                "reason": f"goods receipt PO-{self.rng.randint(20000, 29999)}"}, "cli")

    def _invoice_open_orders(self, at: datetime) -> None:
        """Accounting's morning run: yesterday's orders invoiced in one batch."""
        orders, self.open_orders = self.open_orders, []
        outputs = self._batch(at, [{"tool": "ax_create_invoice", "arguments": {"sales_id": s}} for s in orders])
        for out in outputs:
            roll = self.rng.random()
            pay_on = None if roll < 0.04 else at.date() + timedelta(days=self.rng.randint(6, 34))
            self.invoices.append(Invoice(out["invoice_id"], out["customer_account"], Decimal(str(out["amount"])),
                                         pay_on, split=roll > 0.92))

    def _batch(self, at: datetime, requests: list[dict]) -> list[dict]:
        """ax_batch_operations as accounting's system sends it; the outputs of the operations that succeeded."""
        if not requests:
            return []
        out = self.call(at, "accounting", "ax_batch_operations", {"requests": requests, "max_parallel": 1}, "http")
        if not out:
            return []
        # BatchRun.created defaults to the real clock (a default is bound when the model is defined).
        BatchRun.objects.filter(batch_id=out["batch_id"]).update(created=at)
        return [result["output"] for result in out.get("results", []) if result["success"]]

    def _post_payments(self, at: datetime) -> None:
        """Accounting's bank file of the day: one batch of payments, or single calls for one or two."""
        day = at.date()
        due = [inv for inv in self.invoices if inv.pay_on and inv.pay_on <= day]
        requests = []
        for inv in due:
            amount = (inv.open / 2).quantize(Decimal("0.01")) if inv.split else inv.open
            inv.open -= amount
            inv.split = False
            inv.pay_on = day + timedelta(days=14) if inv.open > 0 else None
            requests.append({"customer_account": inv.account, "amount": float(amount), "invoice_id": inv.invoice_id,
                             "reference": f"BANK-{day:%Y%m%d}-{len(requests) + 1:03d}"})
        self.invoices = [inv for inv in self.invoices if inv.open > 0]
        if len(requests) < 3:
            for n, arguments in enumerate(requests):
                self.call(at + timedelta(minutes=n), "accounting", "ax_post_payment", arguments, "http")
            return
        self._batch(at, [{"tool": "ax_post_payment", "arguments": arguments} for arguments in requests])

    def _import(self, at: datetime, who: str, via: str, arguments: dict) -> None:
        # The upload queues the job's task for the worker as it commits. It commits here at the
        # real time, so that the queue holds no task from the past; the worker finds the job
        # done, run below at its moment by the same task function.
        with transaction.atomic():
            out = self.call(at, who, "ax_bulk_import", arguments, via)
        if not out:
            return
        job = ImportJob.objects.get(job_id=out["job_id"])
        real = timezone.now()
        ran = at + timedelta(seconds=2)
        with hub_time(ran):
            run_import(job.pk)
            bus.drain()
        # A few stamps come from defaults, which are bound to the real clock when the code is
        # loaded (the job's `created`, the time the import engine gives each chunk's records
        # and audit rows): they are moved to the history's moment here.
        ImportJob.objects.filter(pk=job.pk).update(created=at)
        AuditEntry.objects.filter(batch_id=job.job_id).update(created=ran)
        for model in (Customer, Item):
            model.objects.filter(created__gte=real).update(created=ran)
            model.objects.filter(updated__gte=real).update(updated=ran)
        self.receivers.after_call(ran)

    def _import_customers(self, at: datetime) -> None:
        rows = [*NEW_CUSTOMERS[:7], BAD_CUSTOMER_ROWS[0], *NEW_CUSTOMERS[7:], BAD_CUSTOMER_ROWS[1]]
        data = "customer_account,name,currency,credit_limit,segment\n" + "".join(
            f'{account},"{name}",{currency},{limit},{segment}\n' for account, name, currency, limit, segment in rows)
        self._import(at, "writer", "dashboard", {"type": "customers", "format": "csv", "data": data,
                                                 "filename": "new-customers-autumn.csv"})
        self.customers += [account for account, *_ in NEW_CUSTOMERS
                           if Customer.objects.filter(customer_account=account, blocked=False).exists()]

    def _import_price_list(self, at: datetime) -> None:
        data = "item_id,name,unit_price,on_hand,reorder_point\n" + "".join(
            f'{item_id},"{name}",{price},{stock},{reorder}\n' for item_id, name, price, stock, reorder in PRICE_LIST)
        self._import(at, "admin", "cli", {"type": "items", "format": "csv", "data": data, "mode": "upsert",
                                          "filename": "price-list-winter.csv"})
        self.items += [item_id for item_id, *_ in PRICE_LIST
                       if item_id not in self.items and Item.objects.filter(item_id=item_id).exists()]

    def _retry_after_outage(self, at: datetime) -> None:
        for n, key in enumerate(("invoices", "payments")):
            if key in self.subscriptions:
                self.call(at + timedelta(minutes=n), "admin", "ax_retry_webhook_delivery",
                          {"subscription_id": self.subscriptions[key]}, "dashboard")


def exists() -> bool:
    return get_user_model().objects.filter(username=INTEGRATIONS[0][0]).exists()


def first_day(now: datetime) -> datetime:
    """Midnight (UTC) of the history's first day: HISTORY_DAYS days before today."""
    return datetime.combine(now.astimezone(UTC).date(), time.min, tzinfo=UTC) - timedelta(days=HISTORY_DAYS)


def make(departments: dict, now: datetime) -> None:
    """The history of the HISTORY_DAYS days before today and of today until a minute ago."""
    History(start=first_day(now), end=now - timedelta(minutes=1)).run(departments)
