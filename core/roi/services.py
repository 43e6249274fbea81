"""ROI metrics for a date range, from the usage rollup (see rollup.py and README "ROI metrics").

For the counted operations of the range (every audit row except replayed calls and batch or
import envelopes):
    time_saved = max(0, baseline - duration)            successful operations only
    cost_saved = time_saved in hours x hourly rate      the user's, else the department's,
                                                        else ROI_DEFAULT_HOURLY_RATE
The database sums operations and milliseconds saved per tool, user and department; rates
are applied to those sums, exactly, and each figure is rounded once at the end.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import reduce

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import BigIntegerField, Case, F, Q, Sum, Value, When

from core.accounts.models import Department, Profile
from core.db import write_slot
from core.errors import ToolError
from core.roi import rollup
from core.roi.figures import ENTITY_GROUPINGS, GROUPINGS, PERIOD_GROUPINGS, Figures, Metrics, Row
from core.roi.models import Baseline, Usage

# Three years, whichever three: 3 x 365 days plus a leap day.
MAX_RANGE_DAYS = 3 * 365 + 1
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# Periods are computed a month past the range; far-future years would overflow date.
MIN_YEAR, MAX_YEAR = 1970, 2999


def parse_date(value: date | str, field: str) -> date:
    if isinstance(value, date) and MIN_YEAR <= value.year <= MAX_YEAR:
        return value
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and MIN_YEAR <= parsed.year <= MAX_YEAR:
            return parsed
    raise ToolError("VALIDATION_ERROR", f"{field}: {value!r} is not a date (YYYY-MM-DD, years {MIN_YEAR}-{MAX_YEAR})",
                    field=field)


def parse_range(date_from: date | str, date_to: date | str) -> tuple[date, date]:
    """The inclusive range, checked: date_to not before date_from, at most three years."""
    start, end = parse_date(date_from, "date_from"), parse_date(date_to, "date_to")
    if end < start:
        raise ToolError("VALIDATION_ERROR", "date_to: must not be before date_from", field="date_to")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ToolError("VALIDATION_ERROR", f"date_to: the range may span at most {MAX_RANGE_DAYS} days "
                        "(three years)", field="date_to")
    return start, end


def to_cents(rate: Decimal | int | str, what: str = "hourly rate") -> int:
    cents = Decimal(str(rate)) * 100
    if not cents.is_finite() or cents < 0 or cents != cents.to_integral_value():
        raise ImproperlyConfigured(f"{what} must be a non-negative amount with at most two decimals, got {rate!r}")
    return int(cents)


@dataclass(frozen=True)
class Rates:
    """Hourly rates in cents: per user id, per department code, and the default."""

    users: dict[int, int]
    departments: dict[str, int]
    default: int

    def cents(self, user_pk: int, department: str) -> int:
        if user_pk in self.users:
            return self.users[user_pk]
        return self.departments.get(department, self.default)

    def expression(self) -> Case:
        """The same resolution in SQL, over Usage's user_pk and department: one branch per
        distinct rate, so it stays short however many users have their own."""
        users: dict[int, list[int]] = {}
        for pk, cents in self.users.items():
            users.setdefault(cents, []).append(pk)
        departments: dict[int, list[str]] = {}
        for code, cents in self.departments.items():
            departments.setdefault(cents, []).append(code)
        return Case(*(When(user_pk__in=sorted(pks), then=Value(cents)) for cents, pks in sorted(users.items())),
                    *(When(department__in=sorted(codes), then=Value(cents))
                      for cents, codes in sorted(departments.items())),
                    default=Value(self.default), output_field=BigIntegerField())


def current_rates() -> Rates:
    users = Profile.objects.filter(hourly_rate__isnull=False).values_list("user_id", "hourly_rate")
    departments = Department.objects.filter(hourly_rate__isnull=False).values_list("code", "hourly_rate")
    return Rates(users={pk: to_cents(rate) for pk, rate in users},
                 departments={code: to_cents(rate) for code, rate in departments},
                 default=to_cents(settings.ROI_DEFAULT_HOURLY_RATE, "ROI_DEFAULT_HOURLY_RATE"))


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _split(start: date, end: date) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
    """The whole months within [start, end] (first days of the first and last), and the days
    outside them: whole months are read from the month level, a few rows per user and tool."""
    first = start if start.day == 1 else _next_month(start)
    after = _next_month(end) if _next_month(end) - timedelta(days=1) == end else _month_start(end)
    if first >= after:
        return None, [(start, end)]
    days = []
    if start < first:
        days.append((start, first - timedelta(days=1)))
    if after <= end:
        days.append((after, end))
    return (first, _month_start(after - timedelta(days=1))), days


def _sums(queryset, *keys: str):
    return (queryset.values(*keys).order_by()
            .annotate(ops=Sum("operations"), ok=Sum("successful"), saved=Sum("saved_ms")))


def _entity_rows(start: date, end: date):
    months, days = _split(start, end)
    parts = [Q(level=Usage.Level.TOOL_DAY, period_start__range=span) for span in days]
    if months:
        parts.append(Q(level=Usage.Level.TOOL_MONTH, period_start__range=months))
    return _sums(Usage.objects.filter(reduce(operator.or_, parts)), "tool", "user_pk", "username", "department")


def _period_key(grouping: str, day: date) -> tuple[str, date]:
    if grouping == "day":
        return day.isoformat(), day
    if grouping == "week":
        iso = day.isocalendar()
        return f"{iso.year}-W{iso.week:02d}", day - timedelta(days=day.weekday())
    return f"{day.year}-{day.month:02d}", day.replace(day=1)


def _period_rows(grouping: str, start: date, end: date, rates: Rates) -> list[Row]:
    rows: dict[str, Row] = {}
    day = start
    while day <= end:  # every period of the range, also those without operations
        key, first = _period_key(grouping, day)
        rows.setdefault(key, Row(key, start=first))
        day += timedelta(days=1)
    # Per day, with the cost summed in the database: saved ms x the row's rate in cents, both
    # integers, so the sum is exact on SQLite and PostgreSQL alike.
    days = (Usage.objects.filter(level=Usage.Level.DAY, period_start__range=(start, end)).values("period_start")
            .order_by().annotate(ops=Sum("operations"), ok=Sum("successful"), saved=Sum("saved_ms"),
                                 units=Sum(F("saved_ms") * rates.expression(), output_field=BigIntegerField())))
    for s in days:
        key, _first = _period_key(grouping, s["period_start"])
        figures = rows[key].figures
        figures.operations += int(s["ops"])
        figures.successful += int(s["ok"])
        figures.saved_ms += int(s["saved"])
        figures.cost_units += int(s["units"])
    return list(rows.values())


def _ranked(rows: dict[str | None, Row]) -> list[Row]:
    """Largest saving first; ties by name, so the order is stable."""
    return sorted(rows.values(), key=lambda r: (-r.figures.cost_units, -r.figures.saved_ms,
                                                -r.figures.operations, r.key or ""))


def roi_metrics(date_from: date | str, date_to: date | str, group_by: str = "tool") -> Metrics:
    """ROI figures of the operations audited from date_from to date_to inclusive (UTC days):
    totals, by tool, by user and by department, and by day, week or month when group_by
    asks for it."""
    start, end = parse_range(date_from, date_to)
    if group_by not in GROUPINGS:
        raise ToolError("VALIDATION_ERROR", f"group_by: must be one of {', '.join(GROUPINGS)}", field="group_by")
    # One transaction: the rollup is brought up to the last committed audit row, and every
    # grouping is read from that same state.
    with rollup.write_transaction():
        rollup.fold()
        return _metrics(start, end, group_by)


def previous_period(start: date, end: date) -> Metrics | None:
    """Figures by tool of the range of the same length just before [start, end], to compare a
    range with; None when that range would begin before the calendar does."""
    try:
        before = start - timedelta(days=(end - start).days + 1)
    except OverflowError:
        return None
    return roi_metrics(before, start - timedelta(days=1), "tool")


def _metrics(start: date, end: date, group_by: str) -> Metrics:
    rates = current_rates()
    baselines = dict(Baseline.objects.values_list("tool", "seconds"))
    names = dict(Department.objects.values_list("code", "name"))
    total = Figures()
    entities: dict[str, dict[str | None, Row]] = {g: {} for g in ENTITY_GROUPINGS}
    for s in _entity_rows(start, end):
        ops, ok, saved = int(s["ops"]), int(s["ok"]), int(s["saved"])
        if not ops:
            continue  # only un-counted rows (audit rows deleted) left in this group
        figures = Figures()
        figures.add(ops, ok, saved, rates.cents(s["user_pk"], s["department"]))
        total.merge(figures)
        tool, user, department = s["tool"], s["username"] or None, s["department"] or None
        entities["tool"].setdefault(tool, Row(tool, baseline_sec=baselines.get(tool))).figures.merge(figures)
        entities["user"].setdefault(user, Row(user)).figures.merge(figures)
        entities["department"].setdefault(department, Row(department, name=names.get(department or ""))
                                          ).figures.merge(figures)
    groups = {grouping: _ranked(rows) for grouping, rows in entities.items()}
    if group_by in PERIOD_GROUPINGS:
        groups[group_by] = _period_rows(group_by, start, end, rates)
    return Metrics(date_from=start, date_to=end, group_by=group_by, currency=settings.ROI_CURRENCY,
                   default_hourly_rate=Decimal(rates.default).scaleb(-2), total=total, groups=groups)


def set_baseline(tool: str, seconds: int, note: str | None = None) -> tuple[Baseline, bool]:
    """Create or change the baseline of `tool` (the name as audited); returns it and whether it
    is new. Saving it recomputes that tool's figures (core/roi/signals.py)."""
    tool = tool.strip()
    if not tool:
        raise ToolError("MISSING_FIELD", "tool must not be blank", field="tool")
    baseline = Baseline.objects.filter(tool=tool).first()
    created = baseline is None
    if created:
        baseline = Baseline(tool=tool, seconds=seconds, note=note or "")
    elif baseline.seconds == seconds and (note is None or baseline.note == note):
        return baseline, False
    else:
        baseline.seconds = seconds
        if note is not None:
            baseline.note = note
    with write_slot():
        baseline.save()
    return baseline, created
