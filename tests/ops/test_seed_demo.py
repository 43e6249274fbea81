"""`manage.py seed_demo`: the demo's users and records, and its 90 days of history, made once."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Max, Min, Sum
from django.utils import timezone

from core.audit import writer as audit_writer
from core.audit.models import AuditEntry
from core.erp.models import Customer, Invoice, Payment, SalesOrder
from core.events.models import Event
from core.imports.models import ImportJob
from core.roi import rollup
from core.roi.models import Usage
from core.tools.models import BatchRun
from core.tools.pipeline import call_tool
from core.webhooks.models import Attempt, Delivery, Subscription
from tests.helpers import logged_in
from tests.roi.world import seed_baselines

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def counted(model) -> int:
    return model.objects.count()


def test_without_history_it_loads_users_and_records_once_and_counts_only_demo_records():
    Customer.objects.create(customer_account="OWN-1", name="Not from the demo", currency="EUR")
    first = seed("--no-history")
    assert "demo data ready: 5 demo customers, 6 demo items" in first
    assert re.search(r"^  admin +MCP_Admin +admin-demo-pass$", first, re.M)
    assert "history" not in first
    assert not AuditEntry.objects.exists() and not Subscription.objects.exists()
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("admin-demo-pass")

    again = seed("--no-history")
    assert "demo data ready: 5 demo customers, 6 demo items" in again
    assert "admin-demo-pass" not in again  # shown once, when made
    assert Customer.objects.count() == 6


# Transactional: the history commits call by call, as a running hub does, and a batch saves its
# progress from a thread of its own, which a test's open transaction would lock out.
@pytest.mark.django_db(transaction=True)
def test_the_history_is_90_days_of_real_calls_made_once_and_the_pages_show_it():
    seed_baselines()  # the migration's, which a transactional test before this one may have flushed
    now = timezone.now()
    audit_writer.record(tool="ax_get_customer", user_id=None, username="someone", department="", via="http",
                        success=True)  # not the demo's: the summary leaves it out
    out = seed()
    summary = re.search(r"demo history of 90 days: (\d+) tool calls \((\d+) refused\), (\d+) sales orders, "
                        r"(\d+) invoices, (\d+) payments, (\d+) imports, (\d+) batches, (\d+) webhook subscriptions, "
                        r"(\d+) webhook deliveries \((\d+) failed\)", out)
    assert summary, out
    calls, refused, orders, invoices, payments, imports, batches, subs, deliveries, dead = map(int, summary.groups())
    assert (calls, refused, orders, invoices, payments) == (
        counted(AuditEntry) - 1, AuditEntry.objects.filter(success=False).count(), counted(SalesOrder),
        counted(Invoice), counted(Payment))
    assert (imports, batches, subs, deliveries, dead) == (
        counted(ImportJob), counted(BatchRun), counted(Subscription), counted(Delivery),
        Delivery.objects.filter(status=Delivery.Status.FAILED).count())
    assert calls > 1500 and 0 < refused < calls * 0.1 and orders > 300 and payments > 200 and batches > 50

    # Spread over the 90 days before today, through every way in, and into today.
    span = AuditEntry.objects.exclude(username="someone").aggregate(first=Min("created"), last=Max("created"))
    assert now - timedelta(days=91) < span["first"] < now - timedelta(days=89)
    assert now - timedelta(minutes=5) < span["last"] <= now
    assert AuditEntry.objects.dates("created", "day").count() >= 85
    assert set(AuditEntry.objects.values_list("via", flat=True)) >= {"http", "mcp", "dashboard", "cli", "import"}
    # Every event carries the time of the call that published it, inside its data too.
    order_event = Event.objects.filter(type="salesorder.created").order_by("created").first()
    audit = AuditEntry.objects.get(pk=order_event.audit_id)
    assert abs(order_event.created - audit.created) < timedelta(seconds=5) < now - order_event.created
    assert order_event.data["created"][:10] == audit.created.date().isoformat()

    # Webhooks: each attempt recorded as the dispatcher does, retries, dead letters and manual
    # retries included; the subscriptions wait, paused, for a real receiver.
    assert set(Subscription.objects.values_list("status", flat=True)) == {Subscription.Status.PAUSED}
    assert Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count() > deliveries * 0.9
    assert 0 < dead < 30 and not Delivery.objects.filter(status=Delivery.Status.PENDING).exists()
    assert Attempt.objects.filter(success=False).exists()
    assert Attempt.objects.filter(trigger=Attempt.Trigger.MANUAL, success=True).exists()
    first_attempt = Attempt.objects.order_by("started").first()
    assert first_attempt.started < now - timedelta(days=80)
    assert set(ImportJob.objects.values_list("status", flat=True)) == {ImportJob.Status.COMPLETED}
    assert ImportJob.objects.filter(failed__gt=0).exists()

    # The ROI rollup counts exactly the audit rows (not the envelopes of batches and imports).
    rollup.fold()
    counted_rows = AuditEntry.objects.filter(replayed=False).exclude(tool__in=rollup.ENVELOPE_TOOLS).count()
    assert Usage.objects.filter(level=Usage.Level.DAY).aggregate(n=Sum("operations"))["n"] == counted_rows

    # A second run makes nothing.
    again = seed()
    assert "demo history: already there" in again
    assert counted(AuditEntry) == calls + 1 and counted(Delivery) == deliveries

    # The pages a person opens first have something to show.
    users = {u.username: u for u in get_user_model().objects.all()}
    overview = logged_in(users["reader"]).get("/overview/")
    assert overview.status_code == 200 and overview.context["counts"]["calls"] > 0
    assert len(overview.context["recent"]) > 0
    roi = call_tool("ax_get_roi_metrics", {"date_from": (now - timedelta(days=30)).date().isoformat(),
                                           "date_to": now.date().isoformat()}, users["admin"])
    assert roi["total_operations"] > 500 and roi["total_time_saved_hours"] > 10
    assert logged_in(users["stakeholder"]).get("/roi/").status_code == 200
    webhooks = logged_in(users["admin"]).get("/webhooks/")
    assert webhooks.status_code == 200 and b"Webshop: order status back to the shop" in webhooks.content
    failed = logged_in(users["admin"]).get("/webhooks/deliveries/?status=failed")
    assert failed.status_code == 200 and b"dlv_" in failed.content
