from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "core.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from core.accounts.signals import ensure_profile

        post_save.connect(ensure_profile, sender=get_user_model(), dispatch_uid="accounts.ensure_profile")
