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


def fast_insert(model, rows: list[dict]) -> None:
    """Insert many rows with one executemany, bypassing model instances.

    For bulk paths (imports) where Django's bulk_create spends most of its time building a
    model instance and per-field SQL for every row. Each row maps column attnames to values;
    every row must name the same columns, including those with a Python-side default.
    Datetime values are adapted for the backend here; other values must already be plain.
    """
    from django.db import connection

    if not rows:
        return
    columns = list(rows[0])
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(model._meta.get_field(c).column) for c in columns)
    placeholders = ", ".join(["%s"] * len(columns))
    # Datetime columns are found from the first row and adapted once per distinct value (a
    # batch shares one timestamp); every other value goes to the driver as it is.
    adapt = connection.ops.adapt_datetimefield_value
    first = rows[0]
    dated = {c for c in columns if hasattr(first[c], "tzinfo") and hasattr(first[c], "hour")}
    adapted = {}
    for column in dated:
        for row in rows:
            value = row[column]
            if value not in adapted:
                adapted[value] = adapt(value)
    params = [tuple(adapted[row[c]] if c in dated else row[c] for c in columns) for row in rows] if dated else \
        [tuple(row[c] for c in columns) for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", params)
