"""Webhook pages: subscriptions, deliveries with live status, retries, and the event store."""

from __future__ import annotations

import pytest
from django.utils import timezone

from core.audit.models import AuditEntry
from core.events.bus import publish
from core.events.models import Event
from core.webhooks import services
from core.webhooks.models import Attempt, Delivery, Subscription
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

URL = "https://n8n.example.com/webhook/order"


@pytest.fixture
def sub(staff_admin):
    created, _ = services.subscribe(event_type="salesorder.created", webhook_url=URL, user=staff_admin)
    return created


def delivery(sub, status: str = "failed", **fields) -> Delivery:
    publish("salesorder.created", {"sales_id": f"SO-{Delivery.objects.count()}", "total_amount": 10.0})
    event = Event.objects.first()
    row = Delivery.objects.create(delivery_id=f"dlv_{event.pk}", subscription=sub, event=event,
                                  event_type=event.type, status=status, attempts=fields.pop("attempts", 1),
                                  last_status=fields.pop("last_status", 503), last_error="HTTP 503", **fields)
    Attempt.objects.create(delivery=row, number=1, started=timezone.now(), status_code=503, duration_ms=12,
                           error_class="http_5xx", error="HTTP 503", response_excerpt="upstream down")
    return row


# ---- subscriptions --------------------------------------------------------------------------

def test_the_list_shows_subscriptions_with_their_counts(as_admin, sub):
    delivery(sub)
    response = as_admin.get("/webhooks/")
    assert response.status_code == 200
    html = response.content.decode()
    assert sub.subscription_id in html and URL in html
    assert f'href="/webhooks/deliveries/?status=failed&amp;subscription={sub.subscription_id}"' in html
    assert 'href="/webhooks/"' in html and ">Webhooks</a>" in html  # the nav entry


def test_the_pages_are_for_admins_only(as_writer, as_reader, sub):
    row = delivery(sub)
    for client in (as_writer, as_reader):
        for url in ("/webhooks/", "/webhooks/new/", f"/webhooks/{sub.subscription_id}/", "/webhooks/deliveries/",
                    f"/webhooks/deliveries/{row.delivery_id}/", "/webhooks/events/"):
            assert client.get(url).status_code == 403, url
        assert client.post(f"/webhooks/deliveries/{row.delivery_id}/retry/").status_code == 403
    assert "Webhooks" not in as_writer.get("/overview/").content.decode()


def test_wrong_methods_are_refused(as_admin, sub):
    row = delivery(sub)
    assert as_admin.post("/webhooks/").status_code == 405
    assert as_admin.get(f"/webhooks/{sub.subscription_id}/pause/").status_code == 405
    assert as_admin.get(f"/webhooks/{sub.subscription_id}/edit/").status_code == 405
    assert as_admin.get(f"/webhooks/deliveries/{row.delivery_id}/retry/").status_code == 405
    assert as_admin.post("/webhooks/events/").status_code == 405


def test_creating_shows_the_generated_secret_once(as_admin):
    response = as_admin.post("/webhooks/new/", {
        "event_type": "salesorder.*", "webhook_url": URL, "filters": '{"customer_account": "CUST-001"}',
        "max_retries": 3, "backoff_ms": 1000, "description": "n8n orders"})
    assert response.status_code == 200
    secret = response.context["secret"]
    assert secret.startswith("whsec_") and secret in response.content.decode()
    created = Subscription.objects.get()
    assert created.filters == {"customer_account": "CUST-001"} and created.event_type == "salesorder.*"
    assert AuditEntry.objects.filter(tool="ax_subscribe_webhook", via="dashboard", success=True).exists()
    assert secret not in as_admin.get(f"/webhooks/{created.subscription_id}/").content.decode()


def test_creating_refuses_a_private_url_and_an_unknown_filter(as_admin):
    response = as_admin.post("/webhooks/new/", {"event_type": "*", "webhook_url": "http://169.254.169.254/x",
                                                "max_retries": 3, "backoff_ms": 1000})
    assert response.status_code == 200 and "link-local" in response.content.decode()
    response = as_admin.post("/webhooks/new/", {"event_type": "salesorder.created", "webhook_url": URL,
                                                "filters": '{"nope": 1}', "max_retries": 3, "backoff_ms": 1000})
    assert "unknown filter" in response.content.decode()
    assert not Subscription.objects.exists()


def test_editing_filters(as_admin, sub):
    response = as_admin.post(f"/webhooks/{sub.subscription_id}/edit/", {
        "event_type": "salesorder.created", "webhook_url": URL, "filters": '{"min_amount": 1000}',
        "max_retries": 5, "backoff_ms": 500})
    assert response.status_code == 302
    sub.refresh_from_db()
    assert sub.filters == {"min_amount": 1000} and sub.max_retries == 5
    bad = as_admin.post(f"/webhooks/{sub.subscription_id}/edit/", {
        "event_type": "salesorder.created", "webhook_url": URL, "filters": "[1", "max_retries": 5, "backoff_ms": 500})
    assert bad.status_code == 422 and "not valid JSON" in bad.content.decode()


