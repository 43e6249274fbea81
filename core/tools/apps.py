from __future__ import annotations

from django.apps import AppConfig


class ToolsConfig(AppConfig):
    name = "core.tools"
    label = "tools"
    verbose_name = "Tools and audit"

    def ready(self) -> None:
        # Importing the tool modules registers every ax_* tool once per process.
        from django.db.models.signals import post_migrate

        from core.tools import batch_tools, erp_tools  # noqa: F401
        from core.tools.schedules import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="tools.ensure_schedules")
