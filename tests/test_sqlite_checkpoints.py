"""WAL checkpoints run on a background thread of each process, not inside commits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core.db import WalCheckpointer
from tests.waiting import wait_until


def test_background_checkpoints_copy_the_wal_into_the_database_file(tmp_path: Path, settings):
    settings.SQLITE_CHECKPOINT_MS = 20
    path = tmp_path / "wal.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # nothing is checkpointed inside commits
    writer.execute("CREATE TABLE t (x TEXT)")
    for _ in range(50):
        writer.execute("INSERT INTO t VALUES (?)", ["x" * 20_000])
    size_before = path.stat().st_size
    assert Path(f"{path}-wal").stat().st_size > 900_000 > size_before  # the rows are in the WAL only
    checkpointer = WalCheckpointer()
    checkpointer.ensure_running(str(path))
    try:
        wait_until(lambda: path.stat().st_size > 900_000, what="a checkpoint to run")
    finally:
        checkpointer.ensure_running(str(tmp_path / "other.sqlite3"))  # stops the first thread
    writer.close()


def test_one_thread_per_process_and_database(tmp_path: Path, settings):
    settings.SQLITE_CHECKPOINT_MS = 20
    for name in ("a", "b"):  # existing files, as the connection that starts the thread has opened them
        sqlite3.connect(tmp_path / f"{name}.sqlite3").close()
    checkpointer = WalCheckpointer()
    checkpointer.ensure_running(str(tmp_path / "a.sqlite3"))
    first = checkpointer._thread
    checkpointer.ensure_running(str(tmp_path / "a.sqlite3"))
    assert checkpointer._thread is first
    checkpointer.ensure_running(str(tmp_path / "b.sqlite3"))
    assert checkpointer._thread is not first
    first.join(5)
    assert not first.is_alive()  # the thread of the old file stopped
    checkpointer._stop.set()
    checkpointer._thread.join(5)
    assert not checkpointer._thread.is_alive()


def test_audit_table_keeps_one_index_for_lookups_by_user(db):
    """The foreign key's own index was dropped (covered by (user, created)), on every database."""
    from django.db import connection

    from core.audit.models import AuditEntry

    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, AuditEntry._meta.db_table)
    indexes = [c["columns"] for c in constraints.values() if c["index"] and not c["primary_key"]]
    assert ["user_id"] not in indexes
    assert ["user_id", "created"] in indexes


def test_rows_are_read_in_the_models_field_order():
    """core.erp.rows builds instances with Model.from_db, which takes values in field order."""
    from core.erp import rows
    from core.erp.models import Customer, Item

    for model, fields in ((Customer, rows.CUSTOMER_FIELDS), (Item, rows.ITEM_FIELDS)):
        order = [f.attname for f in model._meta.concrete_fields]
        assert [f for f in order if f in fields] == list(fields)


def test_an_import_holds_its_batches_pages_in_memory_and_restores_the_connection(db, settings, monkeypatch,
                                                                                 tmp_path: Path):
    # An import batch's changed pages stay in memory until its commit (cache_spill OFF while the
    # import runs); the connection spills again afterwards, for whatever it runs next.
    from django.db import connection

    from core.accounts.roles import MCP_WRITE
    from core.accounts.services import create_user
    from core.imports.specs import CustomersSpec
    from tests.imports.helpers import run_import

    def spill() -> int:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_spill")
            return cursor.fetchone()[0]

    settings.MEDIA_ROOT = tmp_path / "media"
    before = spill()
    assert before > 0  # SQLite's default: spilling on, at the cache size
    seen = []
    write = CustomersSpec.write

    def recording(self, outcomes, ctx):
        seen.append(spill())
        return write(self, outcomes, ctx)

    monkeypatch.setattr(CustomersSpec, "write", recording)
    user = create_user("spill", MCP_WRITE, password="spill-pass-123")
    job = run_import(user, "customers", "customer_account,name,currency\nSP-1,One,EUR\nSP-2,Two,EUR\n",
                     batch_size=1)
    assert (job.status, job.successful) == ("completed", 2)
    assert seen == [0, 0]
    assert spill() == before
