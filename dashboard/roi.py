"""The ROI report and the operations behind its figures (Stakeholder and MCP_Admin), and the
history of manual baselines (MCP_Admin).

The report reads everything from core.roi: roi_metrics() for the figures, core.roi.figures for
what is computed from them (FTE, working days, changes, shares), core.roi.export for the
downloads and core.roi.operations for the audit rows behind a figure, so the page, the CSV, the
workbook and ax_get_roi_metrics always agree. This module only chooses what to show and how.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.admin.utils import construct_change_message
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from core.accounts.roles import MCP_ADMIN, STAKEHOLDER, has_role
from core.errors import ToolError
from core.roi import export, operations, services
from core.roi.figures import HEADLINES, HOURS_PER_FTE_DAY, Metrics, Row, change, headline, share, working_days
from core.roi.history import baseline_histories
from core.roi.labels import tool_label
from core.roi.models import FROM_THE_START, Baseline
from core.roi.rollup import ENVELOPE_TOOLS
from core.tools.pipeline import call_tool
from core.tools.registry import all_tools
from dashboard import roi_charts
from dashboard.access import role_required
from dashboard.audit import PAGE_SIZE
from dashboard.htmx import redirect_page, render_page_or_fragment
from dashboard.roi_forms import (
    INTERVAL_LABELS,
    SLICES,
    TABLE_LABELS,
    BaselineForm,
    OperationsForm,
    RoiForm,
    presets,
    today,
)
from dashboard.vendor import allows_plotly

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv; charset=utf-8"
CSV_SESSION_KEY = "roi_csv_format"  # the reader's CSV format, remembered once chosen
# How each of core.roi.figures.HEADLINES is shown: label, floatformat argument, unit (None: the currency).
SHOWN = {"operations": ("Operations", "0g", ""), "hours": ("Hours saved", "2g", "h"),
         "money": ("Money saved", "2g", None), "fte": ("FTE equivalent", "2g", "FTE")}
# Why operations were left out (core.roi.figures.Metrics.excluded), for one and for several.
EXCLUDED_REASONS = {"migration": ("record of a one-off migration", "records of one-off migrations")}


@dataclass(frozen=True)
class Headline:
    key: str
    label: str
    value: Decimal | int | None
    fmt: str  # the floatformat argument: "0g", "2g"
    unit: str
    change: Decimal | None
    previous: Decimal | int | None


def headlines(metrics: Metrics, previous: Metrics | None, days: int, previous_days: int) -> list[Headline]:
    now, before = metrics.total, previous.total if previous else None
    result = []
    for key in HEADLINES:
        label, fmt, unit = SHOWN[key]
        old = headline(key, before, previous_days) if before is not None else None
        moved = change(key, now, days, before, previous_days) if before is not None else None
        result.append(Headline(key, label, headline(key, now, days), fmt, metrics.currency if unit is None else unit,
                               moved, old))
    return result


@dataclass(frozen=True)
class TableRow:
    label: str
    detail: str
    row: Row
    share: Decimal | None  # percent of all money saved
    title: str = ""  # the tool name behind a plain label, for a tooltip
    href: str = ""  # the operations behind the row's figures
    baseline_since: date | None = None  # a baseline that took over within the range


def _period_end(grouping: str, first: date) -> date:
    if grouping == "day":
        return first
    if grouping == "week":
        return first + timedelta(days=6)
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _row_label(metrics: Metrics, grouping: str, row: Row) -> tuple[str, str]:
    if grouping == "tool":
        return tool_label(row.key), ""
    if grouping == "user":
        return row.key or "(no user)", ""
    if grouping == "department":
        return (row.name or row.key or "No department"), (row.key or "" if row.name else "")
    if row.start is None:
        return row.key or "", ""
    # A week or month cut by the range holds only the days inside it: say so beside its figures.
    partial = row.start < metrics.date_from or _period_end(grouping, row.start) > metrics.date_to
    if grouping == "day":
        return row.start.isoformat(), row.start.strftime("%a")
    if grouping == "week":
        return row.key or "", f"from {row.start:%d %b %Y}" + (", partial" if partial else "")
    return row.start.strftime("%B %Y"), "partial" if partial else ""


def operations_url(metrics: Metrics, grouping: str, key: str | None) -> str:
    """The page of the operations behind one tool's, user's or department's figures."""
    query = {grouping: key or "", "date_from": metrics.date_from.isoformat(), "date_to": metrics.date_to.isoformat()}
    return reverse("dashboard:roi_operations") + "?" + urlencode(query)


