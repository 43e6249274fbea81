"""Reading ahead (core.imports.ahead): the next chunk is read and validated on a thread while the
current one is written, with the same results as on one thread."""

from __future__ import annotations

import sys
import threading

import pytest

from core.audit.models import AuditEntry
from core.erp.models import Customer
from core.events.models import Event
from core.imports import engine, specs
from core.imports.ahead import READ_AHEAD_SWITCH_S, read_ahead
from core.imports.readers import ImportFailure
from tests.imports.helpers import errors_of, run_import

HEADER = "customer_account,name,currency,credit_limit\n"


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "import-read-ahead"]


def test_items_come_in_order_from_the_reader_thread():
    def source():
        for n in range(5):
            yield n, threading.current_thread().name

    with read_ahead(source()) as items:
        got = list(items)
    assert [n for n, _ in got] == [0, 1, 2, 3, 4]
    assert {name for _, name in got} == {"import-read-ahead"}
    assert not _reader_threads()


def test_disabled_reads_in_the_callers_thread():
    with read_ahead((threading.current_thread().name for _ in range(2)), enabled=False) as items:
        assert list(items) == [threading.current_thread().name] * 2


def test_an_error_of_the_source_comes_after_the_items_before_it():
    def source():
        yield 1
        yield 2
        raise ImportFailure("INVALID_FILE", "line 9: broken")

    got = []
    with pytest.raises(ImportFailure, match="line 9"), read_ahead(source()) as items:
        for item in items:
            got.append(item)
    assert got == [1, 2]
    assert not _reader_threads()


def test_leaving_early_stops_and_joins_the_reader():
    produced = []

    def source():
        for n in range(1000):
            produced.append(n)
            yield n

    with read_ahead(source()) as items:
        assert next(items) == 0
    assert not _reader_threads()
    assert len(produced) <= 3  # the item taken, one queued, one waiting to be


def test_the_switch_interval_is_short_while_reading_ahead_and_restored_after():
    before, short = sys.getswitchinterval(), pytest.approx(min(sys.getswitchinterval(), READ_AHEAD_SWITCH_S))
    with read_ahead(iter([1])) as outer:
        assert sys.getswitchinterval() == short
        with read_ahead(iter([2])) as inner:  # two imports at once in one process
            assert list(inner) == [2]
        assert sys.getswitchinterval() == short
        assert list(outer) == [1]
    assert sys.getswitchinterval() == before


def _file() -> str:
    rows = [f"RA-{n:03d},Name {n},EUR,{n}.5\n" for n in range(45)]
    rows[3] = "RA-003,Bad currency,EURO,0\n"           # line 5
    rows[12] = "CUST-001,Exists,EUR,0\n"               # line 14: in the database
    rows[21] = 'RA-021,"Two\nlines",EUR,1\n'           # lines 23-24
    rows[30] = "RA-001,Duplicate,EUR,0\n"              # line 33: RA-001 is on line 3
    rows[40] = "RA-040,,EUR,0\n"                       # line 43: no name
    return HEADER + "".join(rows)


@pytest.mark.parametrize("ahead", [True, False], ids=["read-ahead", "one-thread"])
def test_read_ahead_and_one_thread_import_the_same(writer, erp, settings, ahead):
    settings.IMPORT_READ_AHEAD = ahead
    job = run_import(writer, "customers", _file(), batch_size=10)
    assert (job.status, job.total, job.successful, job.failed, job.checkpoint) == ("completed", 45, 41, 4, 45)
    assert errors_of(job) == [(5, "currency", "INVALID_CURRENCY"), (14, "customer_account", "CUST_ALREADY_EXISTS"),
                              (33, "customer_account", "DUPLICATE_KEY"), (43, "name", "MISSING_FIELD")]
    assert Customer.objects.filter(customer_account__startswith="RA-").count() == 41
    assert Customer.objects.get(customer_account="RA-021").name == "Two\nlines"
    assert AuditEntry.objects.filter(batch_id=job.job_id).count() == 41
    assert Event.objects.filter(type="customer.created", data__customer_account__startswith="RA-").count() == 41
    assert [r["line"] for r in job.preview["rows"]] == [2, 3, 4, 5, 6]
    assert not _reader_threads()


