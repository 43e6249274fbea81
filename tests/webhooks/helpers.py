from __future__ import annotations

import json
import os

from django.conf import settings
from django.db import connection
from standardwebhooks import Webhook

from core.tools.pipeline import call_tool
from core.webhooks import services
from core.webhooks.models import Delivery
from tests.waiting import wait_until

ORDER = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 2}]}


def subscribe(url: str, event_type: str = "salesorder.created", **kwargs):
    kwargs.setdefault("retry_policy", {"max_retries": 3, "backoff_ms": 100})
    sub, secret = services.subscribe(event_type=event_type, webhook_url=url, **kwargs)
    return sub, secret


def order(user, **changes) -> dict:
    return call_tool("ax_create_salesorder", {**ORDER, **changes}, user)


def verify(secret: str | bytes, received) -> dict:
    """Verify a received request with the standardwebhooks library; returns the parsed body."""
    key = secret if isinstance(secret, bytes) or secret.startswith("whsec_") else secret.encode()
    return Webhook(key).verify(received.body, received.headers)


def body(received) -> dict:
    return json.loads(received.body)


def attempted(n: int) -> Delivery:
    """The delivery once its n-th attempt is recorded."""
    return wait_until(lambda: Delivery.objects.filter(attempts__gte=n).exclude(status="sending").first(),
                      what=f"attempt {n} to be recorded")


def delivery_of(sub) -> Delivery:
    return Delivery.objects.filter(subscription=sub).select_related("event").get()


def database_url() -> str:
    """The test database, for a subprocess (SQLite file or PostgreSQL)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a hub process working on the test database, with this process's
    secret key (so it can decrypt the webhook secrets) and a local receiver allowed."""
    return {**os.environ, "DATABASE_URL": database_url(), "SECRET_KEY": settings.SECRET_KEY,
            "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8", "WEBHOOK_TIMEOUT_MS": str(settings.WEBHOOK_TIMEOUT_MS),
            "DJANGO_SETTINGS_MODULE": "core.settings", **extra}
