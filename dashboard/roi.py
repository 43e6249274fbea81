"""The ROI report (Stakeholder and MCP_Admin) and the manual baselines (MCP_Admin).

The report reads everything from core.roi: roi_metrics() for the figures, core.roi.figures for
what is computed from them (FTE, working days, changes, shares) and core.roi.export for the
downloads, so the page, the CSV, the workbook and ax_get_roi_metrics always agree. This module
only chooses what to show and how.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.admin.utils import construct_change_message
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from core.accounts.roles import MCP_ADMIN, STAKEHOLDER, has_role
from core.errors import ToolError
from core.roi import export, services
from core.roi.figures import HEADLINES, HOURS_PER_FTE_DAY, Metrics, Row, change, headline, share, working_days
from core.roi.models import Baseline
from core.roi.rollup import ENVELOPE_TOOLS
from core.tools.pipeline import call_tool
from core.tools.registry import all_tools
from dashboard import roi_charts
from dashboard.access import role_required
from dashboard.htmx import redirect_page, render_page_or_fragment
from dashboard.roi_forms import INTERVAL_LABELS, TABLE_LABELS, BaselineForm, RoiForm, presets
from dashboard.vendor import allows_plotly

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# How each of core.roi.figures.HEADLINES is shown: label, floatformat argument, unit (None: the currency).
SHOWN = {"operations": ("Operations", "0g", ""), "hours": ("Hours saved", "2g", "h"),
         "money": ("Money saved", "2g", None), "fte": ("FTE equivalent", "2g", "FTE")}


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


def _period_end(grouping: str, first: date) -> date:
    if grouping == "day":
        return first
    if grouping == "week":
        return first + timedelta(days=6)
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _row_label(metrics: Metrics, grouping: str, row: Row) -> tuple[str, str]:
    if grouping == "tool":
        return row.key or "(unknown tool)", ""
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


def table_rows(metrics: Metrics, grouping: str) -> list[TableRow]:
    whole = metrics.total.cost_units
    return [TableRow(*_row_label(metrics, grouping, row), row=row, share=share(row.figures.cost_units, whole))
            for row in metrics.groups[grouping]]


def _metrics(form: RoiForm) -> Metrics:
    """The engine's figures for the form's range: one call per grouping the view needs (the
    chart's interval and, if the table shows another period, that one), merged into one."""
    start, end = form.range
    first, *more = form.groupings()
    metrics = services.roi_metrics(start, end, first)
    for grouping in more:
        metrics.groups[grouping] = services.roi_metrics(start, end, grouping).groups[grouping]
    return metrics


def _report(request: HttpRequest) -> tuple[RoiForm, Metrics | None]:
    form = RoiForm(request.GET)
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
            "rows": table_rows(metrics, form.grouping),
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
    """The table as shown: its grouping, for the range of the query string."""
    form, metrics = _report(request)
    if metrics is None:
        return _back_to_report(request)
    return _download(export.to_csv(metrics, form.grouping), "text/csv; charset=utf-8",
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


# ---- baselines -----------------------------------------------------------------------------------

def _get_baseline_for_user(user, pk: int) -> Baseline:
    found = Baseline.objects.filter(pk=pk).first()
    if found is None:
        raise Http404(f"There is no baseline {pk}.")
    return found


def _row_form(baseline: Baseline, data=None) -> BaselineForm:
    return BaselineForm(data, instance=baseline, auto_id=f"id_baseline_{baseline.pk}_%s")


def _baselines_page(request: HttpRequest, *, invalid: BaselineForm | None = None, new: BaselineForm | None = None,
                    status: int = 200) -> HttpResponse:
    baselines = list(Baseline.objects.all())
    forms = [invalid if invalid is not None and invalid.instance.pk == b.pk else _row_form(b) for b in baselines]
    known = {b.tool for b in baselines}
    context = {
        "forms": forms,
        "new_form": new or BaselineForm(auto_id="id_new_%s"),
        # Envelopes (a batch, an import) are never counted: their inner operations are.
        "missing": [tool.name for tool in all_tools() if tool.name not in known and tool.name not in ENVELOPE_TOOLS],
        "show_admin_link": request.user.is_staff,
    }
    # A refused save answers with the whole page, its errors beside the row.
    return render_page_or_fragment(request, "dashboard/roi/baselines.html", "rows" if request.method == "GET" else None,
                                   context, status=status)


def _set_baseline(request: HttpRequest, form: BaselineForm, tool: str) -> Baseline | None:
    """The one write: ax_set_roi_baseline, as a dashboard call. None (the error on the form)
    when the tool refuses it."""
    try:
        call_tool("ax_set_roi_baseline", {"tool": tool, "seconds": form.cleaned_data["seconds"],
                                          "note": form.cleaned_data.get("note", "")},
                  request.user, via="dashboard")
    except ToolError as error:
        form.add_error(None, f"{error.code}: {error.message}")
        return None
    return Baseline.objects.get(tool=tool)


def _log(request: HttpRequest, baseline: Baseline, form: BaselineForm, action: int) -> None:
    """Baselines drive every saving shown, so each change is kept in the admin's history."""
    message = construct_change_message(form, None, action == ADDITION)
    LogEntry.objects.log_actions(request.user.pk, [baseline], action, message, single_object=True)


def _saved(request: HttpRequest, baseline: Baseline) -> HttpResponse:
    url = reverse("dashboard:roi_baselines") + f"#baseline-{baseline.pk}"
    return redirect_page(request, url)


@require_GET
@role_required(MCP_ADMIN)
@vary_on_headers("HX-Request")
def baseline_list(request: HttpRequest) -> HttpResponse:
    return _baselines_page(request)


@require_POST
@role_required(MCP_ADMIN)
def baseline_edit(request: HttpRequest, pk: int) -> HttpResponse:
    baseline = _get_baseline_for_user(request.user, pk)
    form = _row_form(baseline, request.POST)
    if not form.is_valid():
        return _baselines_page(request, invalid=form, status=422)
    if form.has_changed():
        baseline = _set_baseline(request, form, baseline.tool)
        if baseline is None:
            return _baselines_page(request, invalid=form, status=422)
        _log(request, baseline, form, CHANGE)
        messages.success(request, f"Baseline of {baseline.tool} saved: {baseline.seconds} s per operation. "
                                  "Its savings are recomputed for every period.")
    return _saved(request, baseline)


@require_POST
@role_required(MCP_ADMIN)
def baseline_new(request: HttpRequest) -> HttpResponse:
    form = BaselineForm(request.POST, auto_id="id_new_%s")
    if not form.is_valid():
        return _baselines_page(request, new=form, status=422)
    baseline = _set_baseline(request, form, form.cleaned_data["tool"])
    if baseline is None:
        return _baselines_page(request, new=form, status=422)
    _log(request, baseline, form, ADDITION)
    messages.success(request, f"Baseline of {baseline.tool} added: {baseline.seconds} s per operation.")
    return _saved(request, baseline)
