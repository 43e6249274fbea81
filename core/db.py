"""Database helpers shared by the areas."""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

# SQLite allows one writer at a time. Threads of one process queue on this lock instead of
# on SQLite's busy handler, whose sleeps would dominate the latency of concurrent writers;
# other processes still wait on the busy timeout.
_sqlite_writer = threading.RLock()


class WalCheckpointer:
    """SQLite in WAL mode appends commits to the -wal file; a checkpoint copies them into the
    database file (with an fsync). By default SQLite runs it inside whichever commit crosses
    the threshold, and that call then takes 5-25 ms instead of 1. Here each process runs
    PASSIVE checkpoints on a background thread with its own connection instead: they never
    block readers or writers, and the driver releases the interpreter while one runs. Under
    continuous writes they copy most pages but never catch up with the last commit, and only
    a fully copied WAL can start over; the connections' automatic threshold
    (SQLITE_WAL_AUTOCHECKPOINT pages) bounds it, and the commit that reaches it finds little left
    to copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._key: tuple[int, str, int] | None = None

    def ensure_running(self, path: str) -> None:
        # After a fork, for another database file, or for a file deleted and made anew under the
        # same name (a test database): a new thread, whose connection is to the file in use.
        try:
            inode = os.stat(path).st_ino
        except OSError:
            inode = 0
        key = (os.getpid(), path, inode)
        if self._key == key and self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._key == key and self._thread is not None and self._thread.is_alive():
                return
            self._stop.set()
            self._stop = threading.Event()
            self._key = key
            self._thread = threading.Thread(target=self._run, args=(path, self._stop), name="sqlite-checkpoint",
                                            daemon=True)
            self._thread.start()

    @staticmethod
    def _run(path: str, stop: threading.Event) -> None:
        import logging
        import sqlite3

        log = logging.getLogger(__name__)
        try:
            conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            log.exception("the WAL checkpointer could not open %s", path)
            return
        try:
            while not stop.wait(settings.SQLITE_CHECKPOINT_MS / 1000):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:  # the file went away (a test database), or a transient error
                    log.debug("WAL checkpoint failed", exc_info=True)
        finally:
            conn.close()


checkpointer = WalCheckpointer()


def on_connection_created(sender, connection, **kwargs) -> None:
    """connection_created: start this process's WAL checkpointer with its first SQLite connection."""
    if connection.vendor == "sqlite" and settings.SQLITE_CHECKPOINT_MS > 0:
        name = str(connection.settings_dict["NAME"])
        if name and ":memory:" not in name and "mode=memory" not in name:
            checkpointer.ensure_running(name)


def write_slot() -> AbstractContextManager:
    """Hold around a write transaction: a process-wide lock on SQLite, nothing elsewhere."""
    return _sqlite_writer if settings.USING_SQLITE else nullcontext()


_FORMAT_QMARK = re.compile(r"(?<!%)%s")  # as Django's SQLite cursor converts them


@functools.cache
def _native(sql: str, vendor: str) -> str:
    """The statement in the driver's placeholder style (sqlite3 takes ?, psycopg %s)."""
    return _FORMAT_QMARK.sub("?", sql).replace("%%", "%") if vendor == "sqlite" else sql


def run_sql(sql: str, params: Sequence[Any] = (), *, many: bool = False) -> list[tuple] | None:
    """Run one statement (%s placeholders) on the default connection; returns its rows when it
    has any (a SELECT, ... RETURNING), else None.

    For the per-call hot path: the statement goes to the driver's own cursor, skipping the
    layers of Django's cursor wrapper (worth a third of a small statement's cost), with the
    same error translation (django.db errors), health check and broken-transaction guard. It
    does not pass through connection.execute_wrapper() hooks. When queries are being logged
    (DEBUG, a test capturing them) it goes through Django's cursor, so it is logged like any
    other."""
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.queries_logged:
        with conn.cursor() as cursor:
            (cursor.executemany if many else cursor.execute)(sql, params)
            return cursor.fetchall() if cursor.description else None
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    conn.validate_no_broken_transaction()
    with conn.wrap_database_errors:
        cursor = conn.connection.cursor()
        try:
            (cursor.executemany if many else cursor.execute)(_native(sql, conn.vendor), params)
            return cursor.fetchall() if cursor.description else None
        finally:
            cursor.close()


@functools.cache
def _insert_values_sql(model, columns: tuple[str, ...], returning: bool) -> str:
    """INSERT INTO model (columns) VALUES (%s, ...), built once per model and column list
    (quoting names through the connection costs more than running the insert)."""
    from django.db import connection

    quote = connection.ops.quote_name
    names = ", ".join(quote(model._meta.get_field(c).column) for c in columns)
    return (f"INSERT INTO {quote(model._meta.db_table)} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
            + (" RETURNING id" if returning else ""))


def _is_datetime(value) -> bool:
    return isinstance(value, datetime)


