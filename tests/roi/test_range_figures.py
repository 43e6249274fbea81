"""What the ROI report computes from a range's figures: working days, FTE, the change against
the range before and each row's share, exactly and rounded half-up once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.roi.figures import HEADLINES, MS_PER_HOUR, Figures, change, fte, headline, share, working_days


def test_working_days_count_monday_to_friday():
    assert working_days(date(2025, 3, 3), date(2025, 3, 9)) == 5  # Monday to Sunday
    assert working_days(date(2025, 3, 8), date(2025, 3, 9)) == 0  # a weekend
    assert working_days(date(2025, 3, 1), date(2025, 3, 31)) == 21
    assert working_days(date(2025, 3, 5), date(2025, 3, 5)) == 1


def test_fte_is_hours_saved_over_eight_hours_a_working_day():
    saved = Figures(saved_ms=84 * MS_PER_HOUR)  # 84 hours
    assert fte(saved, 21) == Decimal("0.50")  # 84 h / (8 h x 21 days)
    assert fte(Figures(saved_ms=1 * MS_PER_HOUR), 3) == Decimal("0.04")  # 0.041666… rounded once
    assert fte(saved, 0) is None


def test_headlines_are_the_figures_as_shown():
    figures = Figures(operations=3, successful=2, saved_ms=5_400_000, cost_units=5_400_000 * 5000)
    assert [headline(key, figures, 5) for key in HEADLINES] == [3, Decimal("1.50"), Decimal("75.00"),
                                                               Decimal("0.04")]


def test_the_change_comes_from_the_exact_sums_not_the_rounded_figures():
    before, now = Figures(saved_ms=3), Figures(saved_ms=4)  # both 0.00 h when rounded
    assert change("hours", now, 5, before, 5) == Decimal("33.3")
    assert change("operations", Figures(operations=1), 5, Figures(operations=2), 5) == Decimal("-50.0")
    assert change("money", Figures(cost_units=1), 5, Figures(), 5) is None  # nothing to compare with
    # FTE compares hours per working day: the same hours over twice the days is half the FTE.
    assert change("fte", now, 10, now, 5) == Decimal("-50.0")
    assert change("fte", now, 0, now, 5) is None


@pytest.mark.parametrize("part, whole, percent", [(1, 3, Decimal("33.3")), (2, 3, Decimal("66.7")),
                                                  (1, 2000, Decimal("0.1")), (0, 5, Decimal("0.0")),
                                                  (5, 5, Decimal("100.0")), (0, 0, None)])
def test_a_share_is_a_percent_to_one_place(part, whole, percent):
    assert share(part, whole) == percent
