"""Running raw statements, and building them from the models' metadata.

Raw SQL sits where speed needs it (order entry, audit rows, events, imports); every INSERT it
runs is built here, by insert_values_sql() or insert_select_sql(), once per model and column
list. Both refuse a column list that leaves out a field the database cannot fill by itself
(missing_columns()), so a field added to a model with a Python-side default fails loudly the
first time a fast path would have skipped it; tests/test_sql_columns.py checks every INSERT the
hub sends. What differs between SQLite and PostgreSQL comes from core.dialect.
"""

from __future__ import annotations

import functools
import json
import operator
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models.fields import NOT_PROVIDED, AutoFieldMixin

from core.dialect import DIALECTS, SQLite, dialect

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
    """connection_created: check the SQLite library (as Django checks its own minimum when its
    backend loads), and start this process's WAL checkpointer with its first SQLite connection."""
    if connection.vendor != "sqlite":
        return
    try:
        SQLite.require(sqlite3.sqlite_version_info)
    except ImproperlyConfigured:
        connection.close()  # else the next query would run on this connection unchecked
        raise
    if settings.SQLITE_CHECKPOINT_MS > 0:
        name = str(connection.settings_dict["NAME"])
        if name and ":memory:" not in name and "mode=memory" not in name:
            checkpointer.ensure_running(name)


@contextmanager
def transactions_held_in_memory() -> Iterator[None]:
    """SQLite: a write transaction keeps the pages it changes in memory until its commit,
    however many, instead of spilling them to the WAL once the page cache (2 MB) is full and
    writing them again at the commit. For a bulk writer whose transactions are bounded (an
    import batch: at most MAX_BATCH_SIZE rows, some megabytes of pages), whose statements then
    take less time. The connection's setting is restored after, for whatever it runs next.
    Nothing on PostgreSQL."""
    if not settings.USING_SQLITE:
        yield
        return
    # ON / OFF switch spilling and leave its threshold (a number would set the threshold and,
    # read as a boolean, switch spilling by its low byte: 4096 is OFF).
    conn = connections[DEFAULT_DB_ALIAS]
    with conn.cursor() as cursor:
        cursor.execute("PRAGMA cache_spill")
        (threshold,) = cursor.fetchone()  # 0: spilling is off
        cursor.execute("PRAGMA cache_spill = OFF")
    try:
        yield
    finally:
        if conn.connection is not None:  # not closed meanwhile (a new connection has the default)
            with conn.cursor() as cursor:
                cursor.execute(f"PRAGMA cache_spill = {'ON' if threshold else 'OFF'}")


def write_slot() -> AbstractContextManager:
    """Hold around a write transaction: a process-wide lock on SQLite, nothing elsewhere."""
    return _sqlite_writer if settings.USING_SQLITE else nullcontext()


def run_sql(sql: str, params: Sequence[Any] = (), *, many: bool = False) -> list[tuple] | None:
    """Run one statement (%s placeholders) on the default connection; returns its rows when it
    has any (a SELECT, ... RETURNING), else None.

    For the per-call hot path: the statement goes to the driver's own cursor, skipping the
    layers of Django's cursor wrapper (worth a third of a small statement's cost), with the
    same error translation (django.db errors), health check and broken-transaction guard. It
    does not pass through connection.execute_wrapper() hooks. When queries are being logged
    (DEBUG, a test capturing them) it goes through Django's cursor, so it is logged like any
    other.

    One row given as `many` is sent with execute: psycopg's executemany runs a pipeline, which
    waits for the server three times where execute waits once (an order's line and its event
    are one row each)."""
    if many and len(params) == 1:
        params, many = params[0], False
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
            (cursor.executemany if many else cursor.execute)(DIALECTS[conn.vendor].native(sql), params)
            return cursor.fetchall() if cursor.description else None
        finally:
            cursor.close()


# --- Column lists from the models' metadata.

def _filled_by_database(field: models.Field) -> bool:
    """Whether an INSERT may leave the field out: the database fills it by itself (an
    auto-increment key, a db_default), or with NULL where the model's default is None too."""
    return (isinstance(field, AutoFieldMixin) or field.db_default is not NOT_PROVIDED
            or (field.null and not field.has_default()))


