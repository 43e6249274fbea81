from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Keeping the hub running: health of its processes, the worker's supervision, retention."""

    name = "core.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from core.ops.schedules import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="ops.ensure_schedules")
