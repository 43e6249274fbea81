"""An independent recomputation of ROI metrics straight from the audit rows, in Python.

Deliberately shares no code with core.roi: it reads AuditEntry row by row, looks up the
baseline and the rate in force on each row's UTC day with the ORM, sums exact fractions and
rounds with Decimal at the end. The tests compare ax_get_roi_metrics against it to the cent.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import Any

from django.conf import settings

from core.audit.models import AuditEntry
from core.roi.models import Baseline, HourlyRate

NOT_COUNTED = {"ax_batch_operations", "ax_bulk_import"}


def _round(value: Fraction, places: str) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        return exact.quantize(Decimal(places), rounding=ROUND_HALF_UP)


class _Sum:
    def __init__(self) -> None:
        self.operations = 0
        self.successful = 0
        self.seconds = Fraction(0)
        self.cost = Fraction(0)

    def figures(self) -> dict[str, Any]:
        avg = self.seconds / self.operations if self.operations else Fraction(0)
        return {"operations": self.operations, "successful": self.successful,
                "avg_time_saved_sec": _round(avg, "0.1"),
                "total_time_saved_hours": _round(self.seconds / 3600, "0.01"),
                "cost_saved_eur": _round(self.cost, "0.01")}


def _latest(entries: list, day: date):
    """The last entry (effective_from, value) with effective_from <= day, by a plain scan."""
    found = None
    for since, value in entries:
        if since <= day:
            found = (since, value)
    return found


def _rate(row: AuditEntry, day: date, users: dict, departments: dict) -> Fraction:
    own = _latest(users.get(row.user_id, []), day)
    if own is not None and own[1] is not None:
        return Fraction(own[1])
    shared = _latest(departments.get(row.department, []), day)
    if shared is not None and shared[1] is not None:
        return Fraction(shared[1])
    return Fraction(Decimal(str(settings.ROI_DEFAULT_HOURLY_RATE)))


def _periods(day: date) -> dict[str, str]:
    iso = day.isocalendar()
    return {"day": day.isoformat(), "week": f"{iso.year}-W{iso.week:02d}", "month": day.strftime("%Y-%m")}


def recompute(date_from: date, date_to: date) -> dict[str, Any]:
    """{"total": figures, "tool"|"user"|"department"|"day"|"week"|"month": {key: figures}}"""
    baselines: dict[str, list] = defaultdict(list)
    for b in Baseline.objects.all():
        baselines[b.tool].append((b.effective_from, b.seconds))
    users: dict[int, list] = defaultdict(list)
    departments: dict[str, list] = defaultdict(list)
    for r in HourlyRate.objects.select_related("department"):
        if r.user_id is not None:
            users[r.user_id].append((r.effective_from, r.rate))
        else:
            departments[r.department.code].append((r.effective_from, r.rate))
    for entries in (*baselines.values(), *users.values(), *departments.values()):
        entries.sort(key=lambda e: e[0])
    start = datetime.combine(date_from, time.min, tzinfo=UTC)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC)
    total = _Sum()
    groups: dict[str, dict[Any, _Sum]] = defaultdict(lambda: defaultdict(_Sum))
    for row in AuditEntry.objects.filter(created__gte=start, created__lt=end).order_by("id"):
        if row.replayed or row.tool in NOT_COUNTED:
            continue
        if row.via == "migration":
            continue  # a one-off migration's record: reported apart
        day = row.created.astimezone(UTC).date()
        saved = Fraction(0)
        if row.success:
            baseline = _latest(baselines.get(row.tool, []), day)
            seconds = baseline[1] if baseline else 0
            saved = max(Fraction(0), Fraction(seconds) - Fraction(row.duration_ms, 1000))
        cost = saved / 3600 * _rate(row, day, users, departments)
        keys = {"tool": row.tool, "user": row.username or None, "department": row.department or None,
                **_periods(day)}
        for target in [total, *(groups[g][k] for g, k in keys.items())]:
            target.operations += 1
            target.successful += 1 if row.success else 0
            target.seconds += saved
            target.cost += cost
    result: dict[str, Any] = {"total": total.figures()}
    for grouping, sums in groups.items():
        result[grouping] = {key: s.figures() for key, s in sums.items()}
    return result


FIGURES = ("operations", "successful", "avg_time_saved_sec", "total_time_saved_hours", "cost_saved_eur")


def from_result(result: dict[str, Any], group_by: str) -> dict[str, Any]:
    """The tool's output in recompute()'s shape: groupings keyed by entry, empty periods left out."""
    total = {"operations": result["total_operations"], "successful": result["successful_operations"],
             "avg_time_saved_sec": result["avg_time_saved_sec"],
             "total_time_saved_hours": result["total_time_saved_hours"],
             "cost_saved_eur": result["total_cost_saved_eur"]}
    out: dict[str, Any] = {"total": total}
    for grouping in ("tool", "user", "department", group_by):
        entries = result[f"by_{grouping}"]
        out[grouping] = {e[grouping]: {f: e[f] for f in FIGURES} for e in entries if e["operations"]}
    return out


def expected_for(date_from: date, date_to: date, group_by: str) -> dict[str, Any]:
    full = recompute(date_from, date_to)
    return {k: full.get(k, {}) for k in ("total", "tool", "user", "department", group_by)}