def missing_columns(model: type[models.Model], fields: Iterable[str]) -> list[str]:
    """The fields of `model` that an INSERT naming `fields` (names or attnames) leaves out,
    although the database cannot fill them by itself (a Python-side default, or no default)."""
    named = set(fields)
    return [f.name for f in model._meta.concrete_fields
            if f.name not in named and f.attname not in named and not _filled_by_database(f)]


def writable_fields(model: type[models.Model]) -> list[models.Field]:
    """Every concrete field an INSERT writes: all but an auto-increment key."""
    return [f for f in model._meta.concrete_fields if not isinstance(f, AutoFieldMixin)]


def _insert_into(model: type[models.Model], fields: Iterable[str]) -> str:
    """INSERT INTO table (columns): refused if the fields leave out one the database cannot fill."""
    fields = list(fields)
    missing = missing_columns(model, fields)
    if missing:
        raise ImproperlyConfigured(
            f"an INSERT into {model._meta.db_table} leaves out {', '.join(missing)}, which the database cannot "
            "fill by itself: write them, or derive the column list from the model (core.db.writable_fields)")
    quote = connection.ops.quote_name
    names = ", ".join(quote(model._meta.get_field(f).column) for f in fields)
    return f"INSERT INTO {quote(model._meta.db_table)} ({names})"


@functools.cache
def insert_values_sql(model: type[models.Model], fields: tuple[str, ...], returning: bool = False) -> str:
    """INSERT INTO model (fields) VALUES (%s, ...) [RETURNING the key], built once per model and
    field list (quoting names through the connection costs more than running the insert)."""
    returned = f" RETURNING {connection.ops.quote_name(model._meta.pk.column)}" if returning else ""
    return f"{_insert_into(model, fields)} VALUES ({', '.join(['%s'] * len(fields))}){returned}"


@functools.cache
def insert_select_sql(model: type[models.Model], values: tuple[tuple[str, str], ...]) -> str:
    """INSERT INTO model (fields) SELECT <expressions> FROM the rows of one JSON-array parameter
    (dialect().rows_source, its %s the statement's last parameter): the set-based bulk writes of
    imports, audit rows and events. `values` pairs each field with its SQL, over the row
    (dialect().element(i)) or the same for every row (a %s, filled in order)."""
    return (f"{_insert_into(model, (f for f, _ in values))} "
            f"SELECT {', '.join(sql for _, sql in values)} FROM {dialect().rows_source}")


def update_from_rows_sql(model: type[models.Model], key: str, fields: tuple[str, ...],
                         constants: tuple[str, ...] = ()) -> str:
    """UPDATE of the model's rows named by the rows of one JSON-array parameter (the statement's
    last parameter): each row holds the key, then the new values of `fields`, in that order;
    `constants` are set to the same %s in every row, filled in order before the rows. The
    set-based counterpart of insert_select_sql() for imports that update."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = row_values(model, (key, *fields))
    names = [model._meta.get_field(name).column for name in (key, *fields)]
    select = ", ".join(f"{sql} AS {quote('c' + str(i))}" for i, (_, sql) in enumerate(columns))
    sets = [f"{quote(name)} = u.{quote('c' + str(i))}" for i, name in enumerate(names) if i]
    sets += [f"{quote(model._meta.get_field(name).column)} = %s" for name in constants]
    return (f"UPDATE {table} SET {', '.join(sets)} FROM (SELECT {select} FROM {dialect().rows_source}) AS u "
            f"WHERE {table}.{quote(names[0])} = u.{quote('c0')}")


def row_values(model: type[models.Model], fields: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(field, SQL of element i of the row) for fields[i], for insert_select_sql(): text as it is,
    other values (sent as their text) cast to the field's type where the database needs it."""
    d = dialect()
    pairs = []
    for index, name in enumerate(fields):
        field = model._meta.get_field(name)
        text = isinstance(field, models.CharField | models.TextField)
        pairs.append((name, d.element(index, "" if text else field.cast_db_type(connection))))
    return tuple(pairs)


