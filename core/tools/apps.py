from __future__ import annotations

from django.apps import AppConfig


class ToolsConfig(AppConfig):
    name = "core.tools"
    label = "tools"
    verbose_name = "Tools and audit"

    def ready(self) -> None:
        # Importing the tool modules registers every ax_* tool once per process.
        from core.tools import erp_tools  # noqa: F401
