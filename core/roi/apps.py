from __future__ import annotations

from django.apps import AppConfig


class ROIConfig(AppConfig):
    name = "core.roi"
    label = "roi"
    verbose_name = "ROI"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_migrate, post_save, pre_save

        from core.roi import signals
        from core.roi.models import Baseline

        post_migrate.connect(signals.install_rollup, sender=self, dispatch_uid="roi.install_rollup")
        pre_save.connect(signals.remember_baseline, sender=Baseline, dispatch_uid="roi.remember_baseline")
        post_save.connect(signals.baseline_saved, sender=Baseline, dispatch_uid="roi.baseline_saved")
        post_delete.connect(signals.baseline_deleted, sender=Baseline, dispatch_uid="roi.baseline_deleted")
