from __future__ import annotations

from django.contrib import admin

from core.tools.models import BatchRun, IdempotencyRecord


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ("key", "user", "tool", "success", "created")
    list_filter = ("tool", "success")
    search_fields = ("key",)


@admin.register(BatchRun)
class BatchRunAdmin(admin.ModelAdmin):
    list_display = ("batch_id", "user", "status", "via", "is_async", "progress", "successful", "failed", "created",
                    "duration_ms")
    list_filter = ("status", "is_async", "via", "stop_on_error")
    search_fields = ("batch_id", "user__username", "last_error")
    date_hierarchy = "created"
    list_select_related = ("user",)

    @admin.display(description="processed")
    def progress(self, run: BatchRun) -> str:
        return f"{run.processed}/{run.total}"

    # A batch is written by its runner only: the admin shows it, filters it and may delete it.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
