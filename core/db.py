"""Database helpers shared by the areas."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext

from django.conf import settings

# SQLite allows one writer at a time. Threads of one process queue on this lock instead of
# on SQLite's busy handler, whose sleeps would dominate the latency of concurrent writers;
# other processes still wait on the busy timeout.
_sqlite_writer = threading.RLock()


def write_slot() -> AbstractContextManager:
    """Hold around a write transaction: a process-wide lock on SQLite, nothing elsewhere."""
    return _sqlite_writer if settings.USING_SQLITE else nullcontext()
