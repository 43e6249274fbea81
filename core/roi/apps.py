from __future__ import annotations

from django.apps import AppConfig


class ROIConfig(AppConfig):
    name = "core.roi"
    label = "roi"
    verbose_name = "ROI"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_migrate, post_save, pre_save

        from core.accounts.models import Department, Profile
        from core.roi import signals
        from core.roi.models import Baseline, HourlyRate

        post_migrate.connect(signals.install_rollup, sender=self, dispatch_uid="roi.install_rollup")
        pre_save.connect(signals.remember_baseline, sender=Baseline, dispatch_uid="roi.remember_baseline")
        post_save.connect(signals.baseline_saved, sender=Baseline, dispatch_uid="roi.baseline_saved")
        post_delete.connect(signals.baseline_deleted, sender=Baseline, dispatch_uid="roi.baseline_deleted")
        for account in (Profile, Department):
            pre_save.connect(signals.remember_account_rate, sender=account,
                             dispatch_uid=f"roi.remember_rate.{account.__name__}")
            post_save.connect(signals.account_rate_saved, sender=account,
                              dispatch_uid=f"roi.account_rate_saved.{account.__name__}")
        post_save.connect(signals.rate_entry_changed, sender=HourlyRate, dispatch_uid="roi.rate_saved")
        post_delete.connect(signals.rate_entry_changed, sender=HourlyRate, dispatch_uid="roi.rate_deleted")
