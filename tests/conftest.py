"""The world every test starts from: users in each role, a few customers and items."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.cache import cache

from core.accounts.models import Department
from core.accounts.roles import MCP_ADMIN, MCP_READ, MCP_WRITE, STAKEHOLDER
from core.accounts.services import create_user
from core.erp.models import Customer, ExchangeRate, Item
from core.tools import breaker
from tests.helpers import make_api

PLAIN_STATIC_STORAGE = "django.contrib.staticfiles.storage.StaticFilesStorage"


@pytest.fixture(autouse=True)
def _fast_and_clean(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Fan-out inline, so a test sees deliveries right after the commit; the background
    # thread has its own test (tests/events/test_background_fanout.py).
    settings.EVENTS_FANOUT_IN_BACKGROUND = False
    # Static files from the source folders: the manifest storage needs `collectstatic` first,
    # which the tests of static files and of the first page load run for themselves.
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": PLAIN_STATIC_STORAGE}}
    settings.WHITENOISE_USE_FINDERS = True
    cache.clear()
    yield
    breaker.reset()


@pytest.fixture
def department(db):
    return Department.objects.create(code="SALES", name="Sales", hourly_rate=Decimal("55.00"))


@pytest.fixture
def admin(db, department):
    return create_user("admin", MCP_ADMIN, password="admin-pass-1", department=department)


@pytest.fixture
def staff_admin(admin):
    """The admin as `seed_demo` makes it: MCP_Admin and a Django superuser."""
    admin.is_staff = admin.is_superuser = True
    admin.save(update_fields=["is_staff", "is_superuser"])
    return admin


@pytest.fixture
def writer(db, department):
    return create_user("writer", MCP_WRITE, password="writer-pass-1", department=department)


@pytest.fixture
def reader(db):
    return create_user("reader", MCP_READ, password="reader-pass-1")


@pytest.fixture
def stakeholder(db):
    return create_user("stakeholder", STAKEHOLDER, password="stake-pass-1")


@pytest.fixture
def outsider(db):
    return create_user("outsider", None, password="outsider-pass-1")


@pytest.fixture
def erp(db):
    """Two customers (EUR and USD), three items and a USD rate."""
    ExchangeRate.objects.create(currency="USD", rate=Decimal("1.100000"))
    customers = {
        "eur": Customer.objects.create(customer_account="CUST-001", name="Müller GmbH", currency="EUR",
                                       credit_limit=Decimal("10000.00")),
        "usd": Customer.objects.create(customer_account="CUST-002", name="Contoso Ltd", currency="USD"),
    }
    items = {
        "chair": Item.objects.create(item_id="ITEM-001", name="Chair", unit_price=Decimal("100.00"), on_hand=50,
                                     reorder_point=10),
        "desk": Item.objects.create(item_id="ITEM-002", name="Desk", unit_price=Decimal("450.50"), on_hand=5,
                                    reorder_point=2),
        "lamp": Item.objects.create(item_id="ITEM-003", name="Lamp", unit_price=Decimal("19.99"), on_hand=0),
    }
    return {**customers, **items}


@pytest.fixture
def writer_api(client, writer):
    return make_api(client, writer, MCP_WRITE)


@pytest.fixture
def admin_api(client, admin):
    return make_api(client, admin, MCP_ADMIN)


@pytest.fixture
def reader_api(client, reader):
    return make_api(client, reader, MCP_READ)