def table_rows(metrics: Metrics, grouping: str) -> tuple[list[TableRow], list[TableRow]]:
    """The table's rows, and apart from them the tools without a baseline in the range ("not
    priced": they count as operations but save nothing)."""
    whole = metrics.total.cost_units
    changed: dict[str, date] = {}
    if grouping == "tool":  # a baseline that took over within the range priced only its later days
        for tool, since in Baseline.objects.filter(effective_from__gt=metrics.date_from,
                                                   effective_from__lte=metrics.date_to).values_list(
                "tool", "effective_from"):
            changed[tool] = max(since, changed.get(tool, since))
    priced, unpriced = [], []
    for row in metrics.groups[grouping]:
        entry = TableRow(*_row_label(metrics, grouping, row), row=row, share=share(row.figures.cost_units, whole),
                         title=row.key or "" if grouping == "tool" else "",
                         href=operations_url(metrics, grouping, row.key) if grouping in SLICES else "",
                         baseline_since=changed.get(row.key or ""))
        (unpriced if grouping == "tool" and row.baseline_sec is None else priced).append(entry)
    return priced, unpriced


def _metrics(form: RoiForm) -> Metrics:
    """The engine's figures for the form's range: one call per grouping the view needs (the
    chart's interval and, if the table shows another period, that one), merged into one."""
    start, end = form.range
    first, *more = form.groupings()
    metrics = services.roi_metrics(start, end, first)
    for grouping in more:
        metrics.groups[grouping] = services.roi_metrics(start, end, grouping).groups[grouping]
    return metrics


def _range_form(form_class, request: HttpRequest):
    """The page's form, its CSV format defaulting to the reader's last choice; a choice made in
    this request is remembered for the session."""
    form = form_class(request.GET, csv_format=request.session.get(CSV_SESSION_KEY, ""))
    if form.is_valid() and request.GET.get("csv"):
        request.session[CSV_SESSION_KEY] = form.csv_format
    return form


def _report(request: HttpRequest) -> tuple[RoiForm, Metrics | None]:
    form = _range_form(RoiForm, request)
    if not form.is_valid():
        return form, None
    try:
        return form, _metrics(form)
    except ToolError as error:  # the form checks the same rules; this keeps a 500 away if they drift
        form.add_error(error.field if error.field in form.fields else None, error.message)
        return form, None


@require_GET
@role_required(STAKEHOLDER)
@vary_on_headers("HX-Request")
@allows_plotly
def roi_report(request: HttpRequest) -> HttpResponse:
    form, metrics = _report(request)
    context: dict = {"form": form, "metrics": metrics, "presets": presets(),
                     "may_edit_baselines": has_role(request.user, MCP_ADMIN)}
    if metrics is not None:
        start, end = form.range
        days = working_days(start, end)
        # The range of the same length just before, for the comparison under each headline.
        previous = services.previous_period(start, end)
        previous_days = working_days(previous.date_from, previous.date_to) if previous else 0
        query = form.query()
        rows, unpriced = table_rows(metrics, form.grouping)
        context.update({
            "form": form.for_display(),
            "headlines": headlines(metrics, previous, days, previous_days),
            "previous": previous,
            "working_days": days,
            "range_days": (end - start).days + 1,
            "fte_hours": HOURS_PER_FTE_DAY * days,
            "hours_per_day": HOURS_PER_FTE_DAY,
            "figures": roi_charts.figures(metrics, form.interval),
            "interval": form.interval,
            "interval_label": INTERVAL_LABELS[form.interval].lower(),
            "table": form.grouping,
            "table_label": TABLE_LABELS[form.grouping].lower(),
            "rows": rows,
            "unpriced": unpriced,
            "excluded": [(EXCLUDED_REASONS.get(reason, (reason, reason))[count != 1], count)
                         for reason, count in metrics.excluded.items() if count],
            "csv_url": reverse("dashboard:roi_csv") + "?" + urlencode(query),
            "xlsx_url": reverse("dashboard:roi_xlsx") + "?" + urlencode(query),
            "current_range": (start, end),
        })
    return render_page_or_fragment(request, "dashboard/roi/report.html", "view", context)


def _download(content: bytes, content_type: str, name: str) -> HttpResponse:
    return HttpResponse(content, content_type=content_type,
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "Cache-Control": "private, no-store"})


def _back_to_report(request: HttpRequest) -> HttpResponse:
    """A download link with a bad range opens the report, which names the error."""
    return redirect(reverse("dashboard:roi") + ("?" + request.GET.urlencode() if request.GET else ""))


