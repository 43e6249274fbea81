"""Forms of the ROI pages: the report's range and groupings, and one manual baseline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from core.roi.figures import PERIOD_GROUPINGS
from core.roi.models import MAX_BASELINE_SECONDS, Baseline
from core.roi.services import MAX_RANGE_DAYS

DEFAULT_DAYS = 30
DEFAULT_TABLE = "tool"
INTERVAL_LABELS = {"day": "Day", "week": "Week", "month": "Month"}
TABLE_LABELS = {"tool": "Tool", "user": "User", "department": "Department", "day": "Day", "week": "Week",
                "month": "Month"}


def today() -> date:
    """Today as a UTC day: the ROI engine counts in UTC days."""
    return timezone.now().date()


def auto_interval(start: date, end: date) -> str:
    """The time series' interval when none is asked for: about 10 to 60 points on the chart."""
    days = (end - start).days + 1
    if days <= 62:
        return "day"
    return "week" if days <= 366 else "month"


# Bounds for the date fields: far from date.min and date.max, where the periods around a range
# (the month after it, the period before it) would no longer be dates.
EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)
DATE_ATTRS = {"type": "date", "min": EARLIEST.isoformat(), "max": LATEST.isoformat()}


@dataclass(frozen=True)
class Preset:
    label: str
    start: date
    end: date


def presets(day: date | None = None) -> list[Preset]:
    day = day or today()
    first = day.replace(day=1)
    last_month_end = first - timedelta(days=1)
    return [
        Preset("Last 30 days", day - timedelta(days=DEFAULT_DAYS - 1), day),
        Preset("This month", first, day),
        Preset("Last month", last_month_end.replace(day=1), last_month_end),
        Preset("Last 90 days", day - timedelta(days=89), day),
        Preset("Year to date", day.replace(month=1, day=1), day),
    ]


class RoiForm(forms.Form):
    """GET parameters of the ROI report; each may be left out for its default.

    group_by is the interval of the savings-over-time chart (the engine's group_by), `table`
    the grouping of the table under the charts.
    """

    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs=DATE_ATTRS))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs=DATE_ATTRS))
    group_by = forms.ChoiceField(required=False, label="Over time by",
                                 choices=[("", "Auto"), *INTERVAL_LABELS.items()])
    table = forms.ChoiceField(required=False, label="Table by", choices=list(TABLE_LABELS.items()))

    def _clean_day(self, name: str) -> date | None:
        value = self.cleaned_data.get(name)
        if value is not None and not EARLIEST <= value <= LATEST:
            raise forms.ValidationError(f"Choose a date from {EARLIEST} to {LATEST}.")
        return value

    def clean_date_from(self) -> date | None:
        return self._clean_day("date_from")

    def clean_date_to(self) -> date | None:
        return self._clean_day("date_to")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        end = data.get("date_to") or today()
        start = data.get("date_from") or end - timedelta(days=DEFAULT_DAYS - 1)
        if "date_from" in self.errors or "date_to" in self.errors:
            return data
        if end < start:
            self.add_error("date_to", "The end date is before the start date.")
        elif (end - start).days + 1 > MAX_RANGE_DAYS:
            self.add_error("date_to", f"A report spans at most {MAX_RANGE_DAYS} days (three years).")
        data["date_from"], data["date_to"] = start, end
        data["interval"] = data.get("group_by") or auto_interval(start, end)
        data["table"] = data.get("table") or DEFAULT_TABLE
        return data

    @property
    def range(self) -> tuple[date, date]:
        return self.cleaned_data["date_from"], self.cleaned_data["date_to"]

    @property
    def interval(self) -> str:
        return self.cleaned_data["interval"]

    @property
    def grouping(self) -> str:
        """The table's grouping."""
        return self.cleaned_data["table"]

    def query(self) -> dict[str, str]:
        """The view's parameters with every default filled in, for export links; after is_valid()."""
        start, end = self.range
        query = {"date_from": start.isoformat(), "date_to": end.isoformat(), "table": self.grouping}
        if self.cleaned_data.get("group_by"):
            query["group_by"] = self.cleaned_data["group_by"]
        return query

    def for_display(self) -> RoiForm:
        """The same form with every default written in, so the controls show what the figures
        are for, and "Auto" names the interval it chose; after is_valid()."""
        shown = RoiForm({**self.query(), "group_by": self.cleaned_data.get("group_by", "")})
        shown.is_valid()
        shown.fields["group_by"].choices = [("", f"Auto ({self.interval})"), *INTERVAL_LABELS.items()]
        return shown

    def groupings(self) -> list[str]:
        """The engine's group_by values this view needs: the chart's interval, and the table's
        period when it is another one."""
        needed = [self.interval]
        if self.grouping in PERIOD_GROUPINGS and self.grouping != self.interval:
            needed.append(self.grouping)
        return needed


class BaselineForm(forms.ModelForm):
    """One tool's manual time; the tool name is fixed once the baseline exists."""

    class Meta:
        model = Baseline
        fields = ["tool", "seconds", "note"]
        widgets = {"seconds": forms.NumberInput(attrs={"min": 0, "max": MAX_BASELINE_SECONDS, "step": 1}),
                   "note": forms.TextInput(attrs={"placeholder": "what the manual work consists of"})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            del self.fields["tool"]
        else:
            self.fields["tool"].widget.attrs.update(list="roi-tools", autocomplete="off",
                                                    placeholder="ax_… or import.…")

    def clean_tool(self) -> str:
        return self.cleaned_data["tool"].strip()
