from __future__ import annotations

from django.apps import AppConfig


def _import_tool_modules() -> None:
    """Import every core/tools/*_tools.py module: each registers its ax_* tools once."""
    import importlib
    import pkgutil

    import core.tools

    for module in pkgutil.iter_modules(core.tools.__path__):
        if module.name.endswith("_tools"):
            importlib.import_module(f"core.tools.{module.name}")


class ToolsConfig(AppConfig):
    name = "core.tools"
    label = "tools"
    verbose_name = "Tools and audit"

    def ready(self) -> None:
        # Importing the tool modules registers every ax_* tool once per process.
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from core.db import on_connection_created
        from core.tools.schedules import ensure_schedules

        _import_tool_modules()
        connection_created.connect(on_connection_created, dispatch_uid="db.wal_checkpointer")

        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="tools.ensure_schedules")
