"""Webhook pages: subscriptions, deliveries with live status, retries, and the event store."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
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


def test_creating_shows_the_generated_secret_once_after_a_redirect(as_admin):
    response = as_admin.post("/webhooks/new/", {
        "patterns": "salesorder.*", "webhook_url": URL, "filter_0_field": "customer_account", "filter_0_op": "is",
        "filter_0_value": "CUST-001", "max_retries": 3, "backoff_ms": 1000, "description": "n8n orders"})
    created = Subscription.objects.get()
    assert response.status_code == 302 and response.url == f"/webhooks/{created.subscription_id}/secret/"
    assert created.filters == {"customer_account": "CUST-001"} and created.event_types == ["salesorder.*"]
    assert AuditEntry.objects.filter(tool="ax_subscribe_webhook", via="dashboard", success=True).exists()
    shown = as_admin.get(response.url)
    secret = shown.context["secret"]
    assert secret.startswith("whsec_") and secret in shown.content.decode()
    assert "no-store" in shown["Cache-Control"]
    assert 'data-copy="#signing-secret"' in shown.content.decode()
    assert '<script src="/static/js/webhooks.js" defer>' in shown.content.decode()
    assert secret not in str(dict(as_admin.session)), "the session holds it encrypted"
    again = as_admin.get(response.url)  # a reload
    assert again.status_code == 200 and again.context["secret"] is None and secret not in again.content.decode()
    assert "shown once and is not shown again" in again.content.decode()
    assert secret not in as_admin.get(f"/webhooks/{created.subscription_id}/").content.decode()
    assert Subscription.objects.count() == 1


def test_a_secret_of_ones_own_is_not_shown(as_admin):
    response = as_admin.post("/webhooks/new/", {"event_types": ["payment.posted"], "webhook_url": URL,
                                                "secret": "my-own-secret-of-16+", "max_retries": 3,
                                                "backoff_ms": 1000}, follow=True)
    assert "signed with the secret you gave" in response.content.decode()
    assert "my-own-secret-of-16+" not in response.content.decode()


def test_creating_refuses_a_private_url_an_unknown_filter_and_no_event_type(as_admin):
    response = as_admin.post("/webhooks/new/", {"patterns": "*", "webhook_url": "http://169.254.169.254/x",
                                                "max_retries": 3, "backoff_ms": 1000})
    assert response.status_code == 422 and "link-local" in response.content.decode()
    response = as_admin.post("/webhooks/new/", {"event_types": ["salesorder.created"], "webhook_url": URL,
                                                "filter_0_field": "payment_id", "filter_0_value": "PAY-1",
                                                "max_retries": 3, "backoff_ms": 1000})
    assert "unknown filter &#x27;payment_id&#x27;" in response.content.decode()
    response = as_admin.post("/webhooks/new/", {"webhook_url": URL, "max_retries": 3, "backoff_ms": 1000})
    assert response.status_code == 422 and "Tick at least one event type" in response.content.decode()
    assert not Subscription.objects.exists()


def test_several_event_types_are_ticked_or_typed(as_admin):
    response = as_admin.post("/webhooks/new/", {"event_types": ["payment.posted", "invoice.created"],
                                                "patterns": "salesorder.*, customer.*", "webhook_url": URL,
                                                "max_retries": 3, "backoff_ms": 1000})
    assert response.status_code == 302
    created = Subscription.objects.get()
    assert created.event_types == ["payment.posted", "invoice.created", "salesorder.*", "customer.*"]
    page = as_admin.get(f"/webhooks/{created.subscription_id}/")
    form = page.context["form"]
    assert form["event_types"].value() == ["payment.posted", "invoice.created"]
    assert form["patterns"].value() == "salesorder.*, customer.*"
    assert re.search(r'value="payment\.posted"[^>]*checked', page.content.decode())
    assert not re.search(r'value="customer\.created"[^>]*checked', page.content.decode())


def test_editing_filters_with_rows(as_admin, sub):
    response = as_admin.post(f"/webhooks/{sub.subscription_id}/edit/", {
        "event_types": ["salesorder.created"], "webhook_url": URL, "min_amount": "1000", "max_amount": "2500.50",
        "filter_0_field": "currency", "filter_0_op": "in", "filter_0_value": "EUR, USD",
        "filter_1_field": "customer_account", "filter_1_op": "is", "filter_1_value": "CUST-001",
        "max_retries": 5, "backoff_ms": 500})
    assert response.status_code == 302
    sub.refresh_from_db()
    assert sub.filters == {"currency": ["EUR", "USD"], "customer_account": "CUST-001", "min_amount": 1000,
                           "max_amount": Decimal("2500.50")}
    assert sub.max_retries == 5
    page = as_admin.get(f"/webhooks/{sub.subscription_id}/").content.decode()
    assert "currency is one of EUR, USD" in page and "amount ≥ 1000" in page
    bad = as_admin.post(f"/webhooks/{sub.subscription_id}/edit/", {
        "event_types": ["salesorder.created"], "webhook_url": URL, "filter_0_field": "total_amount",
        "filter_0_value": "lots", "max_retries": 5, "backoff_ms": 500})
    assert bad.status_code == 422 and "is not a number" in bad.content.decode()


def test_pause_resume_rotate_test_and_delete(as_admin, sub):
    base = f"/webhooks/{sub.subscription_id}"
    assert as_admin.post(f"{base}/pause/").status_code == 302
    assert Subscription.objects.get().status == "paused"
    as_admin.post(f"{base}/resume/")
    assert Subscription.objects.get().status == "active"
    rotated = as_admin.post(f"{base}/rotate/", follow=True)
    assert rotated.redirect_chain == [(f"{base}/secret/", 302)]
    assert rotated.context["secret"].startswith("whsec_")
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


def test_the_detail_lists_its_deliveries_live(as_admin, sub):
    fragment = as_admin.get(f"/webhooks/{sub.subscription_id}/", headers=HTMX).content.decode()
    assert fragment.lstrip().startswith('<section id="subscription-deliveries"') and "<html" not in fragment
    assert 'hx-trigger="every 3s"' in fragment and "No delivery yet" in fragment
    row = delivery(sub, status="succeeded", last_status=200)
    again = as_admin.get(f"/webhooks/{sub.subscription_id}/", headers=HTMX).content.decode()
    assert row.delivery_id in again and 'hx-trigger="every 3s"' in again


# ---- deliveries -----------------------------------------------------------------------------

def test_deliveries_filter_by_status_with_a_retry_button_on_failed_ones(as_admin, sub):
    failed = delivery(sub)
    ok = delivery(sub, status="succeeded", last_status=200)
    response = as_admin.get("/webhooks/deliveries/?status=failed")
    assert [d.delivery_id for d in response.context["page"]] == [failed.delivery_id]
    html = response.content.decode()
    assert f'action="/webhooks/deliveries/{failed.delivery_id}/retry/"' in html
    everything = as_admin.get("/webhooks/deliveries/").content.decode()
    ok_row = everything.split(f'id="delivery-{ok.delivery_id}"')[1].split("</tr>")[0]
    assert f"/webhooks/deliveries/{ok.delivery_id}/retry/" in ok_row and ">Resend</button>" in ok_row


def test_deliveries_htmx_fragment_is_live_whatever_the_statuses(as_admin, sub):
    fragment = as_admin.get("/webhooks/deliveries/?status=failed", headers=HTMX).content.decode()
    assert fragment.lstrip().startswith('<section id="delivery-results"') and "<html" not in fragment
    assert 'hx-get="/webhooks/deliveries/?status=failed" hx-trigger="every 3s"' in fragment
    delivery(sub, status="failed")
    done = as_admin.get("/webhooks/deliveries/?status=failed", headers=HTMX).content.decode()
    assert 'hx-trigger="every 3s"' in done and 'data-status="failed"' in done


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


# ---- what rows say, search, live, held, retry all, resend ----------------------------------

def test_rows_say_what_they_are_about_and_where_they_go(as_admin, sub):
    row = delivery(sub, subject="SO-000123", amount=Decimal("1234.50"), currency="EUR")
    html = as_admin.get("/webhooks/deliveries/").content.decode()
    cells = html.split(f'id="delivery-{row.delivery_id}"')[1].split("</tr>")[0]
    assert "Order SO-000123" in cells and "1,234.50 EUR" in cells and "salesorder.created" in cells
    assert ">n8n.example.com</a>" in cells and f'title="{URL}"' in cells
    assert f'title="Order SO-000123 · {row.delivery_id}"' in cells


def test_search_by_subject_event_id_or_delivery_id_and_a_date_range(as_admin, sub):
    order_row = delivery(sub, subject="SO-000123")
    other = delivery(sub, subject="CUST-001")
    Delivery.objects.filter(pk=other.pk).update(created=timezone.now() - timezone.timedelta(days=3))

    def found(query: str) -> list[str]:
        return [d.delivery_id for d in as_admin.get(f"/webhooks/deliveries/?{query}").context["page"]]

    assert found("q=SO-000123") == [order_row.delivery_id]
    assert found("q=so-000123") == [order_row.delivery_id]  # typed in small letters
    assert found(f"q={other.event.event_id}") == [other.delivery_id]
    assert found(f"q={other.delivery_id}") == [other.delivery_id]
    assert found("q=nothing-like-it") == []
    today = timezone.localdate()
    assert found(f"date_from={today.isoformat()}") == [order_row.delivery_id]
    assert found(f"date_to={(today - timezone.timedelta(days=1)).isoformat()}") == [other.delivery_id]
    assert found(f"date_from={today.isoformat()}&q=CUST-001") == []
    fragment = as_admin.get("/webhooks/deliveries/?q=SO-000123", headers=HTMX).content.decode()
    assert fragment.lstrip().startswith('<section id="delivery-results"') and "SO-000123" in fragment


def test_the_live_fragment_costs_the_same_queries_for_few_and_many_rows(as_admin, sub, staff_admin):
    other, _ = services.subscribe(event_type="*", webhook_url="https://erp-two.example.com/in", user=staff_admin)
    Subscription.objects.filter(pk=other.pk).update(status="paused")

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = as_admin.get(url, headers=HTMX)
        assert response.status_code == 200
        return len(captured)

    urls = ("/webhooks/deliveries/", "/webhooks/deliveries/?status=failed&q=SO-1",
            f"/webhooks/deliveries/?subscription={sub.subscription_id}", f"/webhooks/{sub.subscription_id}/",
            "/webhooks/")
    delivery(sub, subject="SO-1")
    delivery(other, status="pending")
    few = [queries(url) for url in urls]
    for n in range(12):
        delivery(sub if n % 2 else other, status=("failed", "pending", "succeeded")[n % 3], subject="SO-1")
    many = [queries(url) for url in urls]
    assert many == few
    assert as_admin.get("/webhooks/deliveries/", headers=HTMX).context["page"].paginator.count == 14


def test_a_delivery_of_a_paused_subscription_says_held(as_admin, sub):
    row = delivery(sub, status="pending", attempts=0, last_status=None)
    as_admin.post(f"/webhooks/{sub.subscription_id}/pause/")
    listed = as_admin.get("/webhooks/deliveries/").content.decode()
    assert "held (paused)" in listed
    detail = as_admin.get(f"/webhooks/deliveries/{row.delivery_id}/").content.decode()
    assert "held (paused)" in detail and "goes out when it is resumed" in detail
    as_admin.post(f"/webhooks/{sub.subscription_id}/resume/")
    assert "held (paused)" not in as_admin.get("/webhooks/deliveries/").content.decode()


def test_retry_all_failed_sits_on_the_failed_tab(as_admin, sub, staff_admin):
    other, _ = services.subscribe(event_type="*", webhook_url="https://erp-two.example.com/in", user=staff_admin)
    mine, theirs = delivery(sub), delivery(other)
    assert "Retry all failed" not in as_admin.get("/webhooks/deliveries/").content.decode()
    tab = as_admin.get(f"/webhooks/deliveries/?status=failed&subscription={sub.subscription_id}").content.decode()
    assert 'action="/webhooks/deliveries/retry-failed/"' in tab
    assert f'name="subscription" value="{sub.subscription_id}"' in tab
    back = f"/webhooks/deliveries/?status=failed&subscription={sub.subscription_id}"
    response = as_admin.post("/webhooks/deliveries/retry-failed/", {"subscription": sub.subscription_id, "next": back})
    assert response.status_code == 302 and response.url.startswith("/webhooks/deliveries/?status=failed")
    assert (Delivery.objects.get(pk=mine.pk).status, Delivery.objects.get(pk=theirs.pk).status) == ("pending",
                                                                                                      "failed")
    everything = as_admin.post("/webhooks/deliveries/retry-failed/", {"next": "https://evil.example/"}, follow=True)
    assert "1 failed delivery queued again" in everything.content.decode()
    assert everything.redirect_chain[-1][0] == "/webhooks/deliveries/?status=failed"
    assert Delivery.objects.get(pk=theirs.pk).status == "pending"
    entry = AuditEntry.objects.filter(tool="ax_retry_webhook_delivery").latest("id")
    assert (entry.via, entry.success) == ("dashboard", True)
    assert as_admin.get("/webhooks/deliveries/retry-failed/").status_code == 405
    htmx = as_admin.post("/webhooks/deliveries/retry-failed/", headers=HTMX)
    assert htmx.headers["HX-Redirect"] == "/webhooks/deliveries/?status=failed"


def test_a_succeeded_delivery_is_resent_from_its_page(as_admin, sub):
    row = delivery(sub, status="succeeded", last_status=200)
    page = as_admin.get(f"/webhooks/deliveries/{row.delivery_id}/").content.decode()
    assert ">Resend</button>" in page
    response = as_admin.post(f"/webhooks/deliveries/{row.delivery_id}/retry/", follow=True)
    assert "queued to be sent again" in response.content.decode()
    row.refresh_from_db()
    assert (row.status, row.next_trigger) == ("pending", "manual:admin")


def test_the_new_pages_are_for_admins_only(as_writer, sub):
    assert as_writer.get(f"/webhooks/{sub.subscription_id}/secret/").status_code == 403
    assert as_writer.post("/webhooks/deliveries/retry-failed/").status_code == 403
    assert as_writer.get("/webhooks/deliveries/?status=failed", headers=HTMX).status_code == 403


def test_the_secret_page_needs_get_and_a_known_subscription(as_admin, sub):
    assert as_admin.post(f"/webhooks/{sub.subscription_id}/secret/").status_code == 405
    assert as_admin.get("/webhooks/sub_missing/secret/").status_code == 404


def test_the_filter_rows_make_exactly_the_filters_the_tool_takes(sub):
    from dashboard.webhook_forms import SubscriptionForm

    form = SubscriptionForm({
        "event_types": ["salesorder.created", "customer.updated"], "webhook_url": URL, "max_retries": 3,
        "backoff_ms": 1000, "min_amount": "0.5",
        "filter_0_field": "customer_account", "filter_0_op": "in", "filter_0_value": "CUST-001, CUST-002",
        "filter_1_field": "blocked", "filter_1_op": "is", "filter_1_value": "false",
        "filter_2_field": "total_amount", "filter_2_op": "is", "filter_2_value": "1000.00",
        "filter_3_field": "customer_ref", "filter_3_op": "is", "filter_3_value": "null",
        "filter_5_field": "currency", "filter_5_op": "is", "filter_5_value": "EUR"})  # a sixth row, posted
    assert form.is_valid(), form.errors
    assert form.arguments()["filters"] == {"customer_account": ["CUST-001", "CUST-002"], "blocked": False,
                                           "total_amount": 1000, "customer_ref": None, "currency": "EUR",
                                           "min_amount": Decimal("0.5")}
    assert form.arguments()["event_types"] == ["salesorder.created", "customer.updated"]
    sub.filters = form.arguments()["filters"]
    again = SubscriptionForm.for_subscription(sub)
    values = {again[f"filter_{n}_field"].value(): (again[f"filter_{n}_op"].value(), again[f"filter_{n}_value"].value())
              for n in range(again.row_count) if again[f"filter_{n}_field"].value()}
    assert values == {"customer_account": ("in", "CUST-001, CUST-002"), "blocked": ("is", "false"),
                      "total_amount": ("is", "1000"), "customer_ref": ("is", "null"), "currency": ("is", "EUR")}
    assert again.row_count == 7  # the five rows and two empty ones

    for row, message in (({"filter_0_field": "blocked", "filter_0_value": "maybe"}, "true or false"),
                         ({"filter_0_value": "CUST-001"}, "Pick the field"),
                         ({"filter_0_field": "currency", "filter_0_op": "in", "filter_0_value": " , "},
                          "Give the value"),
                         ({"filter_0_field": "currency", "filter_0_value": "EUR", "filter_1_field": "currency",
                           "filter_1_value": "USD"}, "is in two rows")):
        bad = SubscriptionForm({"event_types": ["customer.created"], "webhook_url": URL, "max_retries": 3,
                                "backoff_ms": 1000, **row})
        assert not bad.is_valid() and message in str(bad.errors), (row, bad.errors)


def test_the_subscription_list_is_live(as_admin, sub):
    fragment = as_admin.get("/webhooks/", headers=HTMX).content.decode()
    assert fragment.lstrip().startswith('<section id="subscription-results"') and 'hx-trigger="every 3s"' in fragment
    assert ">n8n.example.com</a>" in fragment and "<code class=\"type\">salesorder.created</code>" in fragment
