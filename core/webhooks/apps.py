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
