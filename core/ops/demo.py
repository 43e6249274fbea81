"""Demo data for `make run`: departments, users in every role, customers, items, rates.

A second run creates only what is missing and never changes passwords. The 90 days of
history that give the pages something to show are in core/ops/demo_history.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone

from core.accounts.models import Department
from core.accounts.roles import MCP_ADMIN, MCP_READ, MCP_WRITE, STAKEHOLDER
from core.accounts.services import create_user, ensure_role_groups
from core.erp.models import Customer, ExchangeRate, Item

DEPARTMENTS = [("SALES", "Sales", "55.00"), ("FIN", "Finance", "65.00"), ("IT", "IT & Integration", "70.00")]
USERS = [
    # username, role, password, department, own hourly rate
    ("admin", MCP_ADMIN, "admin-demo-pass", "IT", "80.00"),
    ("writer", MCP_WRITE, "writer-demo-pass", "SALES", None),
    ("reader", MCP_READ, "reader-demo-pass", "FIN", None),
    ("stakeholder", STAKEHOLDER, "stakeholder-demo-pass", "FIN", None),
]
RATES = [("USD", "1.080000"), ("GBP", "0.850000"), ("CHF", "0.950000"), ("SEK", "11.200000")]
CUSTOMERS = [
    ("CUST-001", "Müller GmbH", "EUR", "50000.00", "wholesale"),
    ("CUST-002", "Contoso Ltd", "USD", "25000.00", "retail"),
    ("CUST-003", "Société Générale de Test SA", "EUR", "0.00", "wholesale"),
    ("CUST-004", "Nordic Trä AB", "SEK", "100000.00", "retail"),
    ("CUST-005", "Fabrikam Inc", "USD", "0.00", "webshop"),
]
ITEMS = [
    ("ITEM-001", "Office chair ergonomic", "149.00", 500, 50),
    ("ITEM-002", "Standing desk 160x80", "499.00", 120, 20),
    ("ITEM-003", "Monitor arm dual", "89.90", 300, 40),
    ("ITEM-004", "Cable tray", "19.50", 1000, 100),
    ("ITEM-005", "Desk lamp LED", "39.00", 60, 25),
    ("ITEM-006", "Whiteboard 120x90", "129.00", 8, 10),
]


@dataclass
class Base:
    """What the base data step found or made."""

    departments: dict[str, Department]
    new_users: list[tuple[str, str, str]] = field(default_factory=list)  # username, role, password


def load_base() -> Base:
    """Role groups, departments, the demo users, exchange rates, customers and items."""
    ensure_role_groups()
    departments = {}
    for code, name, rate in DEPARTMENTS:
        departments[code], _ = Department.objects.get_or_create(
            code=code, defaults={"name": name, "hourly_rate": Decimal(rate)})
    base = Base(departments)
    User = get_user_model()
    for username, role, password, dept, rate in USERS:
        if User.objects.filter(username=username).exists():
            continue
        user = create_user(username, role, password=password, department=departments[dept],
                           hourly_rate=Decimal(rate) if rate else None)
        if role == MCP_ADMIN:
            User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
        base.new_users.append((username, role, password))
    for currency, rate in RATES:
        ExchangeRate.objects.get_or_create(currency=currency, defaults={"rate": Decimal(rate)})
    for account, name, currency, limit, segment in CUSTOMERS:
        Customer.objects.get_or_create(customer_account=account, defaults={
            "name": name, "currency": currency, "credit_limit": Decimal(limit), "segment": segment})
    for item_id, name, price, on_hand, reorder in ITEMS:
        Item.objects.get_or_create(item_id=item_id, defaults={
            "name": name, "unit_price": Decimal(price), "on_hand": on_hand, "reorder_point": reorder})
    return base


@contextmanager
def hub_time(moment: datetime) -> Iterator[None]:
    """Run the hub's own services as they would have run at `moment`.

    Every timestamp the hub writes (audit rows, events and the order data inside them,
    documents, due dates, webhook deliveries and attempts) comes from django.utils.timezone.now,
    through the webhooks clock too. Pointing it at `moment`, from where it runs on at the real
    pace, lets the history be made by the real services instead of rows written around them.
    Only the demo command does this, and nothing else works in its process meanwhile: the
    clock is the process's.
    """
    real = timezone.now
    started = time.monotonic()
    timezone.now = lambda: moment + timedelta(seconds=time.monotonic() - started)
    try:
        yield
    finally:
        timezone.now = real
