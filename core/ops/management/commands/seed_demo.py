"""Demo data for `make run`: users in every role, customers, items, rates, and 90 days of history.

Idempotent: running it again creates only what is missing, never changes passwords and never
makes the history twice (it is there once its integration accounts are: an interrupted run
leaves part of it, and a fresh database makes it whole). `--no-history` loads the base data only.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from core.audit.models import AuditEntry
from core.erp.models import Customer, Invoice, Item, Payment, SalesOrder
from core.imports.models import ImportJob
from core.ops import demo, demo_history
from core.tools.models import BatchRun
from core.webhooks.models import Delivery, Subscription

# The tables whose new rows the summary counts: only what this run made, never a user's own data.
COUNTED = {"tool calls": AuditEntry, "sales orders": SalesOrder, "invoices": Invoice, "payments": Payment,
           "imports": ImportJob, "batches": BatchRun, "webhook subscriptions": Subscription}
DEMO_ACCOUNTS = [row[0] for row in (*demo.CUSTOMERS, *demo_history.NEW_CUSTOMERS)]
DEMO_ITEMS = [row[0] for row in (*demo.ITEMS, *demo_history.PRICE_LIST)]


def _last_ids() -> dict[str, int]:
    return {name: model.objects.aggregate(last=Max("pk"))["last"] or 0 for name, model in COUNTED.items()}


class Command(BaseCommand):
    help = "Load demo data and 90 days of history (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-history", action="store_true",
                            help="only users, customers, items and rates: no 90 days of history")

    def handle(self, *args, **options) -> None:
        started, now = time.monotonic(), timezone.now()
        made_history = not options["no_history"] and not demo_history.exists()
        # With a history, the customers and items are there from its first morning on.
        with transaction.atomic(), demo.hub_time(demo_history.first_day(now)) if made_history else nullcontext():
            base = demo.load_base()
        if made_history:
            # Call by call, each committed on its own as in a running hub (a batch saves its
            # progress from a thread of its own, which one long transaction would lock out).
            before = _last_ids()
            demo_history.make(base.departments, now)
            made = {name: model.objects.filter(pk__gt=before[name]).count() for name, model in COUNTED.items()}
            failed = AuditEntry.objects.filter(pk__gt=before["tool calls"], success=False).count()
            deliveries = Delivery.objects.filter(subscription__pk__gt=before["webhook subscriptions"]).aggregate(
                total=Count("pk"), failed=Count("pk", filter=Q(status=Delivery.Status.FAILED)))
        customers = Customer.objects.filter(customer_account__in=DEMO_ACCOUNTS).count()
        items = Item.objects.filter(item_id__in=DEMO_ITEMS).count()
        self.stdout.write(f"demo data ready: {customers} demo customers, {items} demo items")
        if made_history:
            figures = ", ".join(f"{count} {name}" for name, count in made.items() if name != "tool calls")
            self.stdout.write(
                f"demo history of {demo_history.HISTORY_DAYS} days: {made['tool calls']} tool calls "
                f"({failed} refused), {figures}, {deliveries['total']} webhook deliveries "
                f"({deliveries['failed']} failed) in {time.monotonic() - started:.1f} s")
        elif not options["no_history"]:
            self.stdout.write("demo history: already there (it is made once)")
        if base.new_users:
            self.stdout.write("demo users (passwords shown once, change them outside a demo):")
            for username, role, password in base.new_users:
                self.stdout.write(f"  {username:<12} {role:<12} {password}")
