from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from core.accounts.roles import MCP_READ, STAKEHOLDER, has_role
from core.tools.models import AuditEntry
from core.tools.registry import all_tools
from dashboard.access import role_required


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and not has_role(request.user, MCP_READ) and has_role(request.user, STAKEHOLDER):
        return render(request, "dashboard/stakeholder.html")
    return redirect("dashboard:overview")


@require_GET
@role_required(MCP_READ)
def overview(request: HttpRequest) -> HttpResponse:
    since = timezone.now() - timedelta(hours=24)
    counts = AuditEntry.objects.filter(created__gte=since).aggregate(
        calls=Count("id"), failures=Count("id", filter=Q(success=False))
    )
    recent = AuditEntry.objects.all()[:20]
    return render(request, "dashboard/overview.html", {"counts": counts, "recent": recent})


@require_GET
@role_required(MCP_READ)
def tools(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/tools.html", {"tools": all_tools()})
