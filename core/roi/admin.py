from __future__ import annotations

from django.contrib import admin

from core.roi.models import Baseline, Horizon, Pending, Usage, Watermark


@admin.register(Baseline)
class BaselineAdmin(admin.ModelAdmin):
    """Saving a changed baseline recomputes that tool's ROI figures (core.roi.signals)."""

    list_display = ("tool", "seconds", "note", "updated")
    list_editable = ("seconds",)
    search_fields = ("tool", "note")
    readonly_fields = ("updated",)


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
