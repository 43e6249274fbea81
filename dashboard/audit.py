"""The audit log: every tool call, filtered and paginated, the table updated in place by HTMX."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from core.accounts.roles import MCP_READ
from core.tools.models import AuditEntry
from dashboard.access import role_required
from dashboard.batches import may_see_all_batches
from dashboard.forms import AuditFilterForm

PAGE_SIZE = 50


@require_GET
@role_required(MCP_READ)
@vary_on_headers("HX-Request")
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    # An invalid filter (a mistyped date) is reported and left out; the valid ones still apply,
    # since Django keeps only the fields that passed in cleaned_data.
    form.is_valid()
    entries = form.filter(AuditEntry.objects.all())
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "filtered": any(request.GET.get(name) for name in form.fields),
        "all_batches": may_see_all_batches(request.user),
        "usernames": get_user_model().objects.order_by("username").values_list("username", flat=True)[:500],
    }
    template_name = "dashboard/audit.html"
    if request.htmx and not request.htmx.history_restore_request:
        template_name += "#rows"
    return render(request, template_name, context)