def test_a_fault_met_ahead_fails_the_job_after_the_batches_before_it(writer, erp, monkeypatch):
    original, calls = engine._validate, {"n": 0}

    def third_batch_broken(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise ImportFailure("INVALID_FILE", "line 22: broken")
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "_validate", third_batch_broken)
    job = run_import(writer, "customers", _file(), batch_size=10)
    assert (job.status, job.last_error) == ("failed", "INVALID_FILE: line 22: broken")
    # The two batches before it: 20 rows, less line 5's currency and line 14's taken key.
    assert job.checkpoint == 20 and Customer.objects.filter(customer_account__startswith="RA-").count() == 18
    assert not _reader_threads()


def test_the_payload_is_built_on_the_reader_and_rebuilt_only_when_the_check_refuses_a_row(writer, erp,
                                                                                             monkeypatch):
    built = []
    original = specs.rows_payload

    def recording(rows):
        built.append((threading.current_thread().name, len(rows)))
        return original(rows)

    monkeypatch.setattr(specs, "rows_payload", recording)
    job = run_import(writer, "customers", HEADER + "".join(f"RB-{n},N {n},EUR,1\n" for n in range(6)), batch_size=3)
    assert job.successful == 6
    assert built == [("import-read-ahead", 3), ("import-read-ahead", 3)]

    built.clear()
    job = run_import(writer, "customers", HEADER + "RC-1,A,EUR,1\nCUST-001,Taken,EUR,1\nRC-2,B,EUR,1\n")
    assert (job.successful, job.failed) == (2, 1)
    writer_thread = threading.current_thread().name
    assert built == [("import-read-ahead", 3), (writer_thread, 2)]  # prepared for 3; written for the 2 left
    assert Customer.objects.filter(customer_account__startswith="RC-").count() == 2


def test_only_create_mode_reads_ahead(writer, erp, monkeypatch):
    used = []
    original = engine.read_ahead

    def recording(source, *, enabled=True, **options):
        used.append(enabled)
        return original(source, enabled=enabled, **options)

    monkeypatch.setattr(engine, "read_ahead", recording)
    run_import(writer, "customers", HEADER + "RD-1,A,EUR,1\n")
    job = run_import(writer, "customers", HEADER + "RD-1,B,EUR,1\nRD-2,C,EUR,1\n", mode="upsert")
    assert (job.records_created, job.records_updated) == (1, 1)
    assert used == [True, False]


def test_a_fault_the_count_finds_fails_the_file_before_anything_is_written(writer, erp):
    rows = "".join(f"RF-{n},N {n},EUR,1\n" for n in range(40))
    job = run_import(writer, "customers", HEADER + rows + 'RF-99,"never closed,EUR,1\n', batch_size=10)
    assert job.status == "failed" and job.last_error.startswith("INVALID_FILE") and "line 42" in job.last_error
    assert (job.checkpoint, Customer.objects.filter(customer_account__startswith="RF-").count()) == (0, 0)
    assert not _reader_threads()


def test_the_cycle_collector_is_off_while_a_job_runs_and_back_on_after(writer, erp, monkeypatch):
    import gc

    seen = []
    write = specs.CustomersSpec.write

    def recording(self, outcomes, ctx):
        seen.append(gc.isenabled())
        return write(self, outcomes, ctx)

    monkeypatch.setattr(specs.CustomersSpec, "write", recording)
    assert gc.isenabled()
    job = run_import(writer, "customers", HEADER + "GC-1,One,EUR,0\nGC-2,Two,EUR,0\n", batch_size=1)
    assert (job.status, job.successful, seen) == ("completed", 2, [False, False])
    assert gc.isenabled()

    with engine._without_cycle_collection():  # two runs at once in one process
        with engine._without_cycle_collection():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()  # off before (someone else's choice): stays off
    try:
        with engine._without_cycle_collection():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()

    def failing(self, outcomes, ctx):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(specs.CustomersSpec, "write", failing)
    with pytest.raises(RuntimeError):
        run_import(writer, "customers", HEADER + "GC-3,Three,EUR,0\n")
    assert gc.isenabled()