def fast_insert(model, rows: list[dict]) -> None:
    """Insert many rows with one executemany, bypassing model instances.

    For bulk and hot paths where Django's bulk_create spends most of its time building a
    model instance and per-field SQL for every row. Each row maps column attnames to values;
    every row must name the same columns, including those with a Python-side default.
    Datetime values are adapted for the backend here; other values must already be plain.
    """
    from django.db import connection

    if not rows:
        return
    columns = tuple(rows[0])
    # Datetime columns are found from the first row and adapted once per distinct value (a
    # batch shares one timestamp); every other value goes to the driver as it is.
    adapt = connection.ops.adapt_datetimefield_value
    first = rows[0]
    dated = {c for c in columns if _is_datetime(first[c])}
    adapted = {}
    for column in dated:
        for row in rows:
            value = row[column]
            if value not in adapted:
                adapted[value] = adapt(value)
    params = [tuple(adapted[row[c]] if c in dated else row[c] for c in columns) for row in rows] if dated else \
        [tuple(row[c] for c in columns) for row in rows]
    run_sql(_insert_values_sql(model, columns, False), params, many=True)


def insert_returning_id(model, row: dict) -> int:
    """Insert one row (column attnames -> plain values; datetimes adapted here); returns its id."""
    from django.db import connection

    adapt = connection.ops.adapt_datetimefield_value
    params = [adapt(v) if _is_datetime(v) else v for v in row.values()]
    return run_sql(_insert_values_sql(model, tuple(row), True), params)[0][0]


class JsonRows:
    """SQL over the rows of one JSON-array parameter, for set-based bulk writes.

    A chunk of records goes to the database as one JSON text (`[[v0, v1, ...], ...]`) and one
    INSERT ... SELECT expands it there: no per-row parameter binding in Python, and the
    statement runs in the database without holding the interpreter. `source` is the FROM
    clause (one row per element, the element named `value`); `column(i, type)` reads element
    i of a row as SQL (text unless a type is given); `json_object(pairs)` builds a JSON
    object from (key, sql expression) pairs. SQLite (3.38+) and PostgreSQL.
    """

    def __init__(self, connection) -> None:
        self.postgres = connection.vendor == "postgresql"
        self.source = "jsonb_array_elements(%s::jsonb) AS src(value)" if self.postgres else "json_each(%s) AS src"

    def column(self, index: int, sql_type: str = "") -> str:
        if self.postgres:
            return f"(src.value->>{index})::{sql_type}" if sql_type else f"(src.value->>{index})"
        return f"(src.value->>{index})"

    def decimal(self, index: int) -> str:
        """Element i (a decimal written as a string, exact) as a number, e.g. for json_object."""
        return f"(src.value->>{index})::numeric" if self.postgres else f"CAST(src.value->>{index} AS REAL)"

    def json_object(self, pairs: list[tuple[str, str]]) -> str:
        function = "jsonb_build_object" if self.postgres else "json_object"
        return f"{function}({', '.join(f'{quote_literal(key)}, {expr}' for key, expr in pairs)})"

    def json_bool(self, value: bool) -> str:
        return ("true" if value else "false") if self.postgres else f"json('{'true' if value else 'false'}')"

    def random_hex16(self) -> str:
        """16 random hex digits per row."""
        return "left(md5(gen_random_uuid()::text), 16)" if self.postgres else "lower(hex(randomblob(8)))"

    @staticmethod
    def payload(rows: list[list]) -> str:
        import json

        return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))


def insert_select_sql(model, columns: dict[str, str], constants: dict[str, str]) -> str:
    """INSERT INTO model (columns..., constants...) SELECT <row expressions>, <constant SQL>
    FROM the rows of one JSON payload (JsonRows): the set-based bulk writes of imports and
    audit rows. `columns` maps field names to SQL over a row; `constants` to SQL the same
    for every row (usually %s)."""
    from django.db import connection

    names = ", ".join(connection.ops.quote_name(model._meta.get_field(c).column) for c in [*columns, *constants])
    return (f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({names}) "
            f"SELECT {', '.join([*columns.values(), *constants.values()])} FROM {JsonRows(connection).source}")


def printable(text: str) -> str:
    """text with what no database stores (lone surrogates, NUL) written as escapes: \\ud800, \\x00."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def existing_values(model, field: str, values: list[str]) -> set[str]:
    """Which of `values` the column `field` of model already holds: one query with one JSON
    parameter, however many values (an IN list of thousands of parameters costs more to build)."""
    from django.db import connection

    if not values:
        return set()
    import json

    column = connection.ops.quote_name(model._meta.get_field(field).column)
    wanted = ("SELECT jsonb_array_elements_text(%s::jsonb)" if connection.vendor == "postgresql"
              else "SELECT value FROM json_each(%s)")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {connection.ops.quote_name(model._meta.db_table)} "
                       f"WHERE {column} IN ({wanted})", [json.dumps(values, ensure_ascii=False)])
        return {row[0] for row in cursor.fetchall()}
