from __future__ import annotations

from django.apps import AppConfig


class ToolsConfig(AppConfig):
    name = "core.tools"
    label = "tools"
    verbose_name = "Tools"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate
        from django.utils.module_loading import autodiscover_modules

        from core.db import on_connection_created
        from core.tools.schedules import ensure_schedules

        # Each area registers its ax_* tools in its own tools.py: importing them once per
        # process fills the registry, and the framework needs to know none of them.
        autodiscover_modules("tools")
        connection_created.connect(on_connection_created, dispatch_uid="core.db.on_connection_created")

        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="tools.ensure_schedules")
