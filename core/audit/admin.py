from __future__ import annotations

from django.contrib import admin

from core.audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created", "tool", "username", "department", "via", "success", "error_code", "duration_ms",
                    "batch_id")
    list_filter = ("success", "via", "tool", "department")
    search_fields = ("tool", "username", "error_code", "batch_id", "idempotency_key")
    date_hierarchy = "created"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
