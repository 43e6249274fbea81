"""Webhook pages (admins only): subscriptions, deliveries with live status and attempts, retries,
and the event store. Every change goes through the ax_* tools, so it is checked and audited.

The lists reload themselves every few seconds (their HTMX fragment: a count and one page of rows,
whatever the number of rows), so a new delivery or a changed status shows without a reload.

A new secret (on create or rotation) is kept in the session, encrypted, for exactly one view: the
POST redirects to the secret page, which takes it out as it shows it. A reload or the back button
cannot submit the form again, and finds the secret gone.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from core.accounts.roles import MCP_ADMIN
from core.errors import ToolError
from core.events import bus
from core.events.catalog import EVENT_TYPES, TEST_EVENT
from core.events.models import Event
from core.tools import jsonio
from core.tools.pipeline import call_tool
from core.webhooks import crypto, services
from core.webhooks import delivery as sending
from core.webhooks.models import Delivery, Subscription
from dashboard.access import role_required
from dashboard.htmx import redirect_page, render_page_or_fragment
from dashboard.webhook_forms import DeliveryFilterForm, EventFilterForm, SubscriptionForm, describe_filters

PAGE_SIZE = 25
RECENT_DELIVERIES = 15
OPEN = (Delivery.Status.PENDING, Delivery.Status.SENDING)
SECRET_KEY = "webhook_secret"  # the session entry holding a new secret until its page is shown
# The subscription columns a delivery row shows (its endpoint, whether it is paused); not its
# filters or secrets.
ROW_SUBSCRIPTION = ("subscription__subscription_id", "subscription__url", "subscription__status",
                    "subscription__description")


def delivery_rows():
    """Deliveries with what their rows show, in one query: no event is read."""
    return Delivery.objects.select_related("subscription").only(
        "delivery_id", "subscription", "event_type", "status", "attempts", "last_status", "last_error", "created",
        "next_attempt_at", "subject", "amount", "currency", *ROW_SUBSCRIPTION)


def _tool(request: HttpRequest, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return call_tool(name, arguments, request.user, via="dashboard")


def _fragment(request: HttpRequest, template_name: str, partial: str) -> str:
    if request.htmx and not request.htmx.history_restore_request:
        return f"{template_name}#{partial}"
    return template_name


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    return redirect_page(request, url)


def _get_subscription_for_user(user, subscription_id: str, *, stats: bool = True) -> Subscription:
    """The subscription, with its delivery counts unless `stats` is False."""
    found = Subscription.objects.filter(subscription_id=subscription_id)
    sub = (services.with_stats(found) if stats else found).first()
    if sub is None:
        raise Http404(f"There is no webhook subscription {subscription_id}.")
    return sub


def _keep_secret(request: HttpRequest, sub_id: str, secret: str, **shown: Any) -> HttpResponse:
    """Hold a new secret for the one GET that shows it, and redirect there."""
    request.session[SECRET_KEY] = {"subscription_id": sub_id, "secret": crypto.encrypt(secret), **shown}
    return redirect_page(request, reverse("dashboard:webhook_secret", args=[sub_id]))


def _get_delivery_for_user(user, delivery_id: str) -> Delivery:
    found = Delivery.objects.select_related("subscription", "event").filter(delivery_id=delivery_id).first()
    if found is None:
        raise Http404(f"There is no webhook delivery {delivery_id}.")
    return found


def _error(error: ToolError) -> str:
    where = f" ({error.field})" if error.field else ""
    return f"{error.code}{where}: {error.message}"


# ---- subscriptions ------------------------------------------------------------------------------

@require_GET
@role_required(MCP_ADMIN)
@vary_on_headers("HX-Request")
def subscription_list(request: HttpRequest) -> HttpResponse:
    # Page through the subscriptions alone, then count the deliveries of the page's ones: the count
    # of a list that reloads every few seconds must not join every delivery there is.
    page = Paginator(Subscription.objects.order_by("-created", "-id").values_list("pk", flat=True),
                     PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(services.with_stats(Subscription.objects.filter(pk__in=list(page.object_list))))
    context = {"page": page, "publish_failures": bus.failure_summary()}
    return render_page_or_fragment(request, "dashboard/webhooks/subscriptions.html", "rows", context)


@require_http_methods(["GET", "POST"])
@role_required(MCP_ADMIN)
def subscription_new(request: HttpRequest) -> HttpResponse:
    form = SubscriptionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = _tool(request, "ax_subscribe_webhook", form.arguments())
        except ToolError as error:
            form.add_error(None, _error(error))
        else:
            sub_id = created["subscription_id"]
            if created.get("secret"):
                return _keep_secret(request, sub_id, created["secret"], created=True)
            messages.success(request, "Subscription created: requests are signed with the secret you gave.")
            return redirect_page(request, reverse("dashboard:webhook_detail", args=[sub_id]))
    return render(request, "dashboard/webhooks/subscription_new.html", {"form": form, "types": EVENT_TYPES},
                  status=422 if form.errors else 200)


@require_GET
@role_required(MCP_ADMIN)
@never_cache
def subscription_secret(request: HttpRequest, subscription_id: str) -> HttpResponse:
    """The new secret, once: taken out of the session as it is shown."""
    sub = _get_subscription_for_user(request.user, subscription_id)
    kept = request.session.get(SECRET_KEY) or {}
    secret = None
    if kept.get("subscription_id") == sub.subscription_id:
        del request.session[SECRET_KEY]
        secret = crypto.decrypt(kept["secret"])
    return render(request, "dashboard/webhooks/secret.html", {
        "sub": sub, "secret": secret, "created": kept.get("created", False), "old_until": kept.get("old_until")})


def _detail_context(request: HttpRequest, sub: Subscription, form: SubscriptionForm | None = None) -> dict:
    recent = list(delivery_rows().filter(subscription=sub)[:RECENT_DELIVERIES])
    return {"sub": sub, "form": form or SubscriptionForm.for_subscription(sub), "deliveries": recent,
            "filter_lines": describe_filters(sub.filters), "filters_json": jsonio.dumps(sub.filters),
            "rotation_active": bool(services.subscription_data(sub)["secret_rotation_ends"])}


@require_GET
@role_required(MCP_ADMIN)
@vary_on_headers("HX-Request")
def subscription_detail(request: HttpRequest, subscription_id: str) -> HttpResponse:
    # The live fragment (every 3 s) shows recent deliveries only: no need to count them all.
    fragment = request.htmx and not request.htmx.history_restore_request
    sub = _get_subscription_for_user(request.user, subscription_id, stats=not fragment)
    return render_page_or_fragment(request, "dashboard/webhooks/subscription_detail.html", "live",
                  _detail_context(request, sub))


@require_POST
@role_required(MCP_ADMIN)
def subscription_edit(request: HttpRequest, subscription_id: str) -> HttpResponse:
    sub = _get_subscription_for_user(request.user, subscription_id)
    form = SubscriptionForm(request.POST, editing=True)
    if form.is_valid():
        try:
            _tool(request, "ax_update_webhook", {"subscription_id": sub.subscription_id, **form.arguments()})
        except ToolError as error:
            form.add_error(None, _error(error))
        else:
            messages.success(request, "Subscription saved.")
            return redirect_page(request, reverse("dashboard:webhook_detail", args=[sub.subscription_id]))
    return render(request, "dashboard/webhooks/subscription_detail.html", _detail_context(request, sub, form),
                  status=422)


ACTIONS = {"pause", "resume", "rotate", "test", "retry_failed", "delete"}


@require_POST
@role_required(MCP_ADMIN)
def subscription_action(request: HttpRequest, subscription_id: str, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404(f"Unknown action {action}.")
    sub = _get_subscription_for_user(request.user, subscription_id)
    detail = reverse("dashboard:webhook_detail", args=[sub.subscription_id])
    key = {"subscription_id": sub.subscription_id}
    try:
        if action in ("pause", "resume"):
            _tool(request, "ax_update_webhook", {**key, "status": "paused" if action == "pause" else "active"})
            messages.success(request, "Subscription paused: deliveries wait until you resume it."
                             if action == "pause" else "Subscription active: waiting deliveries go out now.")
        elif action == "rotate":
            rotated = _tool(request, "ax_rotate_webhook_secret", key)
            return _keep_secret(request, sub.subscription_id, rotated["secret"],
                                old_until=rotated["previous_secret_valid_until"])
        elif action == "test":
            sent = _tool(request, "ax_send_test_webhook", key)
            messages.success(request, "Test event sent.")
            return redirect_page(request, reverse("dashboard:webhook_delivery", args=[sent["delivery_id"]]))
        elif action == "retry_failed":
            retried = _tool(request, "ax_retry_webhook_delivery", key)["retried"]
            messages.success(request, f"{retried} failed deliver{'y' if retried == 1 else 'ies'} queued again.")
        else:
            _tool(request, "ax_unsubscribe_webhook", key)
            messages.success(request, f"Subscription {sub.subscription_id} deleted.")
            return redirect_page(request, reverse("dashboard:webhooks"))
    except ToolError as error:
        messages.error(request, _error(error))
    return redirect_page(request, detail)


# ---- deliveries ---------------------------------------------------------------------------------

@require_GET
@role_required(MCP_ADMIN)
@vary_on_headers("HX-Request")
def delivery_list(request: HttpRequest) -> HttpResponse:
    form = DeliveryFilterForm(request.GET)
    form.is_valid()
    page = Paginator(form.filter(delivery_rows()), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "failed_tab": form.cleaned_data.get("status") == Delivery.Status.FAILED,
               "endpoint": form.cleaned_data.get("subscription") or ""}
    return render_page_or_fragment(request, "dashboard/webhooks/deliveries.html", "rows", context)


@require_GET
@role_required(MCP_ADMIN)
@vary_on_headers("HX-Request")
def delivery_detail(request: HttpRequest, delivery_id: str) -> HttpResponse:
    found = _get_delivery_for_user(request.user, delivery_id)
    context = {"d": found, "attempts": list(found.attempt_rows.all()), "polling": found.status in OPEN,
               "payload": sending.payload(found.event).decode()}
    return render_page_or_fragment(request, "dashboard/webhooks/delivery_detail.html", "live", context)


@require_POST
@role_required(MCP_ADMIN)
def delivery_retry(request: HttpRequest, delivery_id: str) -> HttpResponse:
    found = _get_delivery_for_user(request.user, delivery_id)
    try:
        _tool(request, "ax_retry_webhook_delivery", {"delivery_id": found.delivery_id})
        messages.success(request, f"Delivery {found.delivery_id} queued again."
                         if found.status != Delivery.Status.SUCCEEDED
                         else f"Delivery {found.delivery_id} queued to be sent again (a resend).")
    except ToolError as error:
        messages.error(request, _error(error))
    return redirect_page(request, _back(request, reverse("dashboard:webhook_delivery", args=[found.delivery_id])))


@require_POST
@role_required(MCP_ADMIN)
def delivery_retry_failed(request: HttpRequest) -> HttpResponse:
    """The Failed tab's "Retry all failed": of the endpoint the tab shows, else of every one."""
    sub_id = request.POST.get("subscription", "")
    arguments = {"subscription_id": _get_subscription_for_user(request.user, sub_id).subscription_id} if sub_id \
        else {"all_failed": True}
    try:
        retried = _tool(request, "ax_retry_webhook_delivery", arguments)["retried"]
        messages.success(request, f"{retried} failed deliver{'y' if retried == 1 else 'ies'} queued again.")
    except ToolError as error:
        messages.error(request, _error(error))
    return redirect_page(request, _back(request, reverse("dashboard:webhook_deliveries") + "?status=failed"))


def _back(request: HttpRequest, default: str) -> str:
    """Where a form asks to return to (`next`), if it is on this site."""
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=False):
        return back
    return default


# ---- events -------------------------------------------------------------------------------------

@require_GET
@role_required(MCP_ADMIN)
@vary_on_headers("HX-Request")
def event_list(request: HttpRequest) -> HttpResponse:
    form = EventFilterForm(request.GET)
    form.is_valid()
    events = form.filter(Event.objects.exclude(type=TEST_EVENT))
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "publish_failures": bus.failure_summary(),
               "not_fanned_out": Event.objects.filter(fanned_out=False).count()}
    return render_page_or_fragment(request, "dashboard/webhooks/events.html", "rows", context)
