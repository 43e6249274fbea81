from __future__ import annotations

from django.apps import AppConfig


class ROIConfig(AppConfig):
    name = "core.roi"
    label = "roi"
    verbose_name = "ROI"
