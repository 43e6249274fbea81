"""Imports on PostgreSQL: the set-based writes (jsonb_array_elements, database-built events)
give the same records, audit rows and events as on SQLite, and events reach subscriptions.

Run with `make test-integration` (DATABASE_URL=postgres://…/test).
"""

from __future__ import annotations

import re
import threading
import time
from decimal import Decimal

import pytest
from django.conf import settings

from core.audit.models import AuditEntry
from core.erp.models import Customer, Item
from core.events.models import Event
from core.webhooks.models import Delivery
from tests.imports.helpers import errors_of, run_import

pytestmark = pytest.mark.integration

if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
    pytest.skip("needs PostgreSQL (DATABASE_URL); run `make test-integration`", allow_module_level=True)

HEADER = "customer_account,name,currency,credit_limit,segment,email\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_customers_import_on_postgresql(writer, erp, monkeypatch, django_capture_on_commit_callbacks):
    from core.webhooks import services, urlcheck

    monkeypatch.setattr(urlcheck, "check_for_subscribe", lambda url: url)
    sub, _ = services.subscribe(event_type="customer.created", webhook_url="https://hooks.example/in")
    rows = "".join(f"PG-{n:03d},Näme 'quoted' {n},EUR,{n}.50,retail,p{n}@x.example\n" for n in range(120))
    bad = "CUST-001,Exists,EUR,0,,\nPG-X,Bad,EURO,0,,\n"
    with django_capture_on_commit_callbacks(execute=True):
        job = run_import(writer, "customers", HEADER + rows + bad, batch_size=50)
    assert (job.status, job.successful, job.failed) == ("completed", 120, 2), errors_of(job)
    assert errors_of(job) == [(122, "customer_account", "CUST_ALREADY_EXISTS"), (123, "currency", "INVALID_CURRENCY")]
    customer = Customer.objects.get(customer_account="PG-007")
    assert (customer.name, customer.credit_limit, customer.email) == ("Näme 'quoted' 7", Decimal("7.50"),
                                                                    "p7@x.example")
    assert AuditEntry.objects.filter(tool="import.customers", batch_id=job.job_id).count() == 120
    event = Event.objects.get(type="customer.created", data__customer_account="PG-007")
    assert event.data["credit_limit"] == 7.5 and event.data["blocked"] is False and event.data["balance"] == 0
    assert event.data["caused_by"] == {"user": "writer", "audit_id": None, "via": "import"}
    assert re.fullmatch(r"evt_[0-9a-f]{27}", event.event_id), event.event_id
    assert Event.objects.filter(type="customer.created").values("event_id").distinct().count() == 120
    assert Delivery.objects.filter(subscription=sub).count() == 120


def test_items_import_on_postgresql(writer, erp):
    job = run_import(writer, "items", "item_id,name,unit_price,on_hand,reorder_point\n"
                                      "PI-1,Stuhl,149.90,120,20\nPI-2,Tisch,0.05,,\nITEM-001,Taken,1,1,1\n")
    assert (job.successful, job.failed) == (2, 1), errors_of(job)
    first = Item.objects.get(item_id="PI-1")
    assert (first.unit_price, first.on_hand, first.reorder_point, first.reserved) == (Decimal("149.90"), 120, 20, 0)
    assert AuditEntry.objects.filter(tool="import.items", batch_id=job.job_id).count() == 2


