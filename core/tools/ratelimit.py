"""Per-user fixed-window rate limit kept in the cache (Redis when REDIS_URL is set).

A window is one wall-clock minute; the counter is one atomic INCR, so any number of
processes sharing the cache share the limit.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache

from core.errors import ToolError

WINDOW_SECONDS = 60


def clock() -> float:
    return time.time()


def hit(user_id: int, *, limit: int | None = None) -> int:
    """Count one request; raise RATE_LIMITED past the limit. Returns the count in this window."""
    limit = settings.RATE_LIMIT_PER_MINUTE if limit is None else limit
    if limit <= 0:
        return 0
    now = clock()
    window = int(now // WINDOW_SECONDS)
    key = f"axhub:rl:{user_id}:{window}"
    try:
        count = cache.incr(key)
    except ValueError:  # first request of the window
        if cache.add(key, 1, timeout=WINDOW_SECONDS * 2):
            count = 1
        else:
            count = cache.incr(key)
    if count > limit:
        retry_after = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
        raise ToolError("RATE_LIMITED", f"more than {limit} requests this minute; retry in {retry_after} s",
                        retry_after=retry_after)
    return count