@require_GET
@role_required(STAKEHOLDER)
def roi_export_csv(request: HttpRequest) -> HttpResponse:
    """The table as shown, with a total row: its grouping, for the range of the query string, in
    the reader's CSV format."""
    form, metrics = _report(request)
    if metrics is None:
        return _back_to_report(request)
    return _download(export.to_csv(metrics, form.grouping, form.csv_format), CSV_TYPE,
                     export.filename(metrics, "csv", form.grouping))


@require_GET
@role_required(STAKEHOLDER)
def roi_export_xlsx(request: HttpRequest) -> HttpResponse:
    """A workbook of the view: a summary, and one sheet per grouping (tool, user, department, and
    the chart's and the table's period)."""
    form, metrics = _report(request)
    if metrics is None:
        return _back_to_report(request)
    return _download(export.to_xlsx(metrics), XLSX_TYPE, export.filename(metrics, "xlsx"))


# ---- the operations behind a figure ---------------------------------------------------------------

OPERATION_COLUMNS = ["created", "tool", "operation", "user", "department", "via", "success", "error_code",
                     "duration_ms", "baseline_sec", "time_saved_sec", "hourly_rate"]


def _slice_figures(start: date, end: date, chosen: dict[str, str]) -> Row | None:
    """The report's row for a single tool, user or department: the figures the page explains."""
    if len(chosen) != 1:
        return None
    (grouping, key), = chosen.items()
    rows = services.roi_metrics(start, end, "tool").groups[grouping]
    return next((row for row in rows if (row.key or "") == key), Row(key or None))


EMPTY_SLICE = {"tool": "(unknown tool)", "user": "(no user)", "department": "No department"}


def _slice_title(chosen: dict[str, str]) -> str:
    return ", ".join(tool_label(value) if name == "tool" and value else value or EMPTY_SLICE[name]
                     for name, value in chosen.items()) or "All operations"


def _operations_csv(entries, form: OperationsForm) -> StreamingHttpResponse:
    """Every operation of the slice (not just a page), streamed, in the reader's CSV format."""
    pricer = operations.Pricer()

    def rows():
        for priced in pricer.price_all(entries.iterator(chunk_size=2000)):
            e = priced.entry
            yield [e.created.isoformat(), e.tool, tool_label(e.tool), e.username, e.department, e.via, e.success,
                   e.error_code, e.duration_ms, priced.baseline_sec, priced.saved_sec, priced.hourly_rate]

    start, end = form.range
    tag = re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(f"{k}-{v}" for k, v in form.slice().items()))[:80]
    name = f"roi_operations_{start}_{end}{'_' + tag if tag else ''}.csv"
    return StreamingHttpResponse(export.csv_lines(OPERATION_COLUMNS, rows(), form.csv_format), content_type=CSV_TYPE,
                                 headers={"Content-Disposition": f'attachment; filename="{name}"',
                                          "Cache-Control": "private, no-store"})


@require_GET
@role_required(STAKEHOLDER)
@vary_on_headers("HX-Request")
def roi_operations(request: HttpRequest) -> HttpResponse:
    """The audit rows behind a tool's, user's or department's figures in a range, each with the
    baseline and rate that priced it; paginated, and as CSV (?format=csv)."""
    form = _range_form(OperationsForm, request)
    context: dict = {"form": form, "page": None}
    if form.is_valid():
        start, end = form.range
        chosen = form.slice()
        entries = operations.counted(start, end, **chosen)
        if request.GET.get("format") == "csv":
            return _operations_csv(entries, form)
        page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
        context.update({
            "page": page, "rows": list(operations.Pricer().price_all(page.object_list)),
            "figure": _slice_figures(start, end, chosen), "title": _slice_title(chosen), "range": (start, end),
            "currency": settings.ROI_CURRENCY,
            "report_url": reverse("dashboard:roi") + "?" + urlencode(
                {"date_from": start.isoformat(), "date_to": end.isoformat(),
                 "table": next(iter(chosen), "tool")}),
            "csv_url": request.path + "?" + urlencode({**form.query(), "format": "csv"}),
        })
    return render_page_or_fragment(request, "dashboard/roi/operations.html", "rows", context)


# ---- baselines -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryRow:
    """One entry of a tool's baseline history on the page."""

    form: BaselineForm
    label: str  # the tool's plain name
    state: str  # "in force", "upcoming" or "earlier"
    first: bool  # the first entry of its tool (the row that names the tool)


def _get_baseline_for_user(user, pk: int) -> Baseline:
    found = Baseline.objects.filter(pk=pk).first()
    if found is None:
        raise Http404(f"There is no baseline {pk}.")
    return found


def _row_form(baseline: Baseline, data=None) -> BaselineForm:
    return BaselineForm(data, instance=baseline, auto_id=f"id_baseline_{baseline.pk}_%s")


