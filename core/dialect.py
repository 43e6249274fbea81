"""What differs between SQLite and PostgreSQL, in one place.

The hub's raw SQL (core.db, core.erp.rows, the import specs, the event bus, the ROI rollup) is
written once; the fragments and facts that differ between the two databases come from the
connection's dialect, the way django-q2 hides its brokers behind one interface. Callers never
ask which database they run on: they ask the dialect for a fragment (a JSON function, a date
expression, the placeholder style) or for the fact their logic depends on (`one_writer`).
"""

from __future__ import annotations

import functools
import re
from abc import ABC, abstractmethod
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection as default_connection


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Dialect(ABC):
    """The interface; see SQLite and PostgreSQL below for what each writes."""

    # A write transaction holds the database's only writer lock from its first statement, so
    # nothing else commits between a check in it and its commit.
    one_writer: bool
    # A failed statement dooms the whole transaction (until a savepoint is rolled back), rather
    # than undoing only itself.
    failure_aborts_transaction: bool
    # FROM clause over the elements of one JSON-array parameter, each element as `src.value`.
    rows_source: str
    # SELECT of the elements of one JSON-array-of-strings parameter, as text (for IN (...)).
    text_elements: str
    greatest: str
    # Run first in a transaction whose loss in a crash is made good later (the event fan-out,
    # which the dispatcher's sweep redoes): its commit need not wait for the disk. "" = none.
    commit_without_flush: str = ""

    def native(self, sql: str) -> str:
        """The statement in the driver's own placeholder style (for the driver's cursor)."""
        return sql

    def element(self, index: int, sql_type: str = "") -> str:
        """Element `index` of a row of rows_source, as SQL text (or `sql_type` where the
        database does not convert by itself)."""
        return f"(src.value->>{index})"

    @abstractmethod
    def random_hex16(self) -> str:
        """16 random hex digits per row: part of an id (unique, not secret)."""

    def json_param(self, text: str) -> Any:
        """A parameter for a JSON column from its already encoded text."""
        return text

    def transaction_lost(self, connection: Any) -> bool:
        """Inside an atomic block, whether the database has ended the transaction by itself."""
        return False

    @abstractmethod
    def utc_day(self, timestamp: str) -> str:
        ...

    @abstractmethod
    def utc_month(self, timestamp: str) -> str:
        """The first day of the UTC month of a timestamp."""

    def add_excluded(self, table: str, columns: tuple[str, ...]) -> str:
        """The SET list of an ON CONFLICT ... DO UPDATE that adds the new row's values."""
        prefix = self._qualify(table)
        return ", ".join(f"{c} = {prefix}{c} + excluded.{c}" for c in columns)

    def _qualify(self, table: str) -> str:
        return ""

    @abstractmethod
    def trigger_names(self, cursor: Any, table: str, prefix: str) -> set[str]:
        """The names of the triggers on `table` that start with `prefix`."""

    @abstractmethod
    def drop_triggers(self, cursor: Any, table: str, names: set[str], prefix: str) -> None:
        """Drop those triggers and any trigger functions whose name starts with `prefix`."""


_FORMAT_QMARK = re.compile(r"(?<!%)%s")  # as Django's SQLite cursor converts them


