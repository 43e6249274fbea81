from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from core.errors import ToolError
from core.roi.history import check_not_frozen
from core.roi.models import Baseline, Horizon, HourlyRate, Pending, Usage, Watermark


class _FromAKeptDay(forms.ModelForm):
    """A value may not start before the first day whose audit rows are kept: the figures of
    pruned days are final (core.roi.history.check_not_frozen)."""

    def clean_effective_from(self):
        day = self.cleaned_data["effective_from"]
        try:
            check_not_frozen(day)
        except ToolError as error:
            raise ValidationError(error.message) from None
        return day


class BaselineForm(_FromAKeptDay):
    class Meta:
        model = Baseline
        fields = ["tool", "effective_from", "seconds", "note"]


class HourlyRateForm(_FromAKeptDay):
    class Meta:
        model = HourlyRate
        fields = ["user", "department", "effective_from", "rate", "note"]


@admin.register(Baseline)
class BaselineAdmin(admin.ModelAdmin):
    """Each row is in force from its effective_from until the tool's next row. Saving a changed
    one recomputes that tool's ROI figures from its first day on (core.roi.signals)."""

    form = BaselineForm
    list_display = ("tool", "effective_from", "seconds", "note", "updated")
    list_editable = ("seconds",)
    list_filter = ("effective_from",)
    search_fields = ("tool", "note")
    readonly_fields = ("updated",)


@admin.register(HourlyRate)
class HourlyRateAdmin(admin.ModelAdmin):
    """The rate history: each row is in force from its effective_from until the next row of the
    same user or department. Rates are applied when a report is read, so nothing is recomputed."""

    form = HourlyRateForm
    list_display = ("__str__", "user", "department", "effective_from", "rate", "note", "updated")
    list_filter = ("department", "effective_from")
    search_fields = ("user__username", "department__code", "department__name", "note")
    raw_id_fields = ("user",)
    readonly_fields = ("updated",)
    fields = ("user", "department", "effective_from", "rate", "note", "updated")


class _ReadOnly(admin.ModelAdmin):
    """Kept by the rollup machinery (core/roi/rollup.py); shown for inspection only."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Usage)
class UsageAdmin(_ReadOnly):
    list_display = ("level", "period_start", "tool", "username", "department", "operations", "successful",
                    "saved_ms")
    list_filter = ("level",)
    search_fields = ("tool", "username", "department")
    date_hierarchy = "period_start"


@admin.register(Watermark)
class WatermarkAdmin(_ReadOnly):
    list_display = ("audit_id",)


@admin.register(Pending)
class PendingAdmin(_ReadOnly):
    list_display = ("audit_id",)


@admin.register(Horizon)
class HorizonAdmin(_ReadOnly):
    list_display = ("day",)
