"""The figures the ROI page draws (dashboard/roi_charts.py): period axes with one tick per bucket
and its own label, round value ticks from zero (whole numbers for operations), bars for weeks
and months, and no figure at all for a range without operations."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from core.roi.services import roi_metrics
from dashboard import roi_charts
from dashboard.roi_charts import value_axis
from tests.roi.world import at, audit


@pytest.fixture
def autumn(world):
    """Orders in November and December 2025 (and one on 1 January 2026)."""
    for day, user, ms in [("2025-11-03", world.bob, 1_000), ("2025-11-28", world.alice, 2_000),
                          ("2025-12-01", world.bob, 0), ("2025-12-30", world.carol, 5_000),
                          ("2026-01-01", world.dave, 0)]:
        audit("ax_create_salesorder", user, created=at(day), duration_ms=ms)
    audit("ax_create_salesorder", world.bob, created=at("2025-12-02"), success=False)


def test_months_are_bars_with_one_tick_and_label_each(autumn):
    metrics = roi_metrics("2025-11-01", "2026-01-31", "month")
    figure = roi_charts.timeline(metrics, "month")
    saved, cumulative = figure["data"]
    assert saved["type"] == "bar" and cumulative["type"] == "scatter"
    assert saved["x"] == ["2025-11", "2025-12", "2026-01"]
    xaxis = figure["layout"]["xaxis"]
    assert xaxis["type"] == "category" and xaxis["tickmode"] == "array"
    assert xaxis["tickvals"] == saved["x"]
    assert xaxis["ticktext"] == ["Nov 2025", "Dec 2025", "Jan 2026"]
    assert saved["y"] == [float(r.figures.cost_saved) for r in metrics.groups["month"]]
    assert saved["customdata"][0][0] == "November 2025"


def test_weeks_are_bars_labelled_by_their_monday(autumn):
    metrics = roi_metrics("2025-12-01", "2025-12-31", "week")
    figure = roi_charts.timeline(metrics, "week")
    xaxis = figure["layout"]["xaxis"]
    assert figure["data"][0]["type"] == "bar"
    assert xaxis["tickvals"] == ["2025-W49", "2025-W50", "2025-W51", "2025-W52", "2026-W01"]
    assert xaxis["ticktext"] == ["1 Dec<br>2025", "8 Dec", "15 Dec", "22 Dec", "29 Dec"]
    # The last week runs into January: the hover says the range cuts it.
    assert figure["data"][0]["customdata"][-1][0].endswith("only the days in the range")


def test_many_buckets_keep_a_tick_each_and_label_every_nth(world):
    metrics = roi_metrics("2023-01-01", "2025-12-31", "month")  # 36 months
    xaxis = roi_charts.operations(metrics, "month")["layout"]["xaxis"]
    assert len(xaxis["tickvals"]) == 36
    labels = [text for text in xaxis["ticktext"] if text]
    assert labels == ["Jan 2023", "Apr 2023", "Jul 2023", "Oct 2023", "Jan 2024", "Apr 2024", "Jul 2024",
                      "Oct 2024", "Jan 2025", "Apr 2025", "Jul 2025", "Oct 2025"]


def test_days_are_a_line_with_a_label_per_labelled_day(autumn):
    metrics = roi_metrics("2025-12-01", "2025-12-05", "day")
    figure = roi_charts.timeline(metrics, "day")
    xaxis = figure["layout"]["xaxis"]
    assert figure["data"][0]["type"] == "scatter" and xaxis["type"] == "date"
    assert xaxis["tickvals"] == ["2025-12-01", "2025-12-02", "2025-12-03", "2025-12-04", "2025-12-05"]
    assert xaxis["ticktext"] == ["1 Dec<br>2025", "2 Dec", "3 Dec", "4 Dec", "5 Dec"]
    one = roi_charts.timeline(roi_metrics("2025-12-01", "2025-12-01", "day"), "day")["layout"]["xaxis"]
    assert one["tickvals"] == ["2025-12-01"] and one["range"] == ["2025-11-30 12:00", "2025-12-01 12:00"]
    year = roi_charts.timeline(roi_metrics("2025-01-01", "2025-12-31", "day"), "day")["layout"]["xaxis"]
    assert len(year["tickvals"]) == len(year["ticktext"]) <= roi_charts.MAX_LABELS
    assert len(set(year["ticktext"])) == len(year["ticktext"])  # no label twice


def test_value_axes_start_at_zero_with_round_ticks(autumn):
    metrics = roi_metrics("2025-11-01", "2026-01-31", "month")
    layout = roi_charts.timeline(metrics, "month")["layout"]
    for axis, top in ((layout["yaxis"], max(r.figures.cost_saved for r in metrics.groups["month"])),
                      (layout["yaxis2"], metrics.total.cost_saved)):
        assert axis["rangemode"] == "tozero" and axis["tickvals"][0] == 0
        step = Decimal(str(axis["tickvals"][1]))
        assert step / Decimal(10) ** step.adjusted() in (1, 2, Decimal("2.5"), 5)
        assert axis["range"] == [0, axis["tickvals"][-1]] and axis["tickvals"][-1] >= top
    operations = roi_charts.operations(metrics, "month")["layout"]["yaxis"]
    assert operations["tickvals"] == [0, 1, 2, 3] and operations["tickformat"] == ",.0f"  # 3 orders in December


@pytest.mark.parametrize("top, whole, ticks, tickformat", [
    (0, False, [0, 1], ",.0f"),
    (Decimal("0.4"), False, [0, 0.1, 0.2, 0.3, 0.4], ",.1f"),
    (Decimal("2.5"), False, [0, 0.5, 1.0, 1.5, 2.0, 2.5], ",.1f"),
    (19_668, False, [0, 5_000, 10_000, 15_000, 20_000], ",.0f"),
    (Decimal("1234.56"), False, [0, 250, 500, 750, 1_000, 1_250], ",.0f"),
    (1, True, [0, 1], ",.0f"),
    (3, True, [0, 1, 2, 3], ",.0f"),
    (7, True, [0, 2, 4, 6, 8], ",.0f"),
    (0, True, [0, 1], ",.0f"),
])
def test_value_axis(top, whole, ticks, tickformat):
    axis = value_axis(top, whole=whole)
    assert axis["tickvals"] == ticks and axis["tickformat"] == tickformat
    assert axis["range"] == [0, ticks[-1]]


def test_a_range_without_operations_has_no_figures(world):
    assert roi_charts.figures(roi_metrics("2025-06-01", "2025-06-30", "day"), "day") == {}


def test_tools_by_plain_name_and_charts_with_nothing_to_show(world):
    audit("ax_create_salesorder", world.bob, created=at("2025-06-02"), duration_ms=0)
    audit("import.customers", world.bob, created=at("2025-06-02"), duration_ms=0)
    audit("ax_get_roi_metrics", world.bob, created=at("2025-06-02"))  # no baseline: not priced
    charts = roi_charts.figures(roi_metrics("2025-06-01", "2025-06-30", "week"), "week")
    assert charts["tools"]["data"][0]["y"] == ["Create sales order", "Imported customers"]
    assert [c[2] for c in charts["tools"]["data"][0]["customdata"]] == ["ax_create_salesorder", "import.customers"]
    assert charts["departments"] is not None
    audit("ax_get_roi_metrics", world.bob, created=at("2025-07-01"))  # a day of unpriced operations only
    charts = roi_charts.figures(roi_metrics("2025-07-01", "2025-07-01", "day"), "day")
    assert charts["tools"] is None and charts["departments"] is None  # the page says why instead
    assert charts["timeline"]["layout"]["yaxis"]["tickvals"] == [0, 1]


def test_week_labels_name_the_year_where_it_changes(world):
    metrics = roi_metrics(date(2025, 12, 15), date(2025, 12, 15) + timedelta(days=27), "week")
    texts = roi_charts.timeline(metrics, "week")["layout"]["xaxis"]["ticktext"]
    assert texts == ["15 Dec<br>2025", "22 Dec", "29 Dec", "5 Jan<br>2026"]