class SQLite(Dialect):
    # ->> (3.38), json_each (JSON1, built in since 3.38), RETURNING (3.35).
    needs = (3, 38, 0)
    one_writer = True
    failure_aborts_transaction = False
    rows_source = "json_each(%s) AS src"
    text_elements = "SELECT value FROM json_each(%s)"
    greatest = "MAX"

    @staticmethod
    @functools.cache
    def native(sql: str) -> str:
        return _FORMAT_QMARK.sub("?", sql).replace("%%", "%")

    def random_hex16(self) -> str:
        return "lower(hex(randomblob(8)))"

    def transaction_lost(self, connection: Any) -> bool:
        # A disk full or I/O error makes SQLite roll the whole transaction back.
        return (connection.in_atomic_block and connection.connection is not None
                and not connection.connection.in_transaction)

    def utc_day(self, timestamp: str) -> str:
        return f"date({timestamp})"

    def utc_month(self, timestamp: str) -> str:
        return f"date({timestamp}, 'start of month')"

    def trigger_names(self, cursor: Any, table: str, prefix: str) -> set[str]:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s AND name LIKE %s",
                       [table, prefix + "%"])
        return {row[0] for row in cursor.fetchall()}

    def drop_triggers(self, cursor: Any, table: str, names: set[str], prefix: str) -> None:
        for name in sorted(names):
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")

    @classmethod
    def require(cls, version: tuple[int, ...]) -> None:
        """Refuse an SQLite library older than the hub's SQL needs."""
        if tuple(version) < cls.needs:
            raise ImproperlyConfigured(
                f"SQLite {'.'.join(map(str, version))} found; the hub needs SQLite "
                f"{'.'.join(map(str, cls.needs))} or newer (its SQL uses ->>, json_each and RETURNING). "
                "Use a Python built with a newer SQLite, or PostgreSQL (DATABASE_URL).")


def _as_is(text: str) -> str:
    return text


class PostgreSQL(Dialect):
    one_writer = False
    failure_aborts_transaction = True
    rows_source = "jsonb_array_elements(%s::jsonb) AS src(value)"
    text_elements = "SELECT jsonb_array_elements_text(%s::jsonb)"
    greatest = "GREATEST"
    commit_without_flush = "SET LOCAL synchronous_commit TO OFF"

    def element(self, index: int, sql_type: str = "") -> str:
        return f"(src.value->>{index})::{sql_type}" if sql_type else f"(src.value->>{index})"

    def random_hex16(self) -> str:
        # Two 32-bit draws of random() (a generator seeded from a strong source in each backend).
        # gen_random_uuid() took 2 µs a row, a tenth of an imported event's insert.
        half = "lpad(to_hex(floor(random() * 4294967296)::bigint), 8, '0')"
        return f"{half} || {half}"

    def json_param(self, text: str) -> Any:
        from psycopg.types.json import Jsonb

        return Jsonb(text, dumps=_as_is)

    def utc_day(self, timestamp: str) -> str:
        return f"(({timestamp}) AT TIME ZONE 'UTC')::date"

    def utc_month(self, timestamp: str) -> str:
        return f"date_trunc('month', ({timestamp}) AT TIME ZONE 'UTC')::date"

    def _qualify(self, table: str) -> str:
        return table + "."  # in ON CONFLICT ... DO UPDATE a bare column would be ambiguous

    def trigger_names(self, cursor: Any, table: str, prefix: str) -> set[str]:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal "
                       "AND tgname LIKE %s", [table, prefix + "%"])
        return {row[0] for row in cursor.fetchall()}

    def drop_triggers(self, cursor: Any, table: str, names: set[str], prefix: str) -> None:
        quoted = cursor.db.ops.quote_name(table)
        for name in sorted(names):
            cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {quoted}")
        cursor.execute("SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n "
                       "ON n.oid = p.pronamespace WHERE n.nspname = current_schema() AND p.proname LIKE %s",
                       [prefix + "%"])
        for (signature,) in cursor.fetchall():
            cursor.execute(f"DROP FUNCTION IF EXISTS {signature}")


DIALECTS: dict[str, Dialect] = {"sqlite": SQLite(), "postgresql": PostgreSQL()}  # by connection.vendor


def dialect(connection: Any = None) -> Dialect:
    """The dialect of `connection` (default: the default database's)."""
    vendor = (connection or default_connection).vendor
    try:
        return DIALECTS[vendor]
    except KeyError:
        raise ImproperlyConfigured(f"the hub runs on SQLite or PostgreSQL, not {vendor}") from None
