"""The effective-dated values ROI prices operations with: baselines per tool, hourly rates per
user and per department.

Each value is in force from its effective_from (a UTC day) until the next value of the same
tool, user or department, and every operation is priced with the values in force on its day.
So a change effective tomorrow leaves every figure up to today as it was, and a stakeholder can
say which value priced which day.

Baselines are part of the rollup (saved_ms is summed with the baseline of each row's day):
saving one recomputes its tool from the first day it affects (core/roi/signals.py). Rates are
applied when a report is read (core/roi/services.py), so a rate change recomputes nothing.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import BigIntegerField, Case, Q, Value, When
from django.utils import timezone

from core.accounts.models import Department, Profile
from core.db import write_slot
from core.errors import ToolError
from core.roi import rollup
from core.roi.models import FROM_THE_START, Baseline, HourlyRate


def today() -> date:
    """Today as a UTC day: ROI counts in UTC days (TIME_ZONE is UTC)."""
    return timezone.now().date()


def check_not_frozen(day: date, field: str = "effective_from") -> None:
    """Refuse a value for days whose audit rows were pruned: their figures are final."""
    horizon = rollup.current_horizon()
    if horizon is not None and day < horizon:
        raise ToolError("VALIDATION_ERROR", f"{field}: audit rows before {horizon} were pruned, so their figures "
                        f"are final; choose {horizon} or later", field=field)


# --- Baselines


@dataclass(frozen=True)
class BaselineHistory:
    """One tool's baselines, oldest first, and the one in force on a given day (None: none yet)."""

    tool: str
    entries: list[Baseline]
    in_force: Baseline | None


def baselines_on(day: date) -> dict[str, int]:
    """Each tool's baseline seconds in force on `day` (tools without one then are left out)."""
    in_force: dict[str, int] = {}
    for tool, seconds in (Baseline.objects.filter(effective_from__lte=day).order_by("tool", "effective_from")
                          .values_list("tool", "seconds")):
        in_force[tool] = seconds  # the latest of each tool wins
    return in_force


def baseline_histories(tool: str | None = None, day: date | None = None) -> list[BaselineHistory]:
    """Every tool's history (or one tool's), by tool name; in_force as of `day` (default today)."""
    day = day or today()
    entries = Baseline.objects.order_by("tool", "effective_from")
    if tool is not None:
        entries = entries.filter(tool=tool.strip())
    by_tool: dict[str, list[Baseline]] = defaultdict(list)
    for entry in entries:
        by_tool[entry.tool].append(entry)
    return [BaselineHistory(name, rows, next((b for b in reversed(rows) if b.effective_from <= day), None))
            for name, rows in by_tool.items()]


def set_baseline(tool: str, seconds: int, note: str | None = None,
                 effective_from: date | None = None) -> tuple[Baseline, bool]:
    """Give `tool` (the name as audited) the baseline `seconds` from `effective_from` (default
    today) until its next value, if any; returns the entry and whether it is new. An entry of
    the same day is changed. A new entry without a note keeps the note of the value before it.
    Saving it recomputes that tool's figures from its first day on (core/roi/signals.py)."""
    tool = tool.strip()
    if not tool:
        raise ToolError("MISSING_FIELD", "tool must not be blank", field="tool")
    day = effective_from or today()
    check_not_frozen(day)
    baseline = Baseline.objects.filter(tool=tool, effective_from=day).first()
    created = baseline is None
    if created:
        if note is None:
            before = Baseline.objects.filter(tool=tool, effective_from__lt=day).order_by("-effective_from").first()
            note = before.note if before else ""
        baseline = Baseline(tool=tool, effective_from=day, seconds=seconds, note=note)
    elif baseline.seconds == seconds and (note is None or baseline.note == note):
        return baseline, False
    else:
        baseline.seconds = seconds
        if note is not None:
            baseline.note = note
    with write_slot():
        baseline.save()
    return baseline, created


# --- Hourly rates

Span = tuple[date, int | None]  # (effective_from, cents per hour; None: no rate of its own from then)


def to_cents(rate: Decimal | int | str, what: str = "hourly rate") -> int:
    cents = Decimal(str(rate)) * 100
    if not cents.is_finite() or cents < 0 or cents != cents.to_integral_value():
        raise ImproperlyConfigured(f"{what} must be a non-negative amount with at most two decimals, got {rate!r}")
    return int(cents)


def _on(spans: tuple[Span, ...], day: date) -> int | None:
    index = bisect_right([since for since, _cents in spans], day) - 1
    return spans[index][1] if index >= 0 else None


def _intervals(spans: tuple[Span, ...]):
    """(since, until or None, cents) of each span that has a rate."""
    for n, (since, cents) in enumerate(spans):
        if cents is not None:
            yield since, spans[n + 1][0] if n + 1 < len(spans) else None, cents


