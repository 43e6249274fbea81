from __future__ import annotations

from django.contrib import admin

from core.events.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("created", "event_id", "type", "username", "audit_id", "fanned_out")
    list_filter = ("type", "fanned_out")
    search_fields = ("event_id", "type", "username")
    date_hierarchy = "created"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
