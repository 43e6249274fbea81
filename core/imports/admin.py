from __future__ import annotations

from django.contrib import admin

from core.imports.models import ImportJob, ImportRowError


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("job_id", "type", "format", "user", "status", "total", "processed", "successful", "failed",
                    "validate_only", "created")
    list_filter = ("status", "type", "format", "validate_only")
    search_fields = ("job_id", "original_name", "user__username")
    readonly_fields = ("checkpoint", "attempts", "heartbeat", "dialect")
    raw_id_fields = ("user",)


@admin.register(ImportRowError)
class ImportRowErrorAdmin(admin.ModelAdmin):
    list_display = ("job", "row", "column", "code", "message", "value")
    list_filter = ("code",)
    search_fields = ("job__job_id", "code", "value")
    raw_id_fields = ("job",)
