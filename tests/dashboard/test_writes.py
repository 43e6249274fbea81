"""Every write the dashboard makes goes through call_tool: it leaves an audit row with via
"dashboard" and counts against the caller's rate limit, like a call over the API or MCP.
ROI baselines too (ax_set_roi_baseline); each of their changes is also kept in the admin's
history (test_roi_views.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core.audit.models import AuditEntry
from core.events.bus import publish
from core.events.models import Event
from core.imports import services as imports
from core.imports.models import ImportJob
from core.roi.models import Baseline
from core.tools import ratelimit
from core.tools.models import BatchRun
from core.tools.pipeline import call_tool
from core.webhooks import services as webhooks
from core.webhooks.models import Delivery, Subscription

pytestmark = pytest.mark.django_db

URL = "https://n8n.example.com/webhook/order"
CSV = b"customer_account,name,currency\nC-1,Alpha,EUR\n"
GERMAN_CSV = "Kundennummer;Firma;Währung\nK-1;Müller GmbH;EUR\n".encode()


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@dataclass
class World:
    user: Any
    client: Any = None  # the user's logged-in client, for a write that needs an earlier page (a staged upload)

    def subscription(self) -> Subscription:
        created, _ = webhooks.subscribe(event_type="salesorder.created", webhook_url=URL, user=self.user)
        return created

    def failed_delivery(self, status: str = "failed") -> Delivery:
        sub = self.subscription()
        publish("salesorder.created", {"sales_id": "SO-1", "total_amount": 10.0})
        event = Event.objects.first()
        return Delivery.objects.create(delivery_id=f"dlv_{event.pk}", subscription=sub, event=event,
                                       event_type=event.type, status=status, attempts=1)

    def import_job(self, status: str = "queued", **options: Any) -> ImportJob:
        job = imports.submit(self.user, type="customers", fmt="csv", content=CSV, filename="c.csv", **options)
        job.status = status
        job.save(update_fields=["status"])
        return job


@dataclass
class Write:
    """A dashboard form post: the tool it calls, its URL and data (made in a World), and the
    state it changes, read before and after."""

    tool: str
    post: Callable[[World], tuple[str, dict[str, Any]]]
    state: Callable[[], Any]


def _upload(world: World) -> tuple[str, dict[str, Any]]:
    return "/imports/new/", {"file": SimpleUploadedFile("c.csv", CSV), "type": "customers", "batch_size": 100}


def _mapping_step(world: World) -> tuple[str, dict[str, Any]]:
    """The upload of a file whose columns need mapping (no tool call yet), then the step's form."""
    step = world.client.post("/imports/new/", {"file": SimpleUploadedFile("k.csv", GERMAN_CSV), "type": "customers",
                                               "batch_size": 100})
    form = step.context["form"]
    data = {"token": form["token"].value(), "shown_type": "customers", "type": "customers", "save_as": "SAP"}
    data.update({form.field_name(c): form[form.field_name(c)].value() for c in form.columns})
    return "/imports/new/mapping/", data


def _import_now(world: World) -> tuple[str, dict[str, Any]]:
    return f"/imports/{world.import_job('completed', validate_only=True).job_id}/import-now/", {"mode": "create"}


def _job_state():
    return sorted(ImportJob.objects.values_list("job_id", "status"))


def _subscriptions():
    return sorted(Subscription.objects.values_list("subscription_id", "status", "url"))


def _with_sub(path: str, data: dict[str, Any] | None = None):
    def post(world: World) -> tuple[str, dict[str, Any]]:
        return path.format(sub=world.subscription().subscription_id), dict(data or {})

    return post


def _retry_all_failed(world: World) -> tuple[str, dict[str, Any]]:
    world.failed_delivery()
    return "/webhooks/deliveries/retry-failed/", {}


def _baseline() -> Baseline:
    # The seeded baselines are gone after a test that flushed the database.
    return Baseline.objects.get_or_create(tool="ax_create_salesorder", defaults={"seconds": 60})[0]


