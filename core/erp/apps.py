from __future__ import annotations

from django.apps import AppConfig


class ErpConfig(AppConfig):
    name = "core.erp"
    label = "erp"
    verbose_name = "ERP"
