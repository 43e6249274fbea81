"""ROI results: exact integer sums inside, figures rounded once, half-up, on the way out.

A group's sums are integers: operations, successful operations, milliseconds saved, and
cost units (milliseconds saved x hourly rate in cents; 3,600,000 units are one cent). Sums
of sums stay exact, so a total never differs from the sum of the audit rows it covers;
only the figures shown are rounded, each from its own exact sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

MS_PER_HOUR = 3_600_000
UNITS_PER_CENT = MS_PER_HOUR  # ms x cents/h -> cents
HOURS_PER_FTE_DAY = 8

ENTITY_GROUPINGS = ("tool", "user", "department")
PERIOD_GROUPINGS = ("day", "week", "month")
GROUPINGS = ENTITY_GROUPINGS + PERIOD_GROUPINGS


def round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up (numerator >= 0, denominator > 0), exactly."""
    return (2 * numerator + denominator) // (2 * denominator)


def _fixed(value: int, places: int) -> Decimal:
    """An integer count of 10**-places units as a Decimal with that many places."""
    return Decimal(value).scaleb(-places)


@dataclass
class Figures:
    operations: int = 0
    successful: int = 0
    saved_ms: int = 0
    cost_units: int = 0

    def add(self, operations: int, successful: int, saved_ms: int, rate_cents: int) -> None:
        self.operations += operations
        self.successful += successful
        self.saved_ms += saved_ms
        self.cost_units += saved_ms * rate_cents

    def merge(self, other: Figures) -> None:
        self.operations += other.operations
        self.successful += other.successful
        self.saved_ms += other.saved_ms
        self.cost_units += other.cost_units

    @property
    def time_saved_hours(self) -> Decimal:
        return _fixed(round_half_up(self.saved_ms, MS_PER_HOUR // 100), 2)

    @property
    def avg_time_saved_sec(self) -> Decimal:
        """Seconds saved per operation, failed operations included (they save nothing)."""
        if not self.operations:
            return _fixed(0, 1)
        return _fixed(round_half_up(self.saved_ms, 100 * self.operations), 1)

    @property
    def cost_saved(self) -> Decimal:
        return _fixed(round_half_up(self.cost_units, UNITS_PER_CENT), 2)

    def as_dict(self, currency: str) -> dict[str, Any]:
        return {
            "operations": self.operations,
            "successful": self.successful,
            "avg_time_saved_sec": self.avg_time_saved_sec,
            "total_time_saved_hours": self.time_saved_hours,
            f"cost_saved_{currency.lower()}": self.cost_saved,
        }


@dataclass
class Row:
    """One entry of a grouping: a tool, user, department, day, ISO week or month."""

    key: str | None  # tool name, username, department code, or the period's label
    figures: Figures = field(default_factory=Figures)
    name: str | None = None  # the department's name
    start: date | None = None  # first day of a period
    baseline_sec: int | None = None  # a tool's baseline in force on the last day of the range

    def as_dict(self, grouping: str, currency: str) -> dict[str, Any]:
        head: dict[str, Any] = {grouping: self.key}
        if grouping == "tool":
            head["baseline_sec"] = self.baseline_sec
        elif grouping == "department":
            head["name"] = self.name
        elif grouping == "week":
            head["week_start"] = self.start.isoformat() if self.start else None
        return {**head, **self.figures.as_dict(currency)}


@dataclass
class Metrics:
    date_from: date
    date_to: date
    group_by: str
    currency: str
    default_hourly_rate: Decimal
    total: Figures
    groups: dict[str, list[Row]]  # grouping -> rows: tool, user, department, and a period if asked
    # Operations of the range not counted, by reason: {"migration": records of one-off migrations}.
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def cost_key(self) -> str:
        return f"cost_saved_{self.currency.lower()}"

    def as_dict(self) -> dict[str, Any]:
        """The shape of ax_get_roi_metrics (story 7.6)."""
        total = self.total
        result: dict[str, Any] = {
            "date_from": self.date_from.isoformat(),
            "date_to": self.date_to.isoformat(),
            "group_by": self.group_by,
            "currency": self.currency,
            "total_operations": total.operations,
            "successful_operations": total.successful,
            "total_time_saved_hours": total.time_saved_hours,
            f"total_cost_saved_{self.currency.lower()}": total.cost_saved,
            "avg_time_saved_sec": total.avg_time_saved_sec,
            "excluded_operations": dict(self.excluded),
        }
        for grouping, rows in self.groups.items():
            result[f"by_{grouping}"] = [row.as_dict(grouping, self.currency) for row in rows]
        return result


# --- figures over a range of days ------------------------------------------------------------

HEADLINES = ("operations", "hours", "money", "fte")


def working_days(start: date, end: date) -> int:
    """Monday to Friday in [start, end]; public holidays are not known to the hub."""
    weeks, rest = divmod((end - start).days + 1, 7)
    tail = (start + timedelta(days=7 * weeks + n) for n in range(rest))
    return 5 * weeks + sum(1 for day in tail if day.weekday() < 5)


def fte(figures: Figures, days: int) -> Decimal | None:
    """Full-time equivalents: hours saved / (8 h x working days), exactly, to two places."""
    if not days:
        return None
    return _fixed(round_half_up(100 * figures.saved_ms, HOURS_PER_FTE_DAY * MS_PER_HOUR * days), 2)


def headline(key: str, figures: Figures, days: int) -> Decimal | int | None:
    """A headline figure (one of HEADLINES) of a range with `days` working days, as shown."""
    if key == "fte":
        return fte(figures, days)
    return {"operations": figures.operations, "hours": figures.time_saved_hours, "money": figures.cost_saved}[key]


def _exact(key: str, figures: Figures, days: int) -> Fraction | None:
    """The headline figure unrounded, in its own units (ms for hours, cost units for money)."""
    if key == "fte":
        return Fraction(figures.saved_ms, days) if days else None
    return Fraction({"operations": figures.operations, "hours": figures.saved_ms, "money": figures.cost_units}[key])


def change(key: str, now: Figures, days: int, before: Figures, days_before: int) -> Decimal | None:
    """Percent change of a headline figure against the range before, to one place, from the exact
    sums rather than the rounded figures; None when there is nothing to compare with."""
    current, previous = _exact(key, now, days), _exact(key, before, days_before)
    if current is None or not previous:
        return None
    percent = 100 * (current - previous) / previous
    return _fixed(round_half_up(abs(percent.numerator) * 10, percent.denominator), 1) * (-1 if percent < 0 else 1)


def share(part: int, whole: int) -> Decimal | None:
    """part as a percent of whole (both >= 0), to one place; None when the whole is 0."""
    return _fixed(round_half_up(1000 * part, whole), 1) if whole else None
