"""django-q2 tasks of the webhooks area. Short, idempotent (a claim token is used once), keyed by token."""

from __future__ import annotations

from core.webhooks import delivery


def send_claimed(token: str) -> int:
    """Send the deliveries the dispatcher (or the fan-out) claimed with this token."""
    return delivery.send_claimed(token)
