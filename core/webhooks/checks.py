"""System check: the configured keys decrypt the stored webhook secrets.

Tagged `database`, so it runs where Django checks with a database (`migrate`,
`check --database default`) and never at import time or on a database not yet migrated.
"""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import router

from core.webhooks import crypto


def stored_secrets_check(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from core.webhooks.models import Subscription

    using = router.db_for_read(Subscription)
    if not databases or using not in databases:
        return []
    try:
        report = crypto.sample_stored_secrets(using=using)
    except ImproperlyConfigured as exc:  # a bad WEBHOOK_ENCRYPTION_KEYS set after start-up
        return [checks.Error(str(exc), id="webhooks.E002")]
    if report.undecryptable:
        return [checks.Error(crypto.undecryptable_message(report), id="webhooks.E001")]
    if report.on_fallback:
        return [checks.Warning(
            f"{len(report.on_fallback)} of {report.sampled} sampled webhook secrets are still encrypted with the "
            "key derived from SECRET_KEY, so changing SECRET_KEY would break them",
            hint="run `python manage.py rotate_webhook_encryption` to move them to WEBHOOK_ENCRYPTION_KEYS",
            id="webhooks.W001")]
    return []