WRITES = {
    "upload": Write("ax_bulk_import", _upload, _job_state),
    "mapping step": Write("ax_bulk_import", _mapping_step, _job_state),
    "import now": Write("ax_bulk_import", _import_now, _job_state),
    "cancel": Write("ax_cancel_import", lambda w: (f"/imports/{w.import_job().job_id}/cancel/", {}), _job_state),
    "resume": Write("ax_resume_import", lambda w: (f"/imports/{w.import_job('failed').job_id}/resume/", {}),
                    _job_state),
    "batch": Write("ax_batch_operations", lambda w: ("/batches/new/", {"payload": json.dumps([
        {"tool": "ax_get_customer", "arguments": {"customer_account": "CUST-001"}}]), "max_parallel": 1}),
        lambda: BatchRun.objects.count()),
    "subscribe": Write("ax_subscribe_webhook", lambda w: ("/webhooks/new/", {
        "event_types": ["salesorder.created", "payment.posted"], "patterns": "customer.*", "webhook_url": URL,
        "filter_0_field": "currency", "filter_0_op": "in", "filter_0_value": "EUR, USD", "min_amount": "100",
        "max_retries": 3, "backoff_ms": 1000}), _subscriptions),
    "edit": Write("ax_update_webhook", _with_sub("/webhooks/{sub}/edit/", {
        "event_types": ["salesorder.created"], "webhook_url": URL + "/v2", "max_retries": 3, "backoff_ms": 1000}),
        _subscriptions),
    "pause": Write("ax_update_webhook", _with_sub("/webhooks/{sub}/pause/"), _subscriptions),
    "rotate": Write("ax_rotate_webhook_secret", _with_sub("/webhooks/{sub}/rotate/"),
                    lambda: sorted(Subscription.objects.values_list("secret_encrypted", flat=True))),
    "test": Write("ax_send_test_webhook", _with_sub("/webhooks/{sub}/test/"), lambda: Delivery.objects.count()),
    "retry failed": Write("ax_retry_webhook_delivery", lambda w: (
        f"/webhooks/{w.failed_delivery().subscription.subscription_id}/retry_failed/", {}),
        lambda: sorted(Delivery.objects.values_list("status", flat=True))),
    "delete": Write("ax_unsubscribe_webhook", _with_sub("/webhooks/{sub}/delete/"), _subscriptions),
    "retry one": Write("ax_retry_webhook_delivery", lambda w: (
        f"/webhooks/deliveries/{w.failed_delivery().delivery_id}/retry/", {}),
        lambda: sorted(Delivery.objects.values_list("status", flat=True))),
    "resend": Write("ax_retry_webhook_delivery", lambda w: (
        f"/webhooks/deliveries/{w.failed_delivery('succeeded').delivery_id}/retry/", {}),
        lambda: sorted(Delivery.objects.values_list("status", flat=True))),
    "retry all failed (Failed tab)": Write("ax_retry_webhook_delivery", _retry_all_failed,
                                           lambda: sorted(Delivery.objects.values_list("status", flat=True))),
    "retry failed of an endpoint (Failed tab)": Write("ax_retry_webhook_delivery", lambda w: (
        "/webhooks/deliveries/retry-failed/", {"subscription": w.failed_delivery().subscription.subscription_id}),
        lambda: sorted(Delivery.objects.values_list("status", flat=True))),
    "baseline": Write("ax_set_roi_baseline", lambda w: (
        f"/roi/baselines/{_baseline().pk}/", {"seconds": 777, "note": "x"}),
        lambda: sorted(Baseline.objects.values_list("tool", "seconds"))),
    "new baseline": Write("ax_set_roi_baseline", lambda w: (
        "/roi/baselines/new/", {"tool": "import.pricelists", "seconds": 9, "note": ""}),
        lambda: sorted(Baseline.objects.values_list("tool", "seconds"))),
}


@pytest.mark.parametrize("name", WRITES)
def test_a_dashboard_write_is_audited_as_a_dashboard_call(name, as_admin, staff_admin, erp):
    write = WRITES[name]
    url, data = write.post(World(staff_admin, as_admin))
    before = write.state()
    response = as_admin.post(url, data)
    assert response.status_code in (200, 302), response.content.decode()[:500]
    assert write.state() != before
    entry = AuditEntry.objects.filter(tool=write.tool).latest("id")
    assert (entry.user_id, entry.via, entry.success, entry.error_code) == (staff_admin.pk, "dashboard", True, "")


@pytest.mark.parametrize("name", WRITES)
def test_a_dashboard_write_counts_against_the_rate_limit(name, as_admin, staff_admin, erp, settings, monkeypatch):
    write = WRITES[name]
    url, data = write.post(World(staff_admin, as_admin))
    settings.RATE_LIMIT_PER_MINUTE = 2
    monkeypatch.setattr(ratelimit, "clock", lambda: 1_800_000_000.0)  # one window for the whole test
    for _ in range(2):  # the minute's calls, used up elsewhere (the API, MCP, another page)
        call_tool("ax_get_customer", {"customer_account": "CUST-001"}, staff_admin)
    before = write.state()
    response = as_admin.post(url, data, follow=True)
    assert response.status_code in (200, 422)  # the page again, or the one redirected to, with the error
    assert "more than 2 requests this minute" in response.content.decode()
    assert write.state() == before
    entry = AuditEntry.objects.filter(tool=write.tool).latest("id")
    assert (entry.user_id, entry.via, entry.success, entry.error_code) == (staff_admin.pk, "dashboard", False,
                                                                          "RATE_LIMITED")
