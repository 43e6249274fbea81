"""Batch runs: the list with live progress, one batch with its per-operation results, and a
form that submits a batch as JSON through ax_batch_operations.

Who sees what follows ax_get_batch_status: a user sees their own batches, an admin sees all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from core.accounts.roles import MCP_ADMIN, MCP_READ, has_role
from core.errors import ToolError
from core.tools import jsonio
from core.tools.batch import BATCH_TOOL
from core.tools.models import BatchRun
from core.tools.pipeline import call_tool
from dashboard.access import get_owned, owned_by, role_required, sees_everyones
from dashboard.forms import BatchFilterForm, BatchForm
from dashboard.htmx import redirect_page, render_page_or_fragment

PAGE_SIZE = 25
# Submitting a batch by hand from the dashboard is an administrator's tool; writers use the API.
SUBMIT_ROLE = MCP_ADMIN


def _get_batch_for_user(user, batch_id: str) -> BatchRun:
    return get_owned(BatchRun.objects, user, "batch", batch_id=batch_id)


@require_GET
@role_required(MCP_READ)
@vary_on_headers("HX-Request")
def batch_list(request: HttpRequest) -> HttpResponse:
    form = BatchFilterForm(request.GET)
    form.is_valid()
    runs = form.filter(owned_by(BatchRun.objects.all(), request.user))
    runs = runs.select_related("user").defer("requests", "results")
    page = Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        # The table polls itself while a batch on it is still moving, and stops once none is.
        "polling": any(not run.done for run in page),
        "all_batches": sees_everyones(request.user),
        "may_submit": has_role(request.user, SUBMIT_ROLE),
    }
    return render_page_or_fragment(request, "dashboard/batches.html", "rows", context)


@dataclass
class Operation:
    """One request of a batch beside its result (None while the batch has not finished)."""

    index: int
    tool: str
    arguments: str
    idempotency_key: str
    result: dict[str, Any] | None

    @property
    def success(self) -> bool | None:
        return None if self.result is None else bool(self.result.get("success"))

    @property
    def output(self) -> str:
        if not self.result or "output" not in self.result:
            return ""
        return jsonio.dumps(self.result["output"], indent=2)


def _operations(run: BatchRun, only_failed: bool) -> list[Operation]:
    results = {r.get("index"): r for r in (run.results or []) if isinstance(r, dict)}
    operations = []
    for index, raw in enumerate(run.requests or []):
        entry = raw if isinstance(raw, dict) else {}
        operation = Operation(
            index=index,
            tool=str(entry.get("tool") or "(malformed entry)"),
            arguments=jsonio.dumps(entry.get("arguments", {}) if isinstance(raw, dict) else raw, indent=2),
            idempotency_key=str(entry.get("idempotency_key") or ""),
            result=results.get(index),
        )
        if not only_failed or operation.success is False:
            operations.append(operation)
    return operations


@require_GET
@role_required(MCP_READ)
@vary_on_headers("HX-Request")
def batch_detail(request: HttpRequest, batch_id: str) -> HttpResponse:
    run = _get_batch_for_user(request.user, batch_id)
    only_failed = request.GET.get("only") == "failed"
    context = {
        "run": run,
        "only_failed": only_failed,
        # While the batch runs the page polls a small fragment; the operations are listed once it is done.
        "operations": _operations(run, only_failed) if run.done else [],
    }
    return render_page_or_fragment(request, "dashboard/batch_detail.html", "live", context)


@require_http_methods(["GET", "POST"])
@role_required(SUBMIT_ROLE)
def batch_new(request: HttpRequest) -> HttpResponse:
    form = BatchForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            output = call_tool(BATCH_TOOL, form.arguments(), request.user,
                               idempotency_key=form.cleaned_data["idempotency_key"] or None, via="dashboard")
        except ToolError as error:
            form.add_tool_error(error)
        else:
            messages.success(request, _submitted_message(output))
            url = reverse("dashboard:batch_detail", args=[output["batch_id"]])
            return redirect_page(request, url)
    return render_page_or_fragment(request, "dashboard/batch_new.html", "form", {"form": form})


def _submitted_message(output: dict[str, Any]) -> str:
    if output.get("status") == BatchRun.Status.QUEUED:
        return f"Batch {output['batch_id']} is queued with {output.get('total', 0)} operations."
    return (f"Batch {output['batch_id']} finished: {output.get('successful', 0)} succeeded, "
            f"{output.get('failed', 0)} failed.")