def rows_payload(rows: list) -> str:
    """The JSON-array parameter of insert_select_sql(): one element per row."""
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))


# --- Inserts from plain values and from instances.

def _is_datetime(value) -> bool:
    return isinstance(value, datetime)


def fast_insert(model, rows: list[dict]) -> None:
    """Insert many rows with one executemany, bypassing model instances.

    For bulk and hot paths where Django's bulk_create spends most of its time building a
    model instance and per-field SQL for every row. Each row maps column attnames to values;
    every row must name the same columns, including those with a Python-side default.
    Datetime values are adapted for the backend here; other values must already be plain.
    """
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
    run_sql(insert_values_sql(model, columns), params, many=True)


def insert_returning_id(model, row: dict) -> int:
    """Insert one row (column attnames -> plain values; datetimes adapted here); returns its id."""
    adapt = connection.ops.adapt_datetimefield_value
    params = [adapt(v) if _is_datetime(v) else v for v in row.values()]
    return run_sql(insert_values_sql(model, tuple(row), True), params)[0][0]


# Values the backend adapts, by field type (a DateTimeField is a DateField): as Django's
# get_db_prep_save() does in the end, without its checks, which cost more than the insert.
_ADAPT = ((models.DateTimeField, "adapt_datetimefield_value"), (models.DateField, "adapt_datefield_value"),
          (models.TimeField, "adapt_timefield_value"))
_PLAIN = (models.CharField, models.TextField, models.IntegerField, models.DecimalField, models.BooleanField,
          models.ForeignKey)


@functools.cache
def _instance_plan(model: type[models.Model]) -> tuple[tuple[str, ...], Any, tuple[tuple[int, str, Any], ...]]:
    """For inserting instances of model: the attnames of its writable fields, a getter of their
    values, and (position, connection.ops method or "", field) of those the backend must adapt.
    Text, numbers, Decimal, booleans and keys go to the driver as they are."""
    fields = writable_fields(model)
    attnames = tuple(f.attname for f in fields)
    getter = operator.attrgetter(*attnames) if len(attnames) > 1 else (lambda obj: (getattr(obj, attnames[0]),))
    adapted = []
    for index, field in enumerate(fields):
        if not isinstance(field, _PLAIN):
            method = next((name for kind, name in _ADAPT if isinstance(field, kind)), "")
            adapted.append((index, method, field))
    return attnames, getter, tuple(adapted)


def _instance_params(obj: models.Model, getter, adapted: tuple[tuple[int, str, Any], ...]) -> list[Any]:
    params = list(getter(obj))
    for index, method, field in adapted:
        value = params[index]
        if method:
            params[index] = None if value is None else getattr(connection.ops, method)(value)
        else:
            params[index] = field.get_db_prep_save(value, connection)
    return params


def insert_instance(obj: models.Model) -> int:
    """Insert a new instance, every writable field as it is set on it (no defaults or auto_now
    applied here); returns its primary key. The caller marks it saved if it keeps using it."""
    attnames, getter, adapted = _instance_plan(type(obj))
    return run_sql(insert_values_sql(type(obj), attnames, True), _instance_params(obj, getter, adapted))[0][0]


def insert_instances(objs: list[models.Model]) -> None:
    """Insert new instances of one model with one executemany (see insert_instance)."""
    if objs:
        attnames, getter, adapted = _instance_plan(type(objs[0]))
        run_sql(insert_values_sql(type(objs[0]), attnames), [_instance_params(obj, getter, adapted) for obj in objs],
                many=True)


def printable(text: str) -> str:
    """text with what no database stores (lone surrogates, NUL) written as escapes: \\ud800, \\x00."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def existing_values(model, field: str, values: list[str]) -> set[str]:
    """Which of `values` the column `field` of model already holds: one query with one JSON
    parameter, however many values (an IN list of thousands of parameters costs more to build)."""
    if not values:
        return set()
    column = connection.ops.quote_name(model._meta.get_field(field).column)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {connection.ops.quote_name(model._meta.db_table)} "
                       f"WHERE {column} IN ({dialect().text_elements})", [json.dumps(values, ensure_ascii=False)])
        return {row[0] for row in cursor.fetchall()}
