"""Home, overview and the tool list."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Avg, Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from core.accounts.roles import MCP_ADMIN, MCP_READ, has_role, primary_role
from core.audit.models import AuditEntry
from core.ops import health
from core.tools.models import BatchRun
from core.tools.registry import all_tools
from dashboard.access import owned_by, role_required, sees_everyones
from dashboard.htmx import render_page_or_fragment
from dashboard.nav import links_for

RECENT_ENTRIES = 12
# An import writes one audit row per record it creates or changes (via "import", or "migration"
# for a one-off migration), each with 0 ms. Those are records, not calls: the overview counts
# them apart and leaves them out of the call figures, the average duration and the latest calls.
IMPORTED = ("import", "migration")
CALLS = ~Q(via__in=IMPORTED)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Send each user to the first area they may use; a Stakeholder lands on ROI, not on a 403."""
    if not request.user.is_authenticated:
        return redirect("login")
    links = [link for link in links_for(request.user) if not link.area.secondary]
    if links:
        return redirect(links[0].url)
    return render(request, "dashboard/no_areas.html", {"role": primary_role(request.user)})


@require_GET
@role_required(MCP_READ)
@vary_on_headers("HX-Request")
def overview(request: HttpRequest) -> HttpResponse:
    now = timezone.localtime()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = AuditEntry.objects.filter(created__gte=day_start)
    counts = today.aggregate(calls=Count("id", filter=CALLS), failures=Count("id", filter=CALLS & Q(success=False)),
                             avg_ms=Avg("duration_ms", filter=CALLS), imported=Count("id", filter=~CALLS))
    counts["last_hour"] = AuditEntry.objects.filter(CALLS, created__gte=now - timedelta(hours=1)).count()
    counts["failure_rate"] = round(100 * counts["failures"] / counts["calls"], 1) if counts["calls"] else 0
    context = {
        "counts": counts,
        "today": day_start.date(),
        "top_errors": (today.filter(CALLS, success=False).values("error_code").annotate(n=Count("id"))
                       .order_by("-n")[:5]),
        "active_batches": owned_by(BatchRun.objects.all(), request.user).filter(
            status__in=[BatchRun.Status.QUEUED, BatchRun.Status.RUNNING]).count(),
        "recent": AuditEntry.objects.filter(CALLS)[:RECENT_ENTRIES],
        "all_batches": sees_everyones(request.user),
        "areas": [link for link in links_for(request.user) if link.area.on_overview],
        "updated": now,
        # The processes' health, as `manage.py health` and /healthz judge it: for admins only.
        "health": health.check() if has_role(request.user, MCP_ADMIN) else None,
    }
    return render_page_or_fragment(request, "dashboard/overview.html", "live", context)


@require_GET
@role_required(MCP_READ)
@vary_on_headers("HX-Request")
def tools(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    found = [t for t in all_tools() if not query or query.lower() in f"{t.name} {t.description}".lower()]
    return render_page_or_fragment(request, "dashboard/tools.html", "rows", {"tools": found, "q": query})
