from __future__ import annotations

from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "core.imports"
    label = "imports"
    verbose_name = "Imports"
