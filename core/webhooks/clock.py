"""The webhooks' notion of now, injectable so tests can step over retries and the 7-day rules."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

_offset = timedelta(0)
_frozen: datetime | None = None


def now() -> datetime:
    return (_frozen or timezone.now()) + _offset


def advance(delta: timedelta) -> None:
    """Move the clock forward (tests)."""
    global _offset
    _offset += delta


def freeze() -> None:
    """Stop the clock where it is, so that the time between two moments is exactly what the code
    made it, however long the work in between took (tests). reset() starts it again."""
    global _frozen
    _frozen = timezone.now()


def reset() -> None:
    global _offset, _frozen
    _offset, _frozen = timedelta(0), None
