"""Imports on PostgreSQL: the set-based writes (jsonb_array_elements, database-built events)
give the same records, audit rows and events as on SQLite, and events reach subscriptions.

Run with `make test-integration` (DATABASE_URL=postgres://…/test).
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.conf import settings

from core.audit.models import AuditEntry
from core.erp.models import Customer, Item
from core.events.models import Event
from core.webhooks.models import Delivery
from tests.imports.helpers import errors_of, run_import

pytestmark = pytest.mark.integration

if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
    pytest.skip("needs PostgreSQL (DATABASE_URL); run `make test-integration`", allow_module_level=True)

HEADER = "customer_account,name,currency,credit_limit,segment,email\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_customers_import_on_postgresql(writer, erp, monkeypatch, django_capture_on_commit_callbacks):
    from core.webhooks import services, urlcheck

    monkeypatch.setattr(urlcheck, "check_for_subscribe", lambda url: url)
    sub, _ = services.subscribe(event_type="customer.created", webhook_url="https://hooks.example/in")
    rows = "".join(f"PG-{n:03d},Näme 'quoted' {n},EUR,{n}.50,retail,p{n}@x.example\n" for n in range(120))
    bad = "CUST-001,Exists,EUR,0,,\nPG-X,Bad,EURO,0,,\n"
    with django_capture_on_commit_callbacks(execute=True):
        job = run_import(writer, "customers", HEADER + rows + bad, batch_size=50)
    assert (job.status, job.successful, job.failed) == ("completed", 120, 2), errors_of(job)
    assert errors_of(job) == [(122, "customer_account", "CUST_ALREADY_EXISTS"), (123, "currency", "INVALID_CURRENCY")]
    customer = Customer.objects.get(customer_account="PG-007")
    assert (customer.name, customer.credit_limit, customer.email) == ("Näme 'quoted' 7", Decimal("7.50"),
                                                                    "p7@x.example")
    assert AuditEntry.objects.filter(tool="import.customers", batch_id=job.job_id).count() == 120
    event = Event.objects.get(type="customer.created", data__customer_account="PG-007")
    assert event.data["credit_limit"] == 7.5 and event.data["blocked"] is False and event.data["balance"] == 0
    assert event.data["caused_by"] == {"user": "writer", "audit_id": None, "via": "import"}
    assert re.fullmatch(r"evt_[0-9a-f]{27}", event.event_id), event.event_id
    assert Event.objects.filter(type="customer.created").values("event_id").distinct().count() == 120
    assert Delivery.objects.filter(subscription=sub).count() == 120


def test_items_import_on_postgresql(writer, erp):
    job = run_import(writer, "items", "item_id,name,unit_price,on_hand,reorder_point\n"
                                      "PI-1,Stuhl,149.90,120,20\nPI-2,Tisch,0.05,,\nITEM-001,Taken,1,1,1\n")
    assert (job.successful, job.failed) == (2, 1), errors_of(job)
    first = Item.objects.get(item_id="PI-1")
    assert (first.unit_price, first.on_hand, first.reorder_point, first.reserved) == (Decimal("149.90"), 120, 20, 0)
    assert AuditEntry.objects.filter(tool="import.items", batch_id=job.job_id).count() == 2


def test_history_rows_are_not_checked_against_auth_user(db):
    """No foreign key from events and audit rows to auth_user: an import would check every row."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
                       "AND confrelid = 'auth_user'::regclass")
        referencing = {row[0] for row in cursor.fetchall()}
    assert "events_event" not in referencing and "tools_auditentry" not in referencing
    assert "accounts_apitoken" in referencing  # the others keep theirs
