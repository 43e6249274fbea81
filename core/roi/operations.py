"""The operations behind a figure: the audit rows a report counted for a tool, user or department
in a range, each with the baseline and rate in force on its day and the time it saved.

The rows are exactly those the rollup counts (core/roi/rollup.py): not replayed, not an
envelope, not a record of a one-off migration. So the number of rows of a slice equals the
operations the report shows for it, and their savings add up to its figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import QuerySet

from core.audit.models import AuditEntry
from core.roi.history import Rates, rate_history
from core.roi.labels import tool_label
from core.roi.models import Baseline
from core.roi.rollup import ENVELOPE_TOOLS, NOT_COUNTED_VIA


def counted(start: date, end: date, *, tool: str | None = None, user: str | None = None,
            department: str | None = None) -> QuerySet[AuditEntry]:
    """The counted operations of the UTC days start..end, newest first, narrowed to a tool, a
    username or a department code when given ("" for the rows without a user or department)."""
    entries = (AuditEntry.objects.filter(created__gte=datetime.combine(start, time.min, tzinfo=UTC),
                                         created__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
                                         replayed=False)
               .exclude(tool__in=ENVELOPE_TOOLS).exclude(via=NOT_COUNTED_VIA))
    if tool is not None:
        entries = entries.filter(tool=tool)
    if user is not None:
        entries = entries.filter(username=user)
    if department is not None:
        entries = entries.filter(department=department)
    return entries.order_by("-created", "-id")


@dataclass(frozen=True)
class Priced:
    """One operation with what priced it."""

    entry: AuditEntry
    baseline_sec: int | None  # in force on its day; None: the tool had none
    saved_ms: int  # max(0, baseline - duration) when successful, else 0
    rate_cents: int  # the hourly rate applied, in cents

    @property
    def label(self) -> str:
        return tool_label(self.entry.tool)

    @property
    def saved_sec(self) -> Decimal:
        return Decimal(self.saved_ms).scaleb(-3)

    @property
    def hourly_rate(self) -> Decimal:
        return Decimal(self.rate_cents).scaleb(-2)


class Pricer:
    """Looks up the baseline and rate of operations, reading each history once."""

    def __init__(self, rates: Rates | None = None) -> None:
        self.rates = rates or rate_history()
        self.baselines: dict[str, list[tuple[date, int]]] = defaultdict(list)
        for tool, since, seconds in Baseline.objects.order_by("effective_from").values_list(
                "tool", "effective_from", "seconds"):
            self.baselines[tool].append((since, seconds))

    def baseline(self, tool: str, day: date) -> int | None:
        found = None
        for since, seconds in self.baselines.get(tool, ()):
            if since > day:
                break
            found = seconds
        return found

    def price(self, entry: AuditEntry) -> Priced:
        day = entry.created.astimezone(UTC).date()
        baseline = self.baseline(entry.tool, day)
        saved = max(0, (baseline or 0) * 1000 - entry.duration_ms) if entry.success else 0
        return Priced(entry, baseline, saved, self.rates.cents(entry.user_id or 0, entry.department, day))

    def price_all(self, entries: Iterable[AuditEntry]) -> Iterator[Priced]:
        for entry in entries:
            yield self.price(entry)