def test_history_rows_are_not_checked_against_auth_user(db):
    """No foreign key from events and audit rows to auth_user: an import would check every row."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
                       "AND confrelid = 'auth_user'::regclass")
        referencing = {row[0] for row in cursor.fetchall()}
    assert "events_event" not in referencing and "tools_auditentry" not in referencing
    assert "accounts_apitoken" in referencing  # the others keep theirs


# ---- update and upsert modes ----------------------------------------------------------------
# On PostgreSQL each batch reads and locks its stored records in one SELECT ... FOR UPDATE and
# writes every changed row in one UPDATE ... FROM over a JSON parameter (ImportSpec.stored_rows,
# update_rows); SQLite takes another path (one writer). The SQLite tests of the same modes are in
# tests/imports/test_sync.py.

SYNC = (HEADER
        + "PGS-1,Alpha GmbH,EUR,1000.50,retail,a@alpha.example\n"
        + "PGS-2,Beta AG,USD,,,\n"
        + "PGS-3,Gamma KG,EUR,0,wholesale,g@gamma.example\n"
        + "PGS-4,Delta 'Quote' Ümlaut,CHF,12.34,export,\n"
        + "PGS-5,Epsilon,EUR,99999.99,,e@eps.example\n")
CUSTOMER_COLUMNS = ("customer_account", "name", "currency", "credit_limit", "segment", "email", "search_name",
                    "balance", "blocked", "updated")


def counts(job) -> tuple[int, int, int, int, int]:
    return job.records_created, job.records_updated, job.records_unchanged, job.successful, job.failed


def stored_customers(prefix: str = "PGS-") -> dict[str, tuple]:
    return {row[0]: row for row in Customer.objects.filter(customer_account__startswith=prefix)
            .values_list(*CUSTOMER_COLUMNS)}


def history() -> tuple[int, int]:
    """Audit rows and events, leaving out import.finished (one per job)."""
    return AuditEntry.objects.count(), Event.objects.exclude(type="import.finished").count()


def test_customers_upsert_again_changes_nothing_and_update_writes_the_changed_rows(writer, erp):
    from core import jsoncodec
    from core.erp.models import search_text
    from core.tools.pipeline import call_tool

    created = run_import(writer, "customers", SYNC, batch_size=2)
    assert counts(created) == (5, 0, 0, 5, 0), errors_of(created)
    before, written = stored_customers(), history()

    again = run_import(writer, "customers", SYNC, mode="upsert", batch_size=2)
    assert (again.status, counts(again)) == ("completed", (0, 0, 5, 5, 0)), errors_of(again)
    assert stored_customers() == before  # not even `updated` moved: no row was written
    assert history() == written
    assert AuditEntry.objects.filter(batch_id=again.job_id).count() == 0

    job = run_import(writer, "customers", HEADER
                     + "PGS-1,Alpha GmbH & Co.,,,,\n"                  # name; blank cells leave the rest
                     + "PGS-2,Beta AG,USD,2500.75,export,\n"           # limit and segment
                     + "PGS-3,Gamma KG,EUR,0,wholesale,#N/A\n"         # the e-mail cleared
                     + "PGS-404,Nobody,EUR,0,,\n"                      # unknown key
                     + "PGS-4,Delta 'Quote' Ümlaut,CHF,12.34,export,\n"  # all equal
                     + "PGS-5,,,0.05,#N/A,\n",                         # limit; segment already empty
                     mode="update", batch_size=2)
    assert job.status == "completed"
    assert counts(job) == (0, 4, 1, 5, 1), errors_of(job)
    assert errors_of(job) == [(5, "customer_account", "CUST_NOT_FOUND")]
    assert not Customer.objects.filter(customer_account="PGS-404").exists()

    after = stored_customers()
    names = CUSTOMER_COLUMNS
    as_dict = {key: dict(zip(names, row, strict=True)) for key, row in after.items()}
    old = {key: dict(zip(names, row, strict=True)) for key, row in before.items()}
    alpha = as_dict["PGS-1"]
    assert {k: alpha[k] for k in names[1:6]} == {"name": "Alpha GmbH & Co.", "currency": "EUR",
                                                 "credit_limit": Decimal("1000.50"), "segment": "retail",
                                                 "email": "a@alpha.example"}
    assert alpha["search_name"] == search_text("Alpha GmbH & Co.") != old["PGS-1"]["search_name"]
    assert alpha["updated"] > old["PGS-1"]["updated"]
    assert (as_dict["PGS-2"]["credit_limit"], as_dict["PGS-2"]["segment"], as_dict["PGS-2"]["currency"]) == (
        Decimal("2500.75"), "export", "USD")
    assert (as_dict["PGS-3"]["email"], as_dict["PGS-3"]["segment"]) == ("", "wholesale")
    assert (as_dict["PGS-5"]["credit_limit"], as_dict["PGS-5"]["name"], as_dict["PGS-5"]["email"]) == (
        Decimal("0.05"), "Epsilon", "e@eps.example")
    assert after["PGS-4"] == before["PGS-4"]  # unchanged: not written
    for key in ("PGS-1", "PGS-2", "PGS-3", "PGS-5"):  # what an update does not name stays
        assert (as_dict[key]["balance"], as_dict[key]["blocked"]) == (old[key]["balance"], old[key]["blocked"])
        assert as_dict[key]["updated"] > old[key]["updated"]

    updated = [e.data for e in Event.objects.filter(type="customer.updated").order_by("id")]
    assert [(e["customer_account"], e["changed"]) for e in updated] == [
        ("PGS-1", ["name"]), ("PGS-2", ["credit_limit", "segment"]), ("PGS-3", ["email"]),
        ("PGS-5", ["credit_limit"])]
    assert all(e["caused_by"] == {"user": "writer", "audit_id": None, "via": "import"} for e in updated)
    assert updated[0]["name"] == "Alpha GmbH & Co." and updated[0]["credit_limit"] == Decimal("1000.50")
    assert updated[3]["credit_limit"] == Decimal("0.05")
    # Each event carries what ax_get_customer returns, key for key (compared as the JSON both become).
    for event in updated:
        shown = call_tool("ax_get_customer", {"customer_account": event["customer_account"]}, writer)
        assert jsoncodec.dumps({k: v for k, v in event.items() if k not in ("changed", "caused_by")},
                               sort_keys=True) == jsoncodec.dumps(shown, sort_keys=True)
    audit = AuditEntry.objects.filter(batch_id=job.job_id)
    assert audit.count() == 4
    assert set(audit.values_list("tool", flat=True)) == {"import.customers"}
    assert set(audit.values_list("username", flat=True)) == {"writer"}


def test_customers_upsert_creates_and_updates_in_one_batch(writer, erp):
    run_import(writer, "customers", SYNC)
    before, (audits_before, _) = stored_customers(), history()
    job = run_import(writer, "customers", "customer_account,name,currency,credit_limit\n"
                                          "PGS-1,Alpha neu,,\n"         # update
                                          "PGS-9,Neu GmbH,CHF,77.70\n"  # create
                                          "PGS-2,Beta AG,USD,\n"        # unchanged
                                          "PGS-10,Ohne Währung,,\n"     # create without its currency
                                          "PGS-11,Neu Zwei,SEK,\n"      # create
                                          "PGS-3,Gamma KG,EUR,5\n"      # update
                                          "CUST-001,Müller GmbH,EUR,10000.00\n",  # unchanged
                     mode="upsert", batch_size=4)
    assert job.status == "completed"
    assert counts(job) == (2, 2, 2, 6, 1), errors_of(job)
    assert errors_of(job) == [(5, "currency", "MISSING_FIELD")]
    new = Customer.objects.get(customer_account="PGS-9")
    assert (new.name, new.currency, new.credit_limit, new.segment, new.balance) == (
        "Neu GmbH", "CHF", Decimal("77.70"), "", Decimal("0.00"))
    assert Customer.objects.get(customer_account="PGS-11").credit_limit == Decimal("0.00")
    assert not Customer.objects.filter(customer_account="PGS-10").exists()
    alpha = Customer.objects.get(customer_account="PGS-1")
    assert (alpha.name, alpha.currency, alpha.credit_limit, alpha.email) == (
        "Alpha neu", "EUR", Decimal("1000.50"), "a@alpha.example")
    assert Customer.objects.get(customer_account="PGS-3").credit_limit == Decimal("5.00")
    after = stored_customers()
    assert after["PGS-2"] == before["PGS-2"] and after["PGS-4"] == before["PGS-4"]
    assert [e.data["customer_account"] for e in Event.objects.filter(type="customer.created").order_by("id")][-2:] \
        == ["PGS-9", "PGS-11"]
    assert [(e.data["customer_account"], e.data["changed"])
            for e in Event.objects.filter(type="customer.updated").order_by("id")] == [
        ("PGS-1", ["name"]), ("PGS-3", ["credit_limit"])]
    assert AuditEntry.objects.filter(batch_id=job.job_id, tool="import.customers").count() == 4
    assert AuditEntry.objects.count() == audits_before + 4


def test_items_update_sets_the_counted_stock_never_below_reserved_on_postgresql(writer, erp):
    from core.tools.pipeline import call_tool

    call_tool("ax_create_salesorder", {"customer_account": "CUST-001",
                                       "lines": [{"item_id": "ITEM-001", "quantity": 30}]}, writer)  # reserves 30
    lamp_before = Item.objects.get(item_id="ITEM-003").updated
    job = run_import(writer, "items", "item_id,on_hand,unit_price\nITEM-001,35,\nITEM-002,4,455.00\nITEM-003,#N/A,\n"
                                      "ITEM-001X,1,\n", mode="update", batch_size=2)
    assert errors_of(job) == [(5, "item_id", "ITEM_NOT_FOUND")]
    assert counts(job) == (0, 2, 1, 3, 1)  # the lamp had 0 on hand already
    chair = Item.objects.get(item_id="ITEM-001")
    assert (chair.on_hand, chair.reserved, chair.unit_price, chair.reorder_point) == (35, 30, Decimal("100.00"), 10)
    desk = Item.objects.get(item_id="ITEM-002")
    assert (desk.on_hand, desk.reserved, desk.unit_price, desk.name) == (4, 0, Decimal("455.00"), "Desk")
    assert Item.objects.get(item_id="ITEM-003").updated == lamp_before
    # 35 - 30 = 5 available: below the chair's reorder point of 10; the desk (4 >= 2) stays above its own.
    low = [e.data for e in Event.objects.filter(type="inventory.low_stock").order_by("id")]
    assert [(e["item_id"], e["on_hand"], e["reserved"], e["available"], e["cause"], e["caused_by"]["via"])
            for e in low] == [("ITEM-001", 35, 30, 5, "inventory adjustment: import", "import")]
    assert AuditEntry.objects.filter(batch_id=job.job_id, tool="import.items").count() == 2

    below = run_import(writer, "items", "item_id,on_hand\nITEM-001,29\nITEM-002,3\n", mode="update", batch_size=2)
    assert errors_of(below) == [(2, "on_hand", "INSUFFICIENT_STOCK")]
    assert counts(below) == (0, 1, 0, 1, 1)
    assert Item.objects.get(item_id="ITEM-001").on_hand == 35
    assert Item.objects.get(item_id="ITEM-002").on_hand == 3
    assert Event.objects.filter(type="inventory.low_stock").count() == 1  # already below: not announced again


def test_items_upsert_of_the_same_file_twice_changes_nothing_the_second_time(writer, erp):
    items = ("item_id,name,unit_price,on_hand,reorder_point\n"
             "PI-1,Stuhl,149.90,120,20\nPI-2,Tisch,0.05,,\nITEM-002,Desk,450.50,5,2\n"
             "PI-3,Lampe 'Ö',12,3,\nPI-4,Regal,1234.5,0,0\n")
    first = run_import(writer, "items", items, mode="upsert", batch_size=2)
    assert counts(first) == (4, 0, 1, 5, 0), errors_of(first)
    snapshot = set(Item.objects.values_list("item_id", "name", "unit_price", "on_hand", "reserved",
                                            "reorder_point", "search_name", "updated"))
    written = history()
    second = run_import(writer, "items", items, mode="upsert", batch_size=2)
    assert (second.status, counts(second)) == ("completed", (0, 0, 5, 5, 0)), errors_of(second)
    assert set(Item.objects.values_list("item_id", "name", "unit_price", "on_hand", "reserved",
                                        "reorder_point", "search_name", "updated")) == snapshot
    assert history() == written
    assert Item.objects.get(item_id="PI-4").unit_price == Decimal("1234.50")


# ---- the lock: a batch's records against a concurrent tool call ---------------------------------
# Deterministic: one side is held inside its write transaction (a hook waiting on an Event) while
# the other starts; PostgreSQL itself (pg_blocking_pids) then says that the other waits for it.

LOCK_UPDATE = (HEADER
               + "PGS-1,Alpha Import,,,,\n"
               + "PGS-2,Beta Import,,,,\n"
               + "PGS-3,Gamma Import,,,import-segment,\n"  # the second batch: the one held
               + "PGS-4,Delta Import,,,,\n"
               + "PGS-5,Epsilon Import,,,,\n")


class Worker(threading.Thread):
    """Runs fn on its own thread, hence its own database connection (pid: its backend)."""

    def __init__(self, fn) -> None:
        super().__init__(daemon=True)
        self.fn, self.pid, self.result, self.error = fn, None, None, None
        self.started_work = threading.Event()

    def run(self) -> None:
        from django.db import connection, connections

        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]
            self.started_work.set()
            self.result = self.fn()
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.started_work.set()
            connections.close_all()


def wait_until_blocked(waiter: Worker, holder: Worker, timeout: float = 15.0) -> None:
    """Until PostgreSQL reports `waiter` waiting for a lock `holder` holds; fails if the waiter
    finishes first (it did not wait) or the wait never comes."""
    from django.db import connection

    assert waiter.started_work.wait(timeout) and waiter.pid and holder.pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_blocking_pids(%s)", [waiter.pid])
            if holder.pid in cursor.fetchone()[0]:
                return
        if not waiter.is_alive():
            pytest.fail(f"it did not wait for the other transaction: finished with {waiter.error or waiter.result!r}")
        time.sleep(0.01)
    pytest.fail("no lock wait within the timeout")


@pytest.fixture
def no_worker_queue(monkeypatch):
    """The test runs its imports itself; with transaction=True the on_commit enqueue would fire."""
    from core.imports import services as import_services

    monkeypatch.setattr(import_services, "_enqueue", lambda task, job_pk: None)


def customer_values(account: str) -> tuple:
    return Customer.objects.filter(customer_account=account).values_list(
        "name", "credit_limit", "segment", "email").get()


def pg3_events() -> list[tuple[str, list[str], dict]]:
    return [(e.data["caused_by"]["via"], e.data["changed"], e.data)
            for e in Event.objects.filter(type="customer.updated", data__customer_account="PGS-3").order_by("id")]


def hold_import_after_locking(monkeypatch, account: str) -> tuple[threading.Event, threading.Event]:
    """The import stops right after its batch with `account` read and locked its records
    (classify(lock=True)), before it writes them; it goes on when released."""
    from core.imports.specs import CustomersSpec, ImportSpec

    locked, release = threading.Event(), threading.Event()
    original = ImportSpec.classify

    def classify(self, outcomes, mode, *, lock):
        original(self, outcomes, mode, lock=lock)
        if lock and any(o.record.get("customer_account") == account for o in outcomes):
            locked.set()
            if not release.wait(30):
                raise RuntimeError("the test never released the import")

    monkeypatch.setattr(CustomersSpec, "classify", classify)
    return locked, release


def run_concurrent_tool_while_import_holds_lock(writer, monkeypatch):
    """The import has read and locked PGS-3 (its second batch); a tool call then changes PGS-3."""
    from core.tools.pipeline import call_tool

    run_import(writer, "customers", SYNC)
    old = customer_values("PGS-3")
    locked, release = hold_import_after_locking(monkeypatch, "PGS-3")
    importer = Worker(lambda: run_import(writer, "customers", LOCK_UPDATE, mode="update", batch_size=2))
    tool = Worker(lambda: call_tool("ax_update_customer", {"customer_account": "PGS-3", "credit_limit": 777.7,
                                                           "segment": "tool-segment"}, writer))
    try:
        importer.start()
        assert locked.wait(15), f"the import never reached PGS-3's batch: {importer.error!r}"
        tool.start()
        wait_until_blocked(tool, importer)
        assert tool.is_alive() and customer_values("PGS-3") == old  # neither committed yet
        assert Customer.objects.get(customer_account="PGS-1").name == "Alpha Import"  # the first batch did
    finally:
        release.set()
        importer.join(30)
        tool.join(30)
    assert not importer.is_alive() and not tool.is_alive()
    assert importer.error is None and tool.error is None, (importer.error, tool.error)
    return importer.result, tool.result


@pytest.mark.django_db(transaction=True)
def test_a_tool_call_waits_for_the_import_batch_that_locked_its_customer(writer, erp, no_worker_queue,
                                                                         monkeypatch):
    job, output = run_concurrent_tool_while_import_holds_lock(writer, monkeypatch)
    assert (job.status, counts(job)) == ("completed", (0, 5, 0, 5, 0)), errors_of(job)
    assert output["changed"] == ["credit_limit", "segment"]
    # The import committed first: its name stays; the tool, last, set the limit and the segment.
    assert customer_values("PGS-3") == ("Gamma Import", Decimal("777.70"), "tool-segment", "g@gamma.example")
    assert [(via, changed) for via, changed, _ in pg3_events()] == [
        ("import", ["name", "segment"]), ("python", ["credit_limit", "segment"])]
    assert AuditEntry.objects.filter(tool="ax_update_customer", success=True).count() == 1
    assert AuditEntry.objects.filter(batch_id=job.job_id, tool="import.customers").count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_tool_call_that_waited_for_an_import_announces_the_record_as_stored(writer, erp, no_worker_queue,
                                                                              monkeypatch):
    from core.tools.pipeline import call_tool

    _, output = run_concurrent_tool_while_import_holds_lock(writer, monkeypatch)
    stored = call_tool("ax_get_customer", {"customer_account": "PGS-3"}, writer)
    last = pg3_events()[-1][2]
    assert (output["name"], last["name"]) == (stored["name"], stored["name"]) == ("Gamma Import", "Gamma Import")


@pytest.mark.django_db(transaction=True)
def test_an_import_batch_waits_for_a_tool_call_and_keeps_its_change(writer, erp, no_worker_queue, monkeypatch):
    from core.erp import services as erp_services
    from core.tools.pipeline import call_tool

    run_import(writer, "customers", SYNC)
    old = customer_values("PGS-3")
    in_tool, release = threading.Event(), threading.Event()
    publish = erp_services.publish

    def held_publish(type_, data, *args, **kwargs):  # the tool, after its UPDATE, before its commit
        result = publish(type_, data, *args, **kwargs)
        if type_ == "customer.updated" and data["customer_account"] == "PGS-3":
            in_tool.set()
            if not release.wait(30):
                raise RuntimeError("the test never released the tool call")
        return result

    monkeypatch.setattr(erp_services, "publish", held_publish)
    tool = Worker(lambda: call_tool("ax_update_customer", {"customer_account": "PGS-3", "name": "Gamma Tool",
                                                           "credit_limit": 555.55}, writer))
    importer = Worker(lambda: run_import(writer, "customers", LOCK_UPDATE, mode="update", batch_size=2))
    try:
        tool.start()
        assert in_tool.wait(15), f"the tool call never wrote: {tool.error!r}"
        importer.start()
        wait_until_blocked(importer, tool)
        assert importer.is_alive() and customer_values("PGS-3") == old
    finally:
        release.set()
        tool.join(30)
        importer.join(30)
    assert not importer.is_alive() and not tool.is_alive()
    assert importer.error is None and tool.error is None, (importer.error, tool.error)
    job = importer.result
    assert (job.status, counts(job)) == ("completed", (0, 5, 0, 5, 0)), errors_of(job)
    # The import read PGS-3 after the tool's commit: it wrote its name and segment over the
    # tool's record, keeping the tool's credit limit (no stale value written back).
    assert customer_values("PGS-3") == ("Gamma Import", Decimal("555.55"), "import-segment", "g@gamma.example")
    events = pg3_events()
    assert [(via, changed) for via, changed, _ in events] == [
        ("python", ["name", "credit_limit"]), ("import", ["name", "segment"])]
    assert (events[1][2]["name"], events[1][2]["credit_limit"]) == ("Gamma Import", Decimal("555.55"))
