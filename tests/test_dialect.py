"""The SQL dialect seam: the SQLite the hub's SQL needs, and no vendor branches elsewhere."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections

from core.db import on_connection_created
from core.dialect import SQLite, dialect

CORE = Path(__file__).resolve().parent.parent / "core"


def fake_sqlite_connection() -> SimpleNamespace:
    closed = []
    return SimpleNamespace(vendor="sqlite", settings_dict={"NAME": ":memory:"}, closed=closed,
                           close=lambda: closed.append(True))


@pytest.mark.parametrize("version", [(3, 37, 2), (3, 31, 1), (2, 9, 0)])
def test_an_sqlite_older_than_the_sql_needs_is_refused_naming_both_versions(monkeypatch, version):
    monkeypatch.setattr(sqlite3, "sqlite_version_info", version)
    fake = fake_sqlite_connection()
    found = ".".join(map(str, version))
    with pytest.raises(ImproperlyConfigured, match=rf"SQLite {re.escape(found)} found; the hub needs SQLite 3\.38\.0"):
        on_connection_created(sender=None, connection=fake)
    assert fake.closed == [True]  # not left open for the next query to use unchecked


@pytest.mark.parametrize("version", [(3, 38, 0), (3, 45, 1)])
def test_an_sqlite_new_enough_is_accepted(monkeypatch, version):
    monkeypatch.setattr(sqlite3, "sqlite_version_info", version)
    fake = fake_sqlite_connection()
    on_connection_created(sender=None, connection=fake)
    assert fake.closed == []


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the check is SQLite's")
@pytest.mark.django_db
def test_a_new_connection_to_an_old_sqlite_fails_at_once(monkeypatch):
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 37, 2))
    fresh = connections.create_connection("default")
    try:
        with pytest.raises(ImproperlyConfigured, match="3.37.2 found"):
            fresh.ensure_connection()
        assert fresh.connection is None
        with pytest.raises(ImproperlyConfigured):  # and again: it never runs a query
            fresh.cursor()
    finally:
        fresh.close()


def test_the_running_sqlite_is_new_enough():
    SQLite.require(sqlite3.sqlite_version_info)


# Where naming the database is allowed: the seam itself (core/dialect.py), the connection
# machinery of core/db.py (the SQLite writer lock, WAL checkpointer and version check), the
# settings, and a health line that only reports the vendor.
ALLOWED = {"dialect.py", "db.py", "settings.py", "ops/health.py"}
PENDING: set[str] = set()  # modules not yet behind the seam (none)
VENDOR = re.compile(r"\.vendor\b|USING_SQLITE|[\"']postgresql[\"']|[\"']sqlite[\"']")


def test_no_module_outside_the_seam_asks_which_database_it_runs_on():
    offenders = {}
    for path in CORE.rglob("*.py"):
        name = path.relative_to(CORE).as_posix()
        hits = [n for n, line in enumerate(path.read_text().splitlines(), 1) if VENDOR.search(line)]
        if hits and name not in ALLOWED | PENDING:
            offenders[name] = hits
        elif name in PENDING and not hits:
            offenders[name] = "behind the seam now: take it off PENDING"
    assert offenders == {}


def test_the_dialect_is_the_connections():
    assert dialect() is dialect(connection)
    assert type(dialect()).__name__.lower() == connection.vendor
