from __future__ import annotations

from django.contrib import admin

from core.webhooks.models import Attempt, Delivery, Subscription


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("subscription_id", "event_type", "url", "status", "created", "last_success_at", "failing_since")
    list_filter = ("status", "event_type")
    search_fields = ("subscription_id", "url", "description")
    # The encrypted secrets are never shown, not even encrypted.
    exclude = ("secret_encrypted", "previous_secret_encrypted")
    # What it listens to is changed through ax_update_webhook or the dashboard, which check the types
    # and the filters against them.
    readonly_fields = ("subscription_id", "event_type", "event_types", "created", "updated", "last_success_at",
                       "failing_since", "previous_secret_expires")

    def has_add_permission(self, request) -> bool:
        return False  # subscribe through ax_subscribe_webhook or the dashboard: they check the URL and the secret


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ("number", "started", "status_code", "duration_ms", "error_class", "error", "trigger", "triggered_by")
    readonly_fields = fields


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("delivery_id", "event_type", "subscription", "status", "attempts", "last_status", "created",
                    "next_attempt_at")
    list_filter = ("status", "event_type")
    search_fields = ("delivery_id", "subject", "subscription__subscription_id", "event__event_id")
    list_select_related = ("subscription",)
    raw_id_fields = ("subscription", "event")
    inlines = [AttemptInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = ("delivery", "number", "started", "status_code", "duration_ms", "error_class", "trigger")
    list_filter = ("error_class", "trigger")
    raw_id_fields = ("delivery",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