@dataclass(frozen=True)
class Rates:
    """Hourly rates in cents, each subject's history oldest first: per user id, per department
    code, and the default (ROI_DEFAULT_HOURLY_RATE, not dated)."""

    users: dict[int, tuple[Span, ...]]
    departments: dict[str, tuple[Span, ...]]
    default: int

    def cents(self, user_pk: int, department: str, day: date) -> int:
        """The rate of an operation on `day`: the user's then, else the department's, else the default."""
        own = _on(self.users.get(user_pk, ()), day)
        if own is not None:
            return own
        shared = _on(self.departments.get(department, ()), day)
        return self.default if shared is None else shared

    def expression(self) -> Case:
        """The same resolution in SQL, over Usage's user_pk, department and period_start: one
        branch per distinct (span, rate), so it stays short however many users have their own.
        A month row (period_start its first day) is priced right only if no rate changes within
        the month: see split_months()."""
        users: dict[tuple, list[int]] = defaultdict(list)
        for pk, spans in self.users.items():
            for interval in _intervals(spans):
                users[interval].append(pk)
        departments: dict[tuple, list[str]] = defaultdict(list)
        for code, spans in self.departments.items():
            for interval in _intervals(spans):
                departments[interval].append(code)
        branches = [When(Q(user_pk__in=sorted(pks)) & _during(since, until), then=Value(cents))
                    for (since, until, cents), pks in sorted(users.items(), key=_order)]
        branches += [When(Q(department__in=sorted(codes)) & _during(since, until), then=Value(cents))
                     for (since, until, cents), codes in sorted(departments.items(), key=_order)]
        return Case(*branches, default=Value(self.default), output_field=BigIntegerField())

    def split_months(self, start: date, end: date) -> dict[date, tuple[set[int], set[str]]]:
        """The months (their first days) within [start, end] in which a rate changes after the
        first day, with the users and departments whose rate changes then: their operations in
        that month must be priced per day, not per month."""
        months: dict[date, tuple[set[int], set[str]]] = {}
        first = start.replace(day=1)
        for kind, histories in ((0, self.users), (1, self.departments)):
            for subject, spans in histories.items():
                for since, _cents in spans:
                    if since.day != 1 and first <= since <= end:
                        months.setdefault(since.replace(day=1), (set(), set()))[kind].add(subject)
        return months


def _order(item: tuple) -> tuple:
    (since, until, cents), _subjects = item
    return since, until or date.max, cents


def _during(since: date, until: date | None) -> Q:
    during = Q() if since <= FROM_THE_START else Q(period_start__gte=since)
    return during & Q(period_start__lt=until) if until is not None else during


def rate_history() -> Rates:
    users: dict[int, list[Span]] = defaultdict(list)
    departments: dict[str, list[Span]] = defaultdict(list)
    for user_id, code, since, rate in (HourlyRate.objects.order_by("effective_from", "pk")
                                       .values_list("user_id", "department__code", "effective_from", "rate")):
        cents = None if rate is None else to_cents(rate)
        if user_id is not None:
            users[user_id].append((since, cents))
        else:
            departments[code].append((since, cents))
    return Rates(users={pk: tuple(spans) for pk, spans in users.items()},
                 departments={code: tuple(spans) for code, spans in departments.items()},
                 default=to_cents(settings.ROI_DEFAULT_HOURLY_RATE, "ROI_DEFAULT_HOURLY_RATE"))


def _subject(user_id: int | None, department_id: int | None) -> Q:
    return Q(user_id=user_id) if user_id is not None else Q(department_id=department_id)


def set_rate(*, user_id: int | None = None, department_id: int | None = None, rate: Decimal | None,
             effective_from: date | None = None, note: str | None = None) -> HourlyRate:
    """Give a user or a department the hourly `rate` (None: none of its own) from
    `effective_from` (default today) on; an entry of the same day is changed."""
    day = effective_from or today()
    entry = HourlyRate.objects.filter(_subject(user_id, department_id), effective_from=day).first()
    if entry is None:
        entry = HourlyRate(user_id=user_id, department_id=department_id, effective_from=day)
    entry.rate = rate
    if note is not None:
        entry.note = note
    entry.save()
    return entry


def account_rate_changed(*, user_id: int | None = None, department_id: int | None = None,
                         rate: Decimal | None) -> None:
    """Profile.hourly_rate or Department.hourly_rate was saved with a new value. The first rate
    of a subject without a history opens it, in force from the start (a user or department set
    up with its rate); a later change there is in force from today. A change from another day
    is made in the rate history itself (the Django admin's ROI > Hourly rates)."""
    if HourlyRate.objects.filter(_subject(user_id, department_id)).exists():
        set_rate(user_id=user_id, department_id=department_id, rate=rate)
    elif rate is not None:
        set_rate(user_id=user_id, department_id=department_id, rate=rate, effective_from=FROM_THE_START)


def rate_in_force(*, user_id: int | None = None, department_id: int | None = None,
                  day: date | None = None) -> Decimal | None:
    entry = (HourlyRate.objects.filter(_subject(user_id, department_id), effective_from__lte=day or today())
             .order_by("-effective_from").first())
    return entry.rate if entry else None


def show_rate_on_account(*, user_id: int | None = None, department_id: int | None = None) -> None:
    """Keep Profile.hourly_rate / Department.hourly_rate showing the rate in force today, with an
    UPDATE (no signal: the history is already written)."""
    current = rate_in_force(user_id=user_id, department_id=department_id)
    if user_id is not None:
        Profile.objects.filter(user_id=user_id).update(hourly_rate=current)
    elif department_id is not None:
        Department.objects.filter(pk=department_id).update(hourly_rate=current)