def _baselines_page(request: HttpRequest, *, invalid: BaselineForm | None = None, new: BaselineForm | None = None,
                    status: int = 200) -> HttpResponse:
    entries: list[EntryRow] = []
    for history in baseline_histories():
        for n, baseline in enumerate(history.entries):
            form = invalid if invalid is not None and invalid.instance.pk == baseline.pk else _row_form(baseline)
            state = ("in force" if baseline == history.in_force
                     else "upcoming" if baseline.effective_from > today() else "earlier")
            entries.append(EntryRow(form, tool_label(history.tool), state, n == 0))
    known = {row.form.instance.tool for row in entries}
    asked = request.GET.get("tool", "")
    context = {
        "entries": entries,
        "forms": [row.form for row in entries],
        "new_form": new or BaselineForm(auto_id="id_new_%s", initial={"tool": asked} if asked else None),
        # Envelopes (a batch, an import) are never counted: their inner operations are.
        "missing": [tool.name for tool in all_tools() if tool.name not in known and tool.name not in ENVELOPE_TOOLS],
        "from_the_start": FROM_THE_START,
        "show_admin_link": request.user.is_staff,
    }
    # A refused save answers with the whole page, its errors beside the row.
    return render_page_or_fragment(request, "dashboard/roi/baselines.html", "rows" if request.method == "GET" else None,
                                   context, status=status)


def _set_baseline(request: HttpRequest, form: BaselineForm, tool: str, day: date) -> Baseline | None:
    """The one write: ax_set_roi_baseline, as a dashboard call. None (the error on the form)
    when the tool refuses it."""
    try:
        arguments = {"tool": tool, "baseline_sec": form.cleaned_data["seconds"], "effective_from": day.isoformat()}
        # A new value without a note keeps the note of the value before it; an edit may clear one.
        if form.instance.pk is not None or form.cleaned_data.get("note"):
            arguments["note"] = form.cleaned_data.get("note", "")
        call_tool("ax_set_roi_baseline", arguments, request.user, via="dashboard")
    except ToolError as error:
        form.add_error(None, f"{error.code}: {error.message}")
        return None
    return Baseline.objects.get(tool=tool, effective_from=day)


def _log(request: HttpRequest, baseline: Baseline, form: BaselineForm, action: int) -> None:
    """Baselines drive every saving shown, so each change is kept in the admin's history."""
    message = construct_change_message(form, None, action == ADDITION)
    LogEntry.objects.log_actions(request.user.pk, [baseline], action, message, single_object=True)


def _saved(request: HttpRequest, baseline: Baseline, verb: str) -> HttpResponse:
    since = "from the start" if baseline.effective_from == FROM_THE_START else f"from {baseline.effective_from}"
    messages.success(request, f"Baseline of {baseline.tool} {verb}: {baseline.seconds} s per operation {since}. "
                              "Savings are recomputed from that day on; earlier days keep theirs.")
    return redirect_page(request, reverse("dashboard:roi_baselines") + f"#baseline-{baseline.pk}")


@require_GET
@role_required(MCP_ADMIN)
@vary_on_headers("HX-Request")
def baseline_list(request: HttpRequest) -> HttpResponse:
    return _baselines_page(request)


@require_POST
@role_required(MCP_ADMIN)
def baseline_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Correct one entry of the history (its seconds or note; its tool and first day stay)."""
    baseline = _get_baseline_for_user(request.user, pk)
    form = _row_form(baseline, request.POST)
    if not form.is_valid():
        return _baselines_page(request, invalid=form, status=422)
    if not form.has_changed():
        return redirect_page(request, reverse("dashboard:roi_baselines") + f"#baseline-{baseline.pk}")
    changed = _set_baseline(request, form, baseline.tool, baseline.effective_from)
    if changed is None:
        return _baselines_page(request, invalid=form, status=422)
    _log(request, changed, form, CHANGE)
    return _saved(request, changed, "saved")


@require_POST
@role_required(MCP_ADMIN)
def baseline_new(request: HttpRequest) -> HttpResponse:
    """A new entry: a tool's first baseline, or a new value from a day on."""
    form = BaselineForm(request.POST, auto_id="id_new_%s")
    if not form.is_valid():
        return _baselines_page(request, new=form, status=422)
    baseline = _set_baseline(request, form, form.cleaned_data["tool"], form.cleaned_data["effective_from"])
    if baseline is None:
        return _baselines_page(request, new=form, status=422)
    _log(request, baseline, form, ADDITION)
    return _saved(request, baseline, "added")
