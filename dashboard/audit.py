"""The audit log: every tool call, filtered and paginated, the table updated in place by HTMX."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from core.accounts.roles import MCP_READ
from core.audit.models import AuditEntry
from core.spreadsheet import neutralise
from dashboard.access import role_required, sees_everyones
from dashboard.forms import AuditFilterForm
from dashboard.htmx import render_page_or_fragment

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
    if request.GET.get("format") == "csv":
        return _csv_response(entries)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "filtered": any(request.GET.get(name) for name in form.fields),
        "all_batches": sees_everyones(request.user),
        "usernames": get_user_model().objects.order_by("username").values_list("username", flat=True)[:500],
    }
    return render_page_or_fragment(request, "dashboard/audit.html", "rows", context)


CSV_COLUMNS = ["created", "tool", "username", "department", "via", "success", "error_code", "error_message",
               "duration_ms", "idempotency_key", "replayed", "batch_id"]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    return neutralise(value.isoformat() if hasattr(value, "isoformat") else str(value))


def _csv_response(entries: QuerySet) -> StreamingHttpResponse:
    """The filtered entries as CSV, streamed: an export of a busy month never sits in memory."""
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(CSV_COLUMNS)
        for values in entries.values_list(*CSV_COLUMNS).iterator(chunk_size=2000):
            yield writer.writerow([_cell(v) for v in values])

    name = f"audit-{timezone.localtime():%Y%m%d-%H%M}.csv"
    return StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"'})
