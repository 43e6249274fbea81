"""The webhooks' notion of now, injectable so tests can step over retries and the 7-day rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.utils import timezone

_offset = timedelta(0)
_source: Callable[[], datetime] = timezone.now


def now() -> datetime:
    return _source() + _offset


def advance(delta: timedelta) -> None:
    """Move the clock forward (tests)."""
    global _offset
    _offset += delta


def reset() -> None:
    global _offset
    _offset = timedelta(0)
