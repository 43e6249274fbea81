from __future__ import annotations

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "core.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Webhooks subscribe to the event bus; the bus knows nothing about webhooks.
        from core.events import bus
        from core.webhooks.fanout import has_subscriptions, on_events

        bus.subscribe(on_events, interested=has_subscriptions)

        # A lost encryption key must stop `migrate` and `check --database default` loudly.
        from django.core.checks import Tags, register

        from core.webhooks.checks import stored_secrets_check

        register(stored_secrets_check, Tags.database)
