"""A circuit breaker in front of the ERP backend, with its state in the shared cache.

Closed: calls pass; backend failures (database errors, not business refusals) are counted.
After CIRCUIT_FAILURE_THRESHOLD failures within a window the circuit opens for
CIRCUIT_RESET_SECONDS: every call is refused with CIRCUIT_OPEN without touching the backend.
Then it is half-open: exactly one probe call passes; its success closes the circuit, its
failure opens it again.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from core.errors import ToolError

_PREFIX = "axhub:cb:"


def clock() -> float:
    return time.time()


@dataclass
class Ticket:
    """What before_call saw, so record_success only writes when there is state to clear."""

    name: str
    dirty: bool


def _keys(name: str) -> tuple[str, str, str]:
    return f"{_PREFIX}{name}:failures", f"{_PREFIX}{name}:open_until", f"{_PREFIX}{name}:probe"


def before_call(name: str = "erp") -> Ticket:
    failures_key, open_key, probe_key = _keys(name)
    state = cache.get_many([failures_key, open_key])
    open_until = state.get(open_key)
    if open_until is not None:
        now = clock()
        if now < open_until:
            raise ToolError("CIRCUIT_OPEN", "the ERP backend is failing; calls are paused, retry shortly",
                            retry_after=max(1, math.ceil(open_until - now)))
        # Half-open: only the caller that wins this add() may probe the backend.
        if not cache.add(probe_key, 1, timeout=settings.CIRCUIT_RESET_SECONDS):
            raise ToolError("CIRCUIT_OPEN", "the ERP backend is being probed; retry shortly", retry_after=1)
    return Ticket(name, dirty=bool(state))


def record_success(ticket: Ticket) -> None:
    if ticket.dirty:
        cache.delete_many(list(_keys(ticket.name)))


def record_failure(ticket: Ticket) -> None:
    failures_key, open_key, probe_key = _keys(ticket.name)
    reset = settings.CIRCUIT_RESET_SECONDS
    try:
        failures = cache.incr(failures_key)
    except ValueError:
        cache.add(failures_key, 0, timeout=reset * 2)
        failures = cache.incr(failures_key)
    was_probe = cache.get(probe_key) is not None
    if failures >= settings.CIRCUIT_FAILURE_THRESHOLD or was_probe:
        cache.set(open_key, clock() + reset, timeout=reset * 10)
        cache.delete(probe_key)


def state(name: str = "erp") -> str:
    failures_key, open_key, _ = _keys(name)
    open_until = cache.get(open_key)
    if open_until is None:
        return "closed"
    return "open" if clock() < open_until else "half-open"


def reset(name: str = "erp") -> None:
    cache.delete_many(list(_keys(name)))