def test_pause_resume_rotate_test_and_delete(as_admin, sub):
    base = f"/webhooks/{sub.subscription_id}"
    assert as_admin.post(f"{base}/pause/").status_code == 302
    assert Subscription.objects.get().status == "paused"
    as_admin.post(f"{base}/resume/")
    assert Subscription.objects.get().status == "active"
    rotated = as_admin.post(f"{base}/rotate/")
    assert rotated.status_code == 200 and rotated.context["secret"].startswith("whsec_")
    assert "both the old and the new secret" in rotated.content.decode()
    tested = as_admin.post(f"{base}/test/")
    test_delivery = Delivery.objects.get(event_type="webhook.test")
    assert tested.status_code == 302 and tested.url == f"/webhooks/deliveries/{test_delivery.delivery_id}/"
    assert as_admin.post(f"{base}/bogus/").status_code == 404
    assert as_admin.post(f"{base}/delete/").url == "/webhooks/"
    assert not Subscription.objects.exists()


def test_retry_all_failed_of_a_subscription(as_admin, sub):
    rows = [delivery(sub), delivery(sub)]
    response = as_admin.post(f"/webhooks/{sub.subscription_id}/retry_failed/", follow=True)
    assert "2 failed deliveries queued again" in response.content.decode()
    assert {r.status for r in Delivery.objects.filter(pk__in=[r.pk for r in rows])} == {"pending"}
    assert set(Delivery.objects.values_list("next_trigger", flat=True)) == {"manual:admin"}


def test_the_detail_polls_while_deliveries_are_open(as_admin, sub):
    delivery(sub, status="pending")
    fragment = as_admin.get(f"/webhooks/{sub.subscription_id}/", headers=HTMX).content.decode()
    assert fragment.lstrip().startswith('<section id="subscription-deliveries"') and "<html" not in fragment
    assert 'hx-trigger="every 1s"' in fragment
    Delivery.objects.update(status="succeeded")
    assert "hx-trigger" not in as_admin.get(f"/webhooks/{sub.subscription_id}/", headers=HTMX).content.decode()


# ---- deliveries -----------------------------------------------------------------------------

def test_deliveries_filter_by_status_with_a_retry_button_on_failed_ones(as_admin, sub):
    failed = delivery(sub)
    ok = delivery(sub, status="succeeded", last_status=200)
    response = as_admin.get("/webhooks/deliveries/?status=failed")
    assert [d.delivery_id for d in response.context["page"]] == [failed.delivery_id]
    html = response.content.decode()
    assert f'action="/webhooks/deliveries/{failed.delivery_id}/retry/"' in html
    everything = as_admin.get("/webhooks/deliveries/").content.decode()
    assert ok.delivery_id in everything and f"/webhooks/deliveries/{ok.delivery_id}/retry/" not in everything


def test_deliveries_htmx_fragment_is_live_while_some_are_pending(as_admin, sub):
    delivery(sub, status="pending")
    fragment = as_admin.get("/webhooks/deliveries/", headers=HTMX).content.decode()
    assert fragment.lstrip().startswith('<section id="delivery-results"') and 'hx-trigger="every 1s"' in fragment
    Delivery.objects.update(status="failed")
    done = as_admin.get("/webhooks/deliveries/", headers=HTMX).content.decode()
    assert "hx-trigger" not in done and 'data-status="failed"' in done


def test_a_delivery_shows_its_attempts_and_payload(as_admin, sub):
    row = delivery(sub)
    response = as_admin.get(f"/webhooks/deliveries/{row.delivery_id}/")
    html = response.content.decode()
    assert response.status_code == 200 and "upstream down" in html and "http_5xx" in html
    assert row.event.event_id in html and "&quot;sales_id&quot;" in html
    fragment = as_admin.get(f"/webhooks/deliveries/{row.delivery_id}/", headers=HTMX).content.decode()
    assert fragment.lstrip().startswith('<div id="delivery-live"') and "<html" not in fragment
    assert as_admin.get("/webhooks/deliveries/dlv_missing/").status_code == 404


def test_retrying_a_failed_delivery_returns_to_the_list(as_admin, sub):
    row = delivery(sub)
    response = as_admin.post(f"/webhooks/deliveries/{row.delivery_id}/retry/",
                             {"next": "/webhooks/deliveries/?status=failed"})
    assert response.status_code == 302 and response.url == "/webhooks/deliveries/?status=failed"
    row.refresh_from_db()
    assert row.status == "pending" and row.next_trigger == "manual:admin"
    again = as_admin.post(f"/webhooks/deliveries/{row.delivery_id}/retry/", {"next": "https://evil.example/"},
                          follow=True)
    assert "only failed deliveries are retried" in again.content.decode()
    assert again.redirect_chain[-1][0] == f"/webhooks/deliveries/{row.delivery_id}/"
    htmx = as_admin.post(f"/webhooks/deliveries/{row.delivery_id}/retry/", headers=HTMX)
    assert htmx.headers["HX-Redirect"] == f"/webhooks/deliveries/{row.delivery_id}/"


# ---- events ---------------------------------------------------------------------------------

def test_the_event_store_by_type_and_time(as_admin):
    publish("salesorder.created", {"sales_id": "SO-1"})
    publish("customer.created", {"customer_account": "CUST-9"})
    everything = as_admin.get("/webhooks/events/")
    assert everything.status_code == 200 and everything.context["page"].paginator.count == 2
    orders = as_admin.get("/webhooks/events/?type=salesorder.*")
    assert [e.type for e in orders.context["page"]] == ["salesorder.created"]
    today = timezone.localdate().isoformat()
    assert as_admin.get(f"/webhooks/events/?date_from={today}").context["page"].paginator.count == 2
    assert as_admin.get("/webhooks/events/?date_to=2000-01-01").context["page"].paginator.count == 0
    fragment = as_admin.get("/webhooks/events/?type=customer.created", headers=HTMX).content.decode()
    assert fragment.lstrip().startswith('<section id="event-results"') and "CUST-9" in fragment
