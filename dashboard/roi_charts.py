"""The ROI page's Plotly figures, built here as plain data and drawn by static/js/roi.js.

The page embeds them with the json_script filter, so no user text ever reaches a script as
code. Plotly reads a little HTML in its labels (<b>, <a href>, <br>), so tool, user and
department names are HTML-escaped first: Plotly then shows them exactly as typed.
Labels use no <b> or <i>: Plotly draws those with style="" attributes, which the page's
Content-Security-Policy refuses.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from html import escape
from typing import Any

from core.roi.figures import Metrics, Row

TOP_TOOLS = 12
ACCENT, ACCENT_SOFT, OK = "#1d5fc4", "#9dbbe8", "#1e7a3c"
PALETTE = ["#1d5fc4", "#1e7a3c", "#c27803", "#7c3aed", "#0e7490", "#b42318", "#64748b", "#be185d", "#4d7c0f",
           "#9a3412"]
FONT = {"family": 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif', "size": 12,
        "color": "#1b2333"}


def _money(value: Decimal) -> float:
    return float(value)


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


def _empty(layout: dict[str, Any], text: str) -> dict[str, Any]:
    layout["annotations"] = [{"text": text, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5,
                              "y": 0.5, "font": {"size": 14, "color": "#5f6b7e"}}]
    layout["xaxis"] = {**layout.get("xaxis", {}), "visible": False}
    layout["yaxis"] = {**layout.get("yaxis", {}), "visible": False}
    return layout


def timeline(metrics: Metrics, interval: str) -> dict[str, Any]:
    """Money saved per day, week or month (line), and the running total on the right axis."""
    rows = metrics.groups[interval]
    currency = metrics.currency
    x = [(row.start or date.min).isoformat() for row in rows]
    saved = [_money(row.figures.cost_saved) for row in rows]
    running, cumulative = Decimal(0), []
    for row in rows:
        running += row.figures.cost_saved
        cumulative.append(_money(running))
    custom = [[row.key, float(row.figures.time_saved_hours), row.figures.operations] for row in rows]
    hover = (f"%{{customdata[0]}}<br>%{{y:,.2f}} {currency} saved<br>%{{customdata[1]:,.2f}} h saved"
             "<br>%{customdata[2]:,} operations<extra></extra>")
    tickformat = {"day": "%d %b", "week": "%d %b", "month": "%b %Y"}[interval]
    data = [
        {"type": "scatter", "mode": "lines+markers" if len(rows) <= 62 else "lines", "name": f"Saved per {interval}",
         "x": x, "y": saved, "customdata": custom, "hovertemplate": hover,
         "line": {"color": ACCENT, "width": 2.5, "shape": "linear"}, "marker": {"size": 6},
         "fill": "tozeroy", "fillcolor": "rgba(29,95,196,0.08)"},
        {"type": "scatter", "mode": "lines", "name": "Cumulative", "x": x, "y": cumulative, "yaxis": "y2",
         "hovertemplate": f"%{{y:,.2f}} {currency} in total<extra>Cumulative</extra>",
         "line": {"color": OK, "width": 1.5, "dash": "dot"}},
    ]
    layout = _layout(
        margin={"l": 64, "r": 72, "t": 12, "b": 40}, hovermode="x unified", showlegend=True,
        legend={"orientation": "h", "x": 0, "y": 1.12, "xanchor": "left"},
        xaxis={"type": "date", "tickformat": tickformat, "gridcolor": "#eef1f5", "fixedrange": True},
        yaxis={"title": {"text": f"Saved per {interval} ({currency})"}, "rangemode": "tozero",
               "gridcolor": "#eef1f5", "tickformat": ",.0f", "fixedrange": True},
        yaxis2={"title": {"text": f"Cumulative ({currency})"}, "overlaying": "y", "side": "right",
                "rangemode": "tozero", "showgrid": False, "tickformat": ",.0f", "fixedrange": True},
    )
    return {"data": data, "layout": layout}


def _top(rows: list[Row], limit: int) -> tuple[list[Row], Row | None]:
    if len(rows) <= limit:
        return rows, None
    rest = Row(f"{len(rows) - limit + 1} other tools")
    for row in rows[limit - 1:]:
        rest.figures.merge(row.figures)
    return rows[:limit - 1], rest


def by_tool(metrics: Metrics) -> dict[str, Any]:
    """Money saved per tool, the largest on top; beyond TOP_TOOLS the rest as one bar."""
    rows, rest = _top(metrics.groups["tool"], TOP_TOOLS)
    labels = [_label(row.key, "(unknown tool)") for row in rows] + ([rest.key] if rest else [])
    figures = [row.figures for row in rows] + ([rest.figures] if rest else [])
    layout = _layout(
        height=max(300, 46 + 30 * len(labels)), margin={"l": 12, "r": 24, "t": 8, "b": 40},
        xaxis={"title": {"text": f"Saved ({metrics.currency})"}, "tickformat": ",.0f", "gridcolor": "#eef1f5",
               "rangemode": "tozero", "fixedrange": True},
        yaxis={"autorange": "reversed", "automargin": True, "fixedrange": True, "ticksuffix": "  "},
        bargap=0.35,
    )
    if not labels:
        return {"data": [], "layout": _empty(layout, "No operations in this range")}
    data = [{
        "type": "bar", "orientation": "h", "y": labels, "x": [_money(f.cost_saved) for f in figures],
        "customdata": [[float(f.time_saved_hours), f.operations] for f in figures],
        "hovertemplate": (f"%{{y}}<br>%{{x:,.2f}} {metrics.currency} saved<br>%{{customdata[0]:,.2f}} h"
                          " saved<br>%{customdata[1]:,} operations<extra></extra>"),
        "marker": {"color": [ACCENT] * len(rows) + ([ACCENT_SOFT] if rest else [])},
    }]
    return {"data": data, "layout": layout}


def by_department(metrics: Metrics) -> dict[str, Any]:
    """Each department's share of the money saved (a donut), with the total in its hole."""
    rows = [row for row in metrics.groups["department"] if row.figures.cost_units > 0]
    # The legend goes under the donut, so the chart keeps its size in a narrow column or on a phone.
    layout = _layout(height=320, margin={"l": 8, "r": 8, "t": 8, "b": 8}, showlegend=True,
                     legend={"orientation": "h", "x": 0.5, "xanchor": "center", "y": -0.02, "yanchor": "top"})
    if not rows:
        return {"data": [], "layout": _empty(layout, "No savings in this range")}
    labels = [f"{_label(row.name, row.key or '')} ({_label(row.key, '')})" if row.name and row.key
              else _label(row.key, "No department") for row in rows]
    data = [{
        "type": "pie", "hole": 0.55, "labels": labels, "values": [_money(row.figures.cost_saved) for row in rows],
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


def figures(metrics: Metrics, interval: str) -> dict[str, dict[str, Any]]:
    return {"timeline": timeline(metrics, interval), "tools": by_tool(metrics), "departments": by_department(metrics)}
