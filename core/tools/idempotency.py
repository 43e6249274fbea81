"""Idempotency keys: same key + same arguments -> the stored outcome, no second side effect.

The record is inserted inside the call's own transaction. A concurrent call with the same key
therefore waits on the unique index (PostgreSQL) or on the write lock (SQLite) until the first
commits, then finds the record and replays it: exactly one of them runs. Records older than
IDEMPOTENCY_TTL_HOURS are no longer replayed, and the hourly prune deletes them (retention.py).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import jsoncodec
from core.errors import ToolError
from core.tools.models import IdempotencyRecord

MAX_KEY_LENGTH = 255
# What a key may be, the same over every way in: 1-255 characters of printable ASCII (space to
# "~"), not only spaces. An HTTP header carries no other characters reliably, and the OpenAPI
# document states this rule as the header's schema:
#   {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]*[!-~][ -~]*$"}
KEY_RULE = f"an idempotency key is 1-{MAX_KEY_LENGTH} printable ASCII characters (space to '~'), not only spaces"


def _default(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(jsoncodec.stripped(value))  # 10, 10.0 and 10.00 are one number
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def digest(tool: str, arguments: Any) -> str:
    # Floats are normalised via Decimal so 10, 10.0 and Decimal("10.00") are one request.
    canonical = json.dumps([tool, _normalise(arguments)], sort_keys=True, separators=(",", ":"), default=_default,
                           ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


def check_key(key: Any) -> str:
    if (not isinstance(key, str) or len(key) > MAX_KEY_LENGTH or not key.strip(" ")
            or not all(" " <= c <= "~" for c in key)):
        raise ToolError("VALIDATION_ERROR", KEY_RULE, field="idempotency_key")
    return key


def claim(user, key: str, tool: str, request_digest: str) -> IdempotencyRecord | None:
    """Reserve the key for this call, or return the stored record to replay.

    Must run inside the call's transaction. Raises IDEMPOTENCY_KEY_REUSED when the key was
    used for a different request.
    """
    for _ in range(3):
        record = IdempotencyRecord(user=user, key=key, tool=tool, request_digest=request_digest)
        try:
            with transaction.atomic():
                record.save(force_insert=True)
            return None
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.select_for_update().filter(user=user, key=key).first()
        if existing is not None:
            break
        # The conflicting record vanished (purged, or an expired record replaced): try again.
    else:
        raise ToolError("IDEMPOTENCY_IN_PROGRESS", f"a call with idempotency key {key!r} is still running")
    if existing.created < timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS):
        existing.delete()
        record.save(force_insert=True)
        return None
    if existing.request_digest != request_digest:
        raise ToolError("IDEMPOTENCY_KEY_REUSED",
                        f"idempotency key {key!r} was already used for a different request ({existing.tool})")
    if existing.response is None:
        raise ToolError("IDEMPOTENCY_IN_PROGRESS", f"a call with idempotency key {key!r} is still running")
    return existing


def store(user, key: str, *, success: bool, response: dict[str, Any]) -> None:
    IdempotencyRecord.objects.filter(user=user, key=key).update(success=success, response=response)


def release(user, key: str) -> None:
    """Forget a claim whose call crashed, so the caller can retry with the same key."""
    IdempotencyRecord.objects.filter(user=user, key=key, response__isnull=True).delete()

