from __future__ import annotations

from core.accounts.models import Profile


def ensure_profile(sender, instance, created: bool, **kwargs) -> None:
    if created:
        Profile.objects.get_or_create(user=instance)
