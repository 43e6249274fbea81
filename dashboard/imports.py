"""Imports: upload a CSV or XLSX file, map its columns when they do not name the fields, follow
the job live (how the file was read, its first rows, errors by code), read its row errors,
download the failed rows to fix and upload again, cancel or resume, import a validated file for
real, and download a template per type.

Who sees what follows core.accounts.roles.may_see_all, as ax_get_import_status does: a user
sees their own jobs, an admin sees every job. Writers upload, cancel, resume and "import this
file now", each through its tool (ax_bulk_import, ax_cancel_import, ax_resume_import), so it is
rate-limited and audited.

The mapping step. An upload whose header does not name the fields of its type is staged: kept
on the server in MEDIA_ROOT/import-staging/ under a random token (never in the page or the
session cookie), the token recorded in the uploader's session, so that nobody else can submit
it. The step shows each column with its first values and the field it seems to give; submitting
it sends the staged file with the mapping to ax_bulk_import and deletes the file. A staged file
that is never submitted (the person left the page) is removed after a day: each upload first
deletes the staged files older than that (remove_stale_staged_files, one directory scan).
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

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
from core.imports import readers, services
from core.imports.fields import as_text
from core.imports.mapping import guess_type, normalise, suggest
from core.imports.models import ImportJob
from core.imports.specs import SPECS
from core.tools.pipeline import call_tool
from dashboard.access import get_owned, owned_by, role_required, sees_everyones
from dashboard.htmx import redirect_page, render_page_or_fragment
from dashboard.import_forms import (
    IGNORE,
    FileColumn,
    ImportNowForm,
    ImportUploadForm,
    MappingForm,
    mode_choices,
    show_tool_error,
    tool_file,
)

PAGE_SIZE = 25
ERRORS_PAGE_SIZE = 50
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STAGING_DIR = "import-staging"  # under MEDIA_ROOT, which the hub does not serve
STAGING_MAX_AGE = timedelta(days=1)
STAGING_SESSION_KEY = "import_staging"
SAMPLE_ROWS = 3  # the first values of each column on the mapping step
# The failed-rows file's own columns, ignored on upload: they need no mapping.
FAILED_ROWS_COLUMNS = {"line", "errors"}
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
ENCODINGS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with byte-order mark", "utf-16": "UTF-16",
             "cp1252": "Windows-1252", "latin-1": "Latin-1 (ISO 8859-1)"}


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


@dataclass(frozen=True)
class PreviewRow:
    line: int
    values: list[str]  # in the order of Preview.fields
    errors: list[str]


@dataclass(frozen=True)
class Preview:
    """ImportJob.preview as the job page shows it: how the file was read, in words, its columns
    and the fields they give, and the first rows as parsed."""

    format: str
    encoding: str
    delimiter: str
    decimal_separator: str
    columns: list[tuple[str, str | None]]
    fields: list[str]
    rows: list[PreviewRow]

    @classmethod
    def of(cls, data: dict[str, Any] | None) -> Preview | None:
        if not data:
            return None
        columns = [(str(c.get("column", "")), c.get("field")) for c in data.get("columns", [])]
        fields = [field for _, field in columns if field]
        rows = [PreviewRow(line=row.get("line", 0), values=[str(row.get("values", {}).get(f, "")) for f in fields],
                           errors=list(row.get("errors", []))) for row in data.get("rows", [])]
        encoding, delimiter = data.get("encoding"), data.get("delimiter")
        decimal = "comma (1.234,56)" if data.get("decimal_separator") == "," else "point (1234.56)"
        return cls(format=str(data.get("format", "")).upper(),
                   encoding=ENCODINGS.get(encoding, encoding) if encoding else "",
                   delimiter=DELIMITERS.get(delimiter, repr(delimiter)) if delimiter else "",
                   decimal_separator=decimal, columns=columns, fields=fields, rows=rows)


# ---- staged uploads (the mapping step) ----------------------------------------------------

@dataclass(frozen=True)
class Staged:
    """An upload kept for the mapping step: its token, its file and the run options chosen with it
    (ax_bulk_import's arguments but the file and the mapping)."""

    token: str
    path: Path
    options: dict[str, Any]


def staging_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / STAGING_DIR


def remove_stale_staged_files(now: float | None = None) -> int:
    """Delete the staged uploads older than STAGING_MAX_AGE (a mapping step left unsubmitted);
    returns how many. One scan of one directory, at the start of every upload."""
    cutoff = (time.time() if now is None else now) - STAGING_MAX_AGE.total_seconds()
    removed = 0
    try:
        with os.scandir(staging_dir()) as entries:
            for entry in entries:
                try:
                    if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    continue  # removed by a request running at the same time
    except FileNotFoundError:
        pass  # nothing staged yet
    return removed


def _stage(content: bytes, options: dict[str, Any]) -> Staged:
    """Keep the upload under a random token, readable by the hub's user only."""
    directory = staging_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    path = directory / f"{token}.{options['format']}"
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
        file.write(content)
    return Staged(token, path, options)


def _keep_for_step(request: HttpRequest, staged: Staged) -> None:
    """Record the token in the uploader's session, the only place that names the file for the
    step (entries whose files are gone are dropped on the way)."""
    kept = {t: entry for t, entry in request.session.get(STAGING_SESSION_KEY, {}).items()
            if (staging_dir() / entry["file"]).exists()}
    kept[staged.token] = {"user": request.user.pk, "file": staged.path.name, "options": staged.options}
    request.session[STAGING_SESSION_KEY] = kept


def _staged_for(request: HttpRequest, token: str) -> Staged:
    """The upload this user staged under `token` (404 for anyone else's or an unknown token)."""
    entry = request.session.get(STAGING_SESSION_KEY, {}).get(token)
    if not entry or entry.get("user") != request.user.pk:
        raise Http404("There is no such upload of yours; upload the file again.")
    return Staged(token, staging_dir() / entry["file"], dict(entry["options"]))


def _unstage(request: HttpRequest, staged: Staged) -> None:
    staged.path.unlink(missing_ok=True)
    request.session.get(STAGING_SESSION_KEY, {}).pop(staged.token, None)
    request.session.modified = True


def _file_columns(path: Path, fmt: str, sheet: str) -> list[FileColumn] | None:
    """The columns of a file with their first values, as the import engine reads it; None when
    the file cannot be read (the import then reports why, with its code, as for any client)."""
    try:
        dialect = readers.sniff_csv(path) if fmt == ImportJob.Format.CSV else None
        try:
            opened = readers.open_rows(path, fmt, dialect, sheet, raw_header=True)
        except TypeError:  # a reader without raw_header: the header as lowercase column names
            opened = readers.open_rows(path, fmt, dialect, sheet)
        with opened as (header, rows):
            first = [values for _, values in itertools.islice(rows, SAMPLE_ROWS)]
    except readers.ImportFailure:
        return None
    return [FileColumn(index, str(name), tuple(as_text(values[index]) if index < len(values) else ""
                                               for values in first))
            for index, name in enumerate(header) if str(name or "").strip()]


def _names_the_fields(type_name: str, mode: str, columns: list[FileColumn]) -> bool:
    """Every column names a field of the type (ignoring case, spaces and umlauts), no field
    twice, and the fields the mode requires are there: the file needs no mapping."""
    spec = SPECS[type_name]
    by_name = {normalise(c.name): c.name for c in spec.columns}
    fields = [by_name.get(normalise(c.name)) for c in columns if normalise(c.name) not in FAILED_ROWS_COLUMNS]
    return (all(fields) and len(fields) == len(set(fields))
            and set(spec.required_columns(mode)) <= set(fields))


def _likely_type(chosen: str, mode: str, columns: list[FileColumn]) -> str:
    """The chosen type, unless the header lacks its required fields and looks like another type."""
    header = [c.name for c in columns]
    spec = SPECS[chosen]
    if set(spec.required_columns(mode)) <= set(suggest(spec, header).values()):
        return chosen
    return guess_type(header) or chosen


def _mapping_form(staged: Staged, columns: list[FileColumn], type_name: str, save_as: str = "") -> MappingForm:
    """The step for `type_name`, each column preselected with the field suggest() proposes."""
    suggested = suggest(SPECS[type_name], [c.name for c in columns])
    initial: dict[str, Any] = {"token": staged.token, "shown_type": type_name, "type": type_name,
                               "save_as": save_as}
    seen: set[str] = set()
    for column in columns:  # a header naming a column twice: the suggestion goes to the first
        initial[MappingForm.field_name(column)] = suggested.get(column.name, IGNORE) if column.name not in seen \
            else IGNORE
        seen.add(column.name)
    return MappingForm(initial=initial, columns=columns, shown_type=type_name, mode=staged.options["mode"])


def _render_step(request: HttpRequest, staged: Staged, form: MappingForm, notice: str = "") -> HttpResponse:
    context = {"form": form, "options": staged.options, "notice": notice, "spec": form.spec,
               "missing": [f for f in form.required if f not in {form[form.field_name(c)].value()
                                                                  for c in form.columns}]}
    return render_page_or_fragment(request, "dashboard/imports/mapping.html", "step", context)


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
    """The upload. A file whose columns name the fields of its type, or one uploaded with a saved
    mapping, is submitted at once; any other file goes to the mapping step first."""
    if request.method == "POST":
        remove_stale_staged_files()
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data, options = form.cleaned_data, form.options()
        # A mode the type does not take is refused by the tool whatever the columns: it says so
        # next to the Mode field rather than after the mapping step.
        mode_applies = options["mode"] in dict(mode_choices(options["type"]))
        if mode_applies and not data["mapping_name"]:
            staged = _stage(data["content"], options)
            columns = _file_columns(staged.path, options["format"], options["sheet"])
            if columns and not _names_the_fields(options["type"], options["mode"], columns):
                _keep_for_step(request, staged)
                likely = _likely_type(options["type"], options["mode"], columns)
                notice = (f"This looks like a {likely} file, not {options['type']}: the fields of {likely} are "
                          f"shown." if likely != options["type"] else "")
                return _render_step(request, staged, _mapping_form(staged, columns, likely), notice)
            staged.path.unlink()
        try:
            job = call_tool("ax_bulk_import", form.arguments(), request.user, via="dashboard")
        except ToolError as error:
            show_tool_error(form, error, ImportUploadForm.TOOL_FIELDS)
        else:
            return redirect_page(request, reverse("dashboard:import_detail", args=[job["job_id"]]))
    return render_page_or_fragment(request, "dashboard/imports/new.html", "form", {"form": form})


@require_POST
@role_required(MCP_WRITE)
def import_mapping(request: HttpRequest) -> HttpResponse:
    """The mapping step, submitted: the staged file with the chosen mapping (saved under a name
    when one is given) goes to ax_bulk_import. A type changed on the step shows that type's
    fields first (htmx does so as soon as the type changes)."""
    staged = _staged_for(request, request.POST.get("token", ""))
    if not staged.path.is_file():
        _unstage(request, staged)
        messages.error(request, "The uploaded file is no longer kept (uploads not submitted are removed after a "
                                "day); upload it again.")
        return redirect_page(request, reverse("dashboard:imports"))
    columns = _file_columns(staged.path, staged.options["format"], staged.options["sheet"]) or []
    shown = request.POST.get("shown_type", "")
    shown = shown if shown in SPECS else staged.options["type"]
    wanted = request.POST.get("type", "")
    if wanted in SPECS and wanted != shown:
        form = _mapping_form(staged, columns, wanted, save_as=request.POST.get("save_as", "")[:100])
        return _render_step(request, staged, form, f"The fields of {wanted} are shown: check the column each one "
                                                   f"comes from, then submit.")
    form = MappingForm(request.POST, columns=columns, shown_type=shown, mode=staged.options["mode"])
    if form.is_valid():
        data = form.cleaned_data
        arguments = {**staged.options, "type": data["type"], "mapping": form.mapping(),
                     **tool_file(staged.options["format"], staged.path.read_bytes())}
        if data["save_as"].strip():
            arguments["mapping_name"] = data["save_as"].strip()
        try:
            job = call_tool("ax_bulk_import", arguments, request.user, via="dashboard")
        except ToolError as error:
            show_tool_error(form, error, {"mapping_name": "save_as"})
        else:
            _unstage(request, staged)
            return redirect_page(request, reverse("dashboard:import_detail", args=[job["job_id"]]))
    return _render_step(request, staged, form)


@require_GET
@role_required(MCP_READ)
@vary_on_headers("HX-Request")
def import_detail(request: HttpRequest, job_id: str) -> HttpResponse:
    job = _get_import_for_user(request.user, job_id)
    errors = Paginator(job.errors.all(), ERRORS_PAGE_SIZE).get_page(request.GET.get("page"))
    may_write = has_role(request.user, MCP_WRITE)
    interrupted = _interrupted(job)
    may_import_now = may_write and job.validate_only and job.status == ImportJob.Status.COMPLETED
    context = {
        "job": job,
        "errors": errors,
        "error_summary": list(services.error_summary(job).items()) if job.failed else [],
        "preview": Preview.of(job.preview),
        "rate": job.rows_per_second,
        "eta": _seconds_text(job.eta_seconds),
        "interrupted": interrupted,
        "may_cancel": may_write and job.status in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING),
        "may_resume": may_write and not job.last_error.startswith(services.FILE_ERRORS) and (
            job.status in (ImportJob.Status.FAILED, ImportJob.Status.CANCELLED) or interrupted),
        "may_import_now": may_import_now,
        "import_now_modes": mode_choices(job.type),
        "max_batch_size": services.MAX_BATCH_SIZE,
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


@require_POST
@role_required(MCP_WRITE)
def import_now(request: HttpRequest, job_id: str) -> HttpResponse:
    """The "Import this file now" button: the stored file of a finished (validate-only) job, run
    for real with its settings through ax_bulk_import's from_job; the new job's page follows it."""
    job = _get_import_for_user(request.user, job_id)
    form = ImportNowForm(request.POST)
    here = reverse("dashboard:import_detail", args=[job.job_id])
    if not form.is_valid():
        messages.error(request, "; ".join(e for errors in form.errors.values() for e in errors))
        return redirect_page(request, here)
    arguments = {"from_job": job.job_id}
    if form.cleaned_data["mode"]:
        arguments["mode"] = form.cleaned_data["mode"]
    if form.cleaned_data["batch_size"]:
        arguments["batch_size"] = form.cleaned_data["batch_size"]
    try:
        new = call_tool("ax_bulk_import", arguments, request.user, via="dashboard")
    except ToolError as error:
        messages.error(request, error.message)
        return redirect_page(request, here)
    return redirect_page(request, reverse("dashboard:import_detail", args=[new["job_id"]]))


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
