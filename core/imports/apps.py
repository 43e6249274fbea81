from __future__ import annotations

from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "core.imports"
    label = "imports"
    verbose_name = "Imports"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        post_migrate.connect(_ensure_schedule, sender=self, dispatch_uid="imports.ensure_schedule")


def _ensure_schedule(**kwargs) -> None:
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="recover stale imports",
        defaults={"func": "core.imports.tasks.recover_stale_imports", "schedule_type": Schedule.MINUTES,
                  "minutes": 1, "repeats": -1},
    )
