"""Who is asking (the client's address) and how often an address has failed to authenticate.

The client's address is the connection's: REMOTE_ADDR for Django, the ASGI scope's client for
/mcp. The web server (uvicorn) replaces it with the X-Forwarded-For address only when the
connection comes from a proxy listed in FORWARDED_ALLOW_IPS, so a client cannot choose the
address it is counted under (README "Security").

Failed API-token authentications are counted per address in fixed windows of
API_AUTH_FAILURE_WINDOW_SECONDS, in the cache (Redis when REDIS_URL is set, so every process
shares the count). Once an address has failed API_AUTH_FAILURE_LIMIT times in the current
window, its requests are refused until the window ends, before any token is looked up.
"""

from __future__ import annotations

import ipaddress
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

# An IPv6 host usually holds a whole /64, so it is counted as one address: otherwise each of
# its 2**64 addresses would get its own allowance.
_IPV6_PREFIX = 64


def clock() -> float:
    return time.time()


def client_address(request: HttpRequest) -> str | None:
    """The address a request is counted under (also django-axes' AXES_CLIENT_IP_CALLABLE)."""
    return request.META.get("REMOTE_ADDR") or None


def _bucket(address: str | None) -> str:
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, _IPV6_PREFIX), strict=False))
    return str(ip)


def _window(now: float) -> tuple[str, int, float]:
    seconds = settings.API_AUTH_FAILURE_WINDOW_SECONDS
    window = int(now // seconds)
    return f"axhub:authfail:{window}:", window, (window + 1) * seconds - now


def retry_after(address: str | None) -> int | None:
    """Seconds until `address` may try again, or None when it is not over the limit."""
    limit = settings.API_AUTH_FAILURE_LIMIT
    if limit <= 0:
        return None
    prefix, _, remaining = _window(clock())
    if (cache.get(prefix + _bucket(address)) or 0) < limit:
        return None
    return max(1, math.ceil(remaining))


def record_failure(address: str | None) -> int:
    """Count one failed authentication of `address` in this window; returns the count."""
    if settings.API_AUTH_FAILURE_LIMIT <= 0:
        return 0
    prefix, _, _ = _window(clock())
    key = prefix + _bucket(address)
    try:
        return cache.incr(key)
    except ValueError:  # the first failure of the window
        if cache.add(key, 1, timeout=settings.API_AUTH_FAILURE_WINDOW_SECONDS * 2):
            return 1
        return cache.incr(key)
