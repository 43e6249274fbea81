"""Imports: upload a CSV or XLSX file, follow the job live, read its row errors, download the
failed rows to fix and upload again, cancel or resume, and download a template per type.

Who sees what follows core.accounts.roles.may_see_all, as ax_get_import_status does: a user
sees their own jobs, an admin sees every job. Writers upload, cancel and resume, each through
its tool (ax_bulk_import, ax_cancel_import, ax_resume_import), so it is rate-limited and audited.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from core.accounts.roles import MCP_READ, MCP_WRITE, has_role
from core.errors import ToolError
from core.imports import services
from core.imports.models import ImportJob
from core.imports.specs import SPECS
from core.tools.pipeline import call_tool
from dashboard.access import get_owned, owned_by, role_required, sees_everyones
from dashboard.htmx import redirect_page, render_page_or_fragment
from dashboard.import_forms import ImportUploadForm

PAGE_SIZE = 25
ERRORS_PAGE_SIZE = 50
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _get_import_for_user(user, job_id: str) -> ImportJob:
    return get_owned(ImportJob.objects, user, "import", job_id=job_id)


def _attachment(content: bytes, filename: str, content_type: str) -> HttpResponse:
    return HttpResponse(content, content_type=content_type,
                        headers={"Content-Disposition": content_disposition_header(True, filename)})


def _seconds_text(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return "< 1 s"
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _interrupted(job: ImportJob) -> bool:
    """A running job whose worker stopped sending heartbeats: services.resume accepts it."""
    stale = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS)
    return job.status == ImportJob.Status.RUNNING and job.heartbeat is not None and job.heartbeat < stale


# ---- pages ----------------------------------------------------------------------------------

@require_GET
@role_required(MCP_READ)
@vary_on_headers("HX-Request")
def import_list(request: HttpRequest) -> HttpResponse:
    jobs = owned_by(ImportJob.objects.all(), request.user).select_related("user")
    page = Paginator(jobs, PAGE_SIZE).get_page(request.GET.get("page"))
    may_upload = has_role(request.user, MCP_WRITE)
    context = {
        "page": page,
        # The table polls itself while a job on it is still moving, and stops once none is.
        "polling": any(not job.done for job in page),
        "all_imports": sees_everyones(request.user),
        "may_upload": may_upload,
        "upload_form": ImportUploadForm() if may_upload else None,
        "types": list(SPECS.values()),
    }
    return render_page_or_fragment(request, "dashboard/imports/list.html", "rows", context)


@require_http_methods(["GET", "POST"])
@role_required(MCP_WRITE)
def import_new(request: HttpRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = call_tool("ax_bulk_import", form.arguments(), request.user, via="dashboard")
        except ToolError as error:
            form.add_error(None, f"{error.code}: {error.message}")
        else:
            messages.success(request, f"Import {job['job_id']} of {form.cleaned_data['file'].name or 'the file'} "
                                      "is queued.")
            return redirect_page(request, reverse("dashboard:import_detail", args=[job["job_id"]]))
    return render_page_or_fragment(request, "dashboard/imports/new.html", "form", {"form": form})


@require_GET
@role_required(MCP_READ)
@vary_on_headers("HX-Request")
def import_detail(request: HttpRequest, job_id: str) -> HttpResponse:
    job = _get_import_for_user(request.user, job_id)
    errors = Paginator(job.errors.all(), ERRORS_PAGE_SIZE).get_page(request.GET.get("page"))
    may_write = has_role(request.user, MCP_WRITE)
    interrupted = _interrupted(job)
    context = {
        "job": job,
        "errors": errors,
        "rate": job.rows_per_second,
        "eta": _seconds_text(job.eta_seconds),
        "interrupted": interrupted,
        "may_cancel": may_write and job.status in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING),
        "may_resume": may_write and not job.last_error.startswith(services.FILE_ERRORS) and (
            job.status in (ImportJob.Status.FAILED, ImportJob.Status.CANCELLED) or interrupted),
    }
    return render_page_or_fragment(request, "dashboard/imports/detail.html", "live", context)


# ---- actions --------------------------------------------------------------------------------

def _act(request: HttpRequest, job_id: str, tool: str, done: str) -> HttpResponse:
    job = _get_import_for_user(request.user, job_id)
    try:
        call_tool(tool, {"job_id": job.job_id}, request.user, via="dashboard")
    except ToolError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done.format(job_id=job.job_id))
    url = reverse("dashboard:import_detail", args=[job.job_id])
    return redirect_page(request, url)


@require_POST
@role_required(MCP_WRITE)
def import_cancel(request: HttpRequest, job_id: str) -> HttpResponse:
    return _act(request, job_id, "ax_cancel_import",
                "Import {job_id} is cancelled; batches already committed stay imported.")


@require_POST
@role_required(MCP_WRITE)
def import_resume(request: HttpRequest, job_id: str) -> HttpResponse:
    return _act(request, job_id, "ax_resume_import", "Import {job_id} is queued again; it continues at its checkpoint.")


# ---- downloads ------------------------------------------------------------------------------

@require_GET
@role_required(MCP_READ)
def import_failed_rows(request: HttpRequest, job_id: str, fmt: str) -> HttpResponse:
    job = _get_import_for_user(request.user, job_id)
    if fmt != job.format:  # the failed rows come in the format of the upload
        raise Http404(f"The failed rows of {job.job_id} are a {job.format} file.")
    return _attachment(*services.failed_rows_file(job))


@require_GET
@role_required(MCP_READ)
def import_template(request: HttpRequest, type_name: str, fmt: str) -> HttpResponse:
    if type_name not in SPECS or fmt not in ImportJob.Format.values:
        raise Http404(f"There is no {fmt} template for {type_name}.")
    if fmt == ImportJob.Format.CSV:
        return _attachment(services.template_csv(type_name), f"{type_name}-template.csv", CSV_TYPE)
    return _attachment(services.template_xlsx(type_name), f"{type_name}-template.xlsx", XLSX_TYPE)
