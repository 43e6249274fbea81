from __future__ import annotations

from django.contrib import admin

from core.accounts.models import ApiToken, Department, Profile


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "hourly_rate")
    search_fields = ("code", "name")


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "department", "hourly_rate")
    list_filter = ("department",)
    search_fields = ("user__username",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "role", "name", "created", "last_used", "revoked_at")
    list_filter = ("role", "revoked_at")
    search_fields = ("user__username", "name", "prefix")
    readonly_fields = ("prefix", "token_hash", "created", "last_used")
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        # A token is only useful when its raw value is shown once; the command does that.
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset) -> None:
        for token in queryset:
            token.revoke()
