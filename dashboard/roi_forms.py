"""Forms of the ROI pages: the report's range and groupings, the operations behind a figure,
and one entry of a tool's baseline history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from core.roi.export import CSV_FORMATS, DEFAULT_CSV_FORMAT
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


CSV_CHOICES = [(key, style.label) for key, style in CSV_FORMATS.items()]


class _RangeForm(forms.Form):
    """A report range: each end may be left out (the last DEFAULT_DAYS days up to today)."""

    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs=DATE_ATTRS))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs=DATE_ATTRS))
    csv = forms.ChoiceField(required=False, label="CSV for", choices=CSV_CHOICES)

    def __init__(self, *args: Any, csv_format: str = DEFAULT_CSV_FORMAT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_csv = csv_format if csv_format in CSV_FORMATS else DEFAULT_CSV_FORMAT

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
        data["csv"] = data.get("csv") or self.default_csv
        if "date_from" in self.errors or "date_to" in self.errors:
            return data
        if end < start:
            self.add_error("date_to", "The end date is before the start date.")
        elif (end - start).days + 1 > MAX_RANGE_DAYS:
            self.add_error("date_to", f"A report spans at most {MAX_RANGE_DAYS} days (three years).")
        data["date_from"], data["date_to"] = start, end
        return data

    @property
    def range(self) -> tuple[date, date]:
        return self.cleaned_data["date_from"], self.cleaned_data["date_to"]

    @property
    def csv_format(self) -> str:
        """The CSV format the reader chose (a key of core.roi.export.CSV_FORMATS)."""
        return self.cleaned_data.get("csv") or self.default_csv


class RoiForm(_RangeForm):
    """GET parameters of the ROI report; each may be left out for its default.

    group_by is the interval of the savings-over-time chart (the engine's group_by), `table`
    the grouping of the table under the charts, `csv` the format of the CSV export.
    """

    group_by = forms.ChoiceField(required=False, label="Over time by",
                                 choices=[("", "Auto"), *INTERVAL_LABELS.items()])
    table = forms.ChoiceField(required=False, label="Table by", choices=list(TABLE_LABELS.items()))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "date_from" in data and "date_to" in data:
            data["interval"] = data.get("group_by") or auto_interval(*self.range)
        data["table"] = data.get("table") or DEFAULT_TABLE
        return data

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
        if self.csv_format != DEFAULT_CSV_FORMAT:
            query["csv"] = self.csv_format
        return query

    def for_display(self) -> RoiForm:
        """The same form with every default written in, so the controls show what the figures
        are for, and "Auto" names the interval it chose; after is_valid()."""
        shown = RoiForm({**self.query(), "group_by": self.cleaned_data.get("group_by", ""), "csv": self.csv_format})
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


SLICES = ("tool", "user", "department")  # what a drill-down narrows the operations to


class OperationsForm(_RangeForm):
    """GET parameters of the operations behind a figure: the range, and a tool, user or
    department as the report names them. A parameter given empty (user=) means the audit rows
    without one, as the report's "(no user)" and "No department" rows count them."""

    tool = forms.CharField(required=False, max_length=100, strip=False)
    user = forms.CharField(required=False, max_length=150, strip=False)
    department = forms.CharField(required=False, max_length=30, strip=False)

    def slice(self) -> dict[str, str]:
        """The slice asked for: the SLICES present in the query, with their values; after is_valid()."""
        return {name: self.cleaned_data.get(name) or "" for name in SLICES if name in self.data}

    def query(self) -> dict[str, str]:
        start, end = self.range
        return {**self.slice(), "date_from": start.isoformat(), "date_to": end.isoformat()}


class BaselineForm(forms.ModelForm):
    """One entry of a tool's baseline history: a new one names its tool and first day; an
    existing one keeps both and changes its seconds or note."""

    class Meta:
        model = Baseline
        fields = ["tool", "effective_from", "seconds", "note"]
        labels = {"effective_from": "From"}
        widgets = {"seconds": forms.NumberInput(attrs={"min": 0, "max": MAX_BASELINE_SECONDS, "step": 1}),
                   "effective_from": forms.DateInput(attrs=DATE_ATTRS),
                   "note": forms.TextInput(attrs={"placeholder": "what the manual work consists of"})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            del self.fields["tool"], self.fields["effective_from"]
        else:
            self.fields["tool"].widget.attrs.update(list="roi-tools", autocomplete="off",
                                                    placeholder="ax_… or import.…")
            self.fields["effective_from"].initial = today()
            self.fields["effective_from"].required = False
            self.fields["effective_from"].help_text = "first day priced with it (UTC); empty: today"

    def clean_effective_from(self) -> date:
        return self.cleaned_data.get("effective_from") or today()

    def clean_tool(self) -> str:
        return self.cleaned_data["tool"].strip()
