from __future__ import annotations

from django.contrib import admin

from core.imports.models import ImportJob, ImportMapping, ImportRowError


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("job_id", "type", "mode", "format", "user", "status", "total", "processed", "successful",
                    "failed", "validate_only", "roi", "created")
    list_filter = ("status", "type", "mode", "format", "validate_only", "roi")
    search_fields = ("job_id", "original_name", "user__username")
    readonly_fields = ("checkpoint", "attempts", "heartbeat", "dialect", "preview")
    raw_id_fields = ("user", "source_job")


@admin.register(ImportRowError)
class ImportRowErrorAdmin(admin.ModelAdmin):
    list_display = ("job", "row", "column", "code", "message", "value")
    list_filter = ("code",)
    search_fields = ("job__job_id", "code", "value")
    raw_id_fields = ("job",)


@admin.register(ImportMapping)
class ImportMappingAdmin(admin.ModelAdmin):
    list_display = ("type", "name", "user", "updated")
    list_filter = ("type",)
    search_fields = ("name",)
    raw_id_fields = ("user",)
