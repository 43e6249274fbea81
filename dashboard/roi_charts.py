"""The ROI page's Plotly figures, built here as plain data and drawn by static/js/roi.js.

The page embeds them with the json_script filter, so no user text ever reaches a script as
code. Plotly reads a little HTML in its labels (<b>, <a href>, <br>), so tool, user and
department names are HTML-escaped first: Plotly then shows them exactly as typed.
Labels use no <b> or <i>: Plotly draws those with style="" attributes, which the page's
Content-Security-Policy refuses.

Axes are set here rather than left to Plotly's guesses: periods get one tick per bucket with
its own label (a month axis never repeats "Nov" nor skips December), and value axes start at
zero with round ticks (whole numbers for operation counts). A range without operations gets
no figures at all: the page says so instead of drawing empty axes.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal
from html import escape
from typing import Any

from core.roi.figures import Metrics, Row
from core.roi.labels import tool_label

TOP_TOOLS = 12
MAX_LABELS = 12  # period labels on an axis; beyond that every n-th bucket is labelled
ACCENT, ACCENT_SOFT, OK, BAD = "#1d5fc4", "#9dbbe8", "#1e7a3c", "#b42318"
GRID = "#eef1f5"
PALETTE = ["#1d5fc4", "#1e7a3c", "#c27803", "#7c3aed", "#0e7490", "#b42318", "#64748b", "#be185d", "#4d7c0f",
           "#9a3412"]
FONT = {"family": 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif', "size": 12,
        "color": "#1b2333"}
STEPS = (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10))


def _label(text: str | None, empty: str) -> str:
    return escape(text, quote=False) if text else empty


def _layout(**extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "font": FONT, "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
        "margin": {"l": 64, "r": 24, "t": 12, "b": 40}, "hovermode": "closest", "showlegend": False,
        "separators": ".,",
    }
    layout.update(extra)
    return layout


# --- axes


def value_axis(top: Decimal | int | float, *, whole: bool = False, ticks: int = 5) -> dict[str, Any]:
    """A linear axis from 0 past `top` with about `ticks` round steps (1, 2, 2.5 or 5 x 10^n;
    whole numbers only when `whole`), each tick labelled with just the decimals its step needs."""
    top = Decimal(str(top))
    if top <= 0:
        step = Decimal(1)
    else:
        raw = top / ticks
        magnitude = Decimal(10) ** math.floor(math.log10(raw))
        candidates = [m * magnitude for m in STEPS]
        if whole:
            candidates = [c for c in candidates if c >= 1 and c == c.to_integral_value()] or [Decimal(1)]
        step = next(c for c in candidates if c >= raw) if any(c >= raw for c in candidates) else candidates[-1]
    count = max(1, math.ceil(top / step))
    decimals = max(0, -step.normalize().as_tuple().exponent)
    values = [step * n for n in range(count + 1)]
    return {"tickmode": "array", "tickvals": [float(v) if decimals else int(v) for v in values],
            "range": [0, float(values[-1])], "tickformat": f",.{decimals}f", "rangemode": "tozero",
            "fixedrange": True, "zeroline": True, "zerolinecolor": "#c8d0dc"}


def _short(day: date, year: bool) -> str:
    text = f"{day.day} {day:%b}"
    return f"{text}<br>{day.year}" if year else text


def period_label(interval: str, row: Row) -> str:
    """How a bucket is named on the axis: "Dec 2026", a week by its Monday "1 Dec", a day "1 Dec"."""
    start = row.start or date.min
    if interval == "month":
        return f"{start:%b %Y}"
    return _short(start, False)


def _period_title(interval: str, row: Row, metrics: Metrics) -> str:
    """The bucket named in full for the hover, saying when the range cuts it."""
    start = row.start or date.min
    if interval == "day":
        return f"{start:%a} {start.day} {start:%b %Y}"
    if interval == "week":
        end = start + timedelta(days=6)
        title = f"Week {row.key} ({start.day} {start:%b} – {end.day} {end:%b %Y})"
    else:
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        title = f"{start:%B %Y}"
    partial = start < metrics.date_from or end > metrics.date_to
    return title + (", only the days in the range" if partial else "")


def period_axis(rows: list[Row], interval: str) -> tuple[list[str], dict[str, Any]]:
    """x values and the x axis of a chart over periods: one tick per bucket, labelled with the
    bucket's own name (every n-th when there are many). Weeks and months are categories keyed
    by their ISO name; days a date axis."""
    every = max(1, math.ceil(len(rows) / MAX_LABELS))
    labelled = set(range(0, len(rows), every))
    if interval == "day":
        x = [(row.start or date.min).isoformat() for row in rows]
        shown = sorted(labelled)
        text = []
        for position, n in enumerate(shown):
            day = rows[n].start or date.min
            first_of_year = position == 0 or (rows[shown[position - 1]].start or date.min).year != day.year
            text.append(_short(day, first_of_year))
        axis = {"type": "date", "tickvals": [x[n] for n in shown], "ticktext": text}
        if rows:  # half a day either side, so the first and last points are not cut
            axis["range"] = [f"{(rows[0].start or date.min) - timedelta(days=1)} 12:00",
                             f"{rows[-1].start or date.min} 12:00"]
    else:
        x = [row.key or "" for row in rows]
        text = []
        for n, row in enumerate(rows):
            label = period_label(interval, row)
            if interval == "week" and n in labelled:
                previous = rows[n - every].start if n >= every else None
                if previous is None or (row.start and previous.year != row.start.year):
                    label = _short(row.start or date.min, True)
            text.append(label if n in labelled else "")
        axis = {"type": "category", "tickvals": x, "ticktext": text}
    axis.update({"tickmode": "array", "ticks": "outside", "ticklen": 4, "tickcolor": "#c8d0dc", "showgrid": False,
                 "fixedrange": True, "automargin": True})
    return x, axis


# --- figures


def timeline(metrics: Metrics, interval: str) -> dict[str, Any]:
    """Money saved per period (a line for days, bars for weeks and months), and the running
    total on the right axis."""
    rows = metrics.groups[interval]
    currency = metrics.currency
    x, xaxis = period_axis(rows, interval)
    saved = [row.figures.cost_saved for row in rows]
    running, cumulative = Decimal(0), []
    for value in saved:
        running += value
        cumulative.append(float(running))
    custom = [[_period_title(interval, row, metrics), float(row.figures.time_saved_hours), row.figures.operations]
              for row in rows]
    hover = (f"%{{customdata[0]}}<br>%{{y:,.2f}} {currency} saved<br>%{{customdata[1]:,.2f}} h saved"
             "<br>%{customdata[2]:,} operations<extra></extra>")
    per = {"type": "bar", "marker": {"color": ACCENT}} if interval != "day" else {
        "type": "scatter", "mode": "lines+markers" if len(rows) <= 62 else "lines",
        "line": {"color": ACCENT, "width": 2.5}, "marker": {"size": 6}, "fill": "tozeroy",
        "fillcolor": "rgba(29,95,196,0.08)"}
    data = [
        {**per, "name": f"Saved per {interval}", "x": x, "y": [float(v) for v in saved], "customdata": custom,
         "hovertemplate": hover},
        {"type": "scatter", "mode": "lines", "name": "Cumulative", "x": x, "y": cumulative, "yaxis": "y2",
         "hovertemplate": f"%{{y:,.2f}} {currency} in total<extra>Cumulative</extra>",
         "line": {"color": OK, "width": 1.5, "dash": "dot"}},
    ]
    layout = _layout(
        margin={"l": 64, "r": 72, "t": 12, "b": 40}, hovermode="x unified" if interval == "day" else "closest",
        showlegend=True, legend={"orientation": "h", "x": 0, "y": 1.12, "xanchor": "left"}, bargap=0.3,
        xaxis=xaxis,
        yaxis={**value_axis(max(saved, default=0)), "title": {"text": f"Saved per {interval} ({currency})"},
               "gridcolor": GRID},
        yaxis2={**value_axis(running), "title": {"text": f"Cumulative ({currency})"}, "overlaying": "y",
                "side": "right", "showgrid": False},
    )
    return {"data": data, "layout": layout}


def operations(metrics: Metrics, interval: str) -> dict[str, Any]:
    """Operations per period as stacked bars, succeeded and failed, on a whole-number axis."""
    rows = metrics.groups[interval]
    x, xaxis = period_axis(rows, interval)
    titles = [[_period_title(interval, row, metrics)] for row in rows]
    ok = [row.figures.successful for row in rows]
    failed = [row.figures.operations - row.figures.successful for row in rows]
    data = [
        {"type": "bar", "name": "Succeeded", "x": x, "y": ok, "customdata": titles, "marker": {"color": ACCENT},
         "hovertemplate": "%{customdata[0]}<br>%{y:,} succeeded<extra></extra>"},
        {"type": "bar", "name": "Failed", "x": x, "y": failed, "customdata": titles, "marker": {"color": BAD},
         "hovertemplate": "%{customdata[0]}<br>%{y:,} failed<extra></extra>"},
    ]
    layout = _layout(
        height=240, barmode="stack", bargap=0.3, showlegend=True,
        legend={"orientation": "h", "x": 0, "y": 1.18, "xanchor": "left", "traceorder": "normal"},
        margin={"l": 64, "r": 72, "t": 12, "b": 40},
        xaxis=xaxis,
        yaxis={**value_axis(max((row.figures.operations for row in rows), default=0), whole=True),
               "title": {"text": f"Operations per {interval}"}, "gridcolor": GRID},
    )
    return {"data": data, "layout": layout}


def _top(rows: list[Row], limit: int) -> tuple[list[Row], Row | None]:
    if len(rows) <= limit:
        return rows, None
    rest = Row(f"{len(rows) - limit + 1} other tools")
    for row in rows[limit - 1:]:
        rest.figures.merge(row.figures)
    return rows[:limit - 1], rest


def by_tool(metrics: Metrics) -> dict[str, Any] | None:
    """Money saved per priced tool (one with a baseline), the largest on top, by its plain name;
    beyond TOP_TOOLS the rest as one bar. None when no tool of the range is priced."""
    priced = [row for row in metrics.groups["tool"] if row.baseline_sec is not None]
    if not priced:
        return None
    rows, rest = _top(priced, TOP_TOOLS)
    labels = [_label(tool_label(row.key), "(unknown tool)") for row in rows] + ([rest.key] if rest else [])
    ids = [_label(row.key, "") for row in rows] + ([""] if rest else [])
    figures = [row.figures for row in rows] + ([rest.figures] if rest else [])
    layout = _layout(
        height=max(300, 46 + 30 * len(labels)), margin={"l": 12, "r": 24, "t": 8, "b": 40},
        xaxis={**value_axis(max(f.cost_saved for f in figures)), "title": {"text": f"Saved ({metrics.currency})"},
               "gridcolor": GRID},
        yaxis={"autorange": "reversed", "automargin": True, "fixedrange": True, "ticksuffix": "  "},
        bargap=0.35,
    )
    data = [{
        "type": "bar", "orientation": "h", "y": labels, "x": [float(f.cost_saved) for f in figures],
        "customdata": [[float(f.time_saved_hours), f.operations, tool] for f, tool in zip(figures, ids, strict=True)],
        "hovertemplate": (f"%{{y}} %{{customdata[2]}}<br>%{{x:,.2f}} {metrics.currency} saved<br>"
                          "%{customdata[0]:,.2f} h saved<br>%{customdata[1]:,} operations<extra></extra>"),
        "marker": {"color": [ACCENT] * len(rows) + ([ACCENT_SOFT] if rest else [])},
    }]
    return {"data": data, "layout": layout}


def by_department(metrics: Metrics) -> dict[str, Any] | None:
    """Each department's share of the money saved (a donut), with the total in its hole; None
    when nothing was saved."""
    rows = [row for row in metrics.groups["department"] if row.figures.cost_units > 0]
    if not rows:
        return None
    # The legend goes under the donut, so the chart keeps its size in a narrow column or on a phone.
    layout = _layout(height=320, margin={"l": 8, "r": 8, "t": 8, "b": 8}, showlegend=True,
                     legend={"orientation": "h", "x": 0.5, "xanchor": "center", "y": -0.02, "yanchor": "top"})
    labels = [f"{_label(row.name, row.key or '')} ({_label(row.key, '')})" if row.name and row.key
              else _label(row.key, "No department") for row in rows]
    data = [{
        "type": "pie", "hole": 0.55, "labels": labels, "values": [float(row.figures.cost_saved) for row in rows],
        "customdata": [[float(row.figures.time_saved_hours), row.figures.operations] for row in rows],
        "sort": False, "direction": "clockwise", "textinfo": "percent", "textposition": "inside",
        "insidetextorientation": "horizontal", "marker": {"colors": PALETTE, "line": {"color": "#fff", "width": 2}},
        "hovertemplate": (f"%{{label}}<br>%{{value:,.2f}} {metrics.currency} saved (%{{percent}})"
                          "<br>%{customdata[0]:,.2f} h saved<br>%{customdata[1]:,} operations<extra></extra>"),
        # In a donut the title sits in the hole.
        "title": {"text": f"{metrics.total.cost_saved:,.0f}<br>{metrics.currency}",
                  "font": {"size": 15, "color": "#1b2333"}},
    }]
    return {"data": data, "layout": layout}


def figures(metrics: Metrics, interval: str) -> dict[str, dict[str, Any] | None]:
    """The page's figures by name; {} when the range has no operations (the page shows an empty
    state instead), and None for a chart with nothing to show (no priced tool, no savings)."""
    if not metrics.total.operations:
        return {}
    return {"timeline": timeline(metrics, interval), "operations": operations(metrics, interval),
            "tools": by_tool(metrics), "departments": by_department(metrics)}
