"""ROI metrics for a date range, from the usage rollup (see rollup.py and README "ROI metrics").

For the counted operations of the range (every audit row except replayed calls, batch or
import envelopes, and the records of one-off migrations, which are reported apart):
    time_saved = max(0, baseline - duration)            successful operations only
    cost_saved = time_saved in hours x hourly rate      the user's, else the department's,
                                                        else ROI_DEFAULT_HOURLY_RATE
with the baseline and the rates in force on the operation's UTC day (core/roi/history.py).
The database sums operations, milliseconds saved and milliseconds x rate in cents per tool,
user and department, exactly; each figure is rounded once at the end.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from functools import reduce

from django.conf import settings
from django.db.models import BigIntegerField, F, Q, Sum

from core.accounts.models import Department
from core.errors import ToolError
from core.roi import rollup
from core.roi.figures import ENTITY_GROUPINGS, GROUPINGS, PERIOD_GROUPINGS, Figures, Metrics, Row
from core.roi.history import Rates, baselines_on, rate_history
from core.roi.models import Usage

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


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _split(start: date, end: date) -> tuple[list[date], list[tuple[date, date]]]:
    """The whole months within [start, end] (their first days), and the spans of days outside
    them: whole months are read from the month level, a few rows per user and tool."""
    months: list[date] = []
    days: list[tuple[date, date]] = []
    day = start
    while day <= end:
        month_end = _next_month(day) - timedelta(days=1)
        if day.day == 1 and month_end <= end:
            months.append(day)
        elif days and days[-1][1] == day - timedelta(days=1):
            days[-1] = (days[-1][0], min(month_end, end))
        else:
            days.append((day, min(month_end, end)))
        day = month_end + timedelta(days=1)
    return months, days


def _units(rates: Rates) -> Sum:
    """Cost units of Usage rows: saved ms x the rate in cents in force on the row's period, both
    integers, so the sum is exact on SQLite and PostgreSQL alike."""
    return Sum(F("saved_ms") * rates.expression(), output_field=BigIntegerField())


def _entity_rows(start: date, end: date, rates: Rates) -> Iterator[dict]:
    """Sums per tool, user and department (a key may come more than once: callers add them up)."""
    months, days = _split(start, end)
    split = rates.split_months(start, end)
    plain = [Q(level=Usage.Level.TOOL_DAY, period_start__range=span) for span in days]
    if whole := [month for month in months if month not in split]:
        plain.append(Q(level=Usage.Level.TOOL_MONTH, period_start__in=whole))
    queries = [reduce(operator.or_, plain)] if plain else []
    for month in (month for month in months if month in split):
        # In a month where some rates change after its first day, the operations of those users
        # and departments are read per day, to be priced with each day's rate; the rest per
        # month. Each its own query: in one OR with the others SQLite would scan the table.
        users, departments = split[month]
        changing = Q(user_pk__in=sorted(users)) | Q(department__in=sorted(departments))
        queries.append(Q(level=Usage.Level.TOOL_MONTH, period_start=month) & ~changing)
        days_of_month = (month, _next_month(month) - timedelta(days=1))
        queries.append(Q(level=Usage.Level.TOOL_DAY, period_start__range=days_of_month) & changing)
    for where in queries:
        yield from (Usage.objects.filter(where).values("tool", "user_pk", "username", "department").order_by()
                    .annotate(ops=Sum("operations"), ok=Sum("successful"), saved=Sum("saved_ms"), units=_units(rates)))


def _excluded(start: date, end: date) -> dict[str, int]:
    """Operations of the range ROI leaves out, by reason: records of one-off migrations."""
    migrated = (Usage.objects.filter(level=Usage.Level.MIGRATION_DAY, period_start__range=(start, end))
                .aggregate(ops=Sum("operations"))["ops"])
    return {"migration": int(migrated or 0)}


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
    days = (Usage.objects.filter(level=Usage.Level.DAY, period_start__range=(start, end)).values("period_start")
            .order_by().annotate(ops=Sum("operations"), ok=Sum("successful"), saved=Sum("saved_ms"),
                                 units=_units(rates)))
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
    rates = rate_history()
    baselines = baselines_on(end)
    names = dict(Department.objects.values_list("code", "name"))
    total = Figures()
    entities: dict[str, dict[str | None, Row]] = {g: {} for g in ENTITY_GROUPINGS}
    for s in _entity_rows(start, end, rates):
        ops = int(s["ops"])
        if not ops:
            continue  # only un-counted rows (audit rows deleted) left in this group
        figures = Figures(ops, int(s["ok"]), int(s["saved"]), int(s["units"]))
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
                   default_hourly_rate=Decimal(rates.default).scaleb(-2), total=total, groups=groups,
                   excluded=_excluded(start, end))
