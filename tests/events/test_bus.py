"""The event system: what ERP operations publish, with which context, and when nothing is published."""

from __future__ import annotations

import logging

import pytest
from django.db import transaction

from core.audit.models import AuditEntry
from core.erp import services as erp_services
from core.erp.models import SalesOrder
from core.errors import ToolError
from core.events import bus
from core.events.models import Event
from core.tools.pipeline import call_tool

ORDER = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 2}]}


def types() -> list[str]:
    return list(Event.objects.order_by("id").values_list("type", flat=True))


def test_an_order_event_carries_the_full_context_and_its_audit_entry(erp, writer):
    created = call_tool("ax_create_salesorder", ORDER, writer)
    event = Event.objects.get(type="salesorder.created")
    audit = AuditEntry.objects.get(tool="ax_create_salesorder")
    assert event.event_id.startswith("evt_") and event.audit_id == audit.pk and event.user == writer
    data = event.data
    assert (data["sales_id"], data["customer_account"], data["total_amount"], data["currency"]) == (
        created["sales_id"], "CUST-001", 200.0, "EUR")
    assert data["lines"] == [{"line_number": 1, "item_id": "ITEM-001", "quantity": 2, "unit_price": 100.0,
                              "line_amount": 200.0}]
    assert data["caused_by"] == {"user": "writer", "audit_id": audit.pk, "via": "python"}


def test_every_erp_operation_publishes_its_event(erp, writer):
    call_tool("ax_create_customer", {"customer_account": "CUST-009", "name": "New", "currency": "EUR"}, writer)
    call_tool("ax_update_customer", {"customer_account": "CUST-009", "name": "Renamed"}, writer)
    sales_id = call_tool("ax_create_salesorder", ORDER, writer)["sales_id"]
    call_tool("ax_update_salesorder", {"sales_id": sales_id, "customer_ref": "PO-1"}, writer)
    invoice = call_tool("ax_create_invoice", {"sales_id": sales_id}, writer)
    call_tool("ax_post_payment", {"customer_account": "CUST-001", "amount": 50, "invoice_id": invoice["invoice_id"]},
              writer)
    other = call_tool("ax_create_salesorder", ORDER, writer)["sales_id"]
    call_tool("ax_cancel_salesorder", {"sales_id": other, "reason": "duplicate"}, writer)
    assert types() == ["customer.created", "customer.updated", "salesorder.created", "salesorder.updated",
                       "invoice.created", "payment.posted", "salesorder.created", "salesorder.cancelled"]
    assert Event.objects.get(type="customer.updated").data["changed"] == ["name"]
    assert Event.objects.get(type="salesorder.cancelled").data["cancel_reason"] == "duplicate"
    assert Event.objects.get(type="payment.posted").data["amount"] == 50.0
    assert Event.objects.get(type="invoice.created").data["sales_id"] == sales_id


def test_low_stock_is_published_once_when_available_falls_below_the_reorder_point(erp, writer):
    # ITEM-001: 50 on hand, reorder point 10.
    call_tool("ax_create_salesorder", {**ORDER, "lines": [{"item_id": "ITEM-001", "quantity": 35}]}, writer)
    assert "inventory.low_stock" not in types()  # 15 available
    sales_id = call_tool("ax_create_salesorder", {**ORDER, "lines": [{"item_id": "ITEM-001", "quantity": 6}]},
                         writer)["sales_id"]
    low = Event.objects.get(type="inventory.low_stock")
    assert (low.data["item_id"], low.data["available"], low.data["reorder_point"], low.data["sales_id"]) == (
        "ITEM-001", 9, 10, sales_id)
    call_tool("ax_create_salesorder", {**ORDER, "lines": [{"item_id": "ITEM-001", "quantity": 1}]}, writer)
    assert types().count("inventory.low_stock") == 1  # already below: no new event
    call_tool("ax_adjust_inventory", {"item_id": "ITEM-001", "quantity_change": 20, "reason": "delivery"}, writer)
    call_tool("ax_adjust_inventory", {"item_id": "ITEM-001", "quantity_change": -25, "reason": "damaged"}, writer)
    assert types().count("inventory.low_stock") == 2
    assert Event.objects.filter(type="inventory.low_stock").first().data["cause"].endswith("damaged")


def test_a_refused_operation_publishes_nothing(erp, writer):
    with pytest.raises(ToolError):
        call_tool("ax_create_salesorder", {**ORDER, "lines": [{"item_id": "ITEM-003", "quantity": 1}]}, writer)
    assert types() == []


def test_a_rolled_back_transaction_publishes_nothing(erp):
    with pytest.raises(RuntimeError), transaction.atomic():
        order = erp_services.create_sales_order(**ORDER)
        assert Event.objects.filter(type="salesorder.created").count() == 1
        assert order.sales_id
        raise RuntimeError("roll back")
    assert types() == []


def test_publishing_outside_a_tool_call_stores_at_once(erp):
    erp_services.create_customer("CUST-010", "Direct", "EUR")
    event = Event.objects.get()
    assert event.audit_id is None and event.data["caused_by"] == {"user": None, "audit_id": None, "via": None}


def test_a_failure_inside_publishing_is_logged_and_the_call_succeeds(erp, writer, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ValueError("event store is broken")

    monkeypatch.setattr("core.db.fast_insert", broken)
    with caplog.at_level(logging.ERROR, logger="core.events.bus"):
        created = call_tool("ax_create_salesorder", ORDER, writer)
    assert created["sales_id"] and "could not store 1 salesorder.created event(s)" in caplog.text
    assert bus.failure_summary()["count"] >= 1
    assert "event store is broken" in bus.failure_summary()["last"]["error"]


def test_a_database_refusing_the_event_leaves_the_operation_committed(erp, writer, monkeypatch, caplog):
    """The event insert fails in the database itself (a taken event id): the order, its audit row
    and the rest of its transaction still commit (SQLite undoes only the failed statement;
    PostgreSQL runs the insert in a savepoint)."""
    Event.objects.create(event_id="evt_taken", type="customer.created", data={})
    monkeypatch.setattr(bus, "new_event_id", lambda: "evt_taken")
    with caplog.at_level(logging.ERROR, logger="core.events.bus"):
        created = call_tool("ax_create_salesorder", ORDER, writer)
    assert "could not store 1 salesorder.created event(s)" in caplog.text
    assert SalesOrder.objects.filter(sales_id=created["sales_id"]).exists()
    assert AuditEntry.objects.filter(tool="ax_create_salesorder", success=True).count() == 1
    assert Event.objects.count() == 1


def test_publish_many_stores_in_bulk_with_audit_ids(db, admin, django_assert_max_num_queries):
    items = [{"customer_account": f"C-{n}", "name": f"n{n}"} for n in range(300)]
    # A few statements whatever the number of items (SQLite splits the insert into batches).
    with django_assert_max_num_queries(8), transaction.atomic():
        bus.publish_many("customer.created", items, user=admin, audit_ids=list(range(1, 301)))
    assert Event.objects.count() == 300
    assert Event.objects.get(data__customer_account="C-7").audit_id == 8
    with pytest.raises(ValueError):
        bus.publish_many("customer.created", items, audit_ids=[1])


def test_publish_rows_stores_one_event_per_encoded_data_in_one_statement(db, admin):
    from json.encoder import encode_basestring

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    names = [f'Nämé "{n}" 100%% O\'Brien\\{n}' for n in range(250)]
    members = [f'"customer_account":"R-{n}","name":{encode_basestring(name)},"credit_limit":12.5'
               for n, name in enumerate(names)]
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        bus.publish_rows("customer.created", members, user=admin, via="import")
    assert [q["sql"].split(" (")[0] for q in queries if "events_event" in q["sql"]] == ['INSERT INTO "events_event"']
    events = {e.data["customer_account"]: e for e in Event.objects.filter(type="customer.created")}
    assert len(events) == 250 and len({e.event_id for e in events.values()}) == 250
    event = events["R-7"]
    assert event.data["name"] == names[7] and event.data["credit_limit"] == 12.5
    assert event.data["caused_by"] == {"user": "admin", "audit_id": None, "via": "import"}
    assert (event.user, event.username, event.audit_id) == (admin, "admin", None)
    assert event.event_id.startswith("evt_") and len(event.event_id) == 31


def test_low_stock_from_an_order_with_several_lines_names_only_the_items_that_crossed(erp, writer):
    # ITEM-001: 50 on hand, reorder point 10; ITEM-002 stays well above its own.
    call_tool("ax_create_salesorder", {**ORDER, "lines": [{"item_id": "ITEM-001", "quantity": 20},
                                                           {"item_id": "ITEM-002", "quantity": 1},
                                                           {"item_id": "ITEM-001", "quantity": 25}]}, writer)
    low = Event.objects.get(type="inventory.low_stock")
    assert (low.data["item_id"], low.data["on_hand"], low.data["reserved"], low.data["available"]) == (
        "ITEM-001", 50, 45, 5)


def test_hot_path_statements_are_logged_when_queries_are_captured(erp, writer):
    """The per-call statements skip Django's cursor wrapper, except while queries are logged."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        call_tool("ax_create_salesorder", ORDER, writer)
    statements = " ".join(q["sql"] for q in captured.captured_queries)
    assert "RETURNING" in statements and "tools_auditentry" in statements and "events_event" in statements


def test_hot_path_statements_translate_database_errors(db):
    from django.db import IntegrityError

    from core.db import run_sql

    run_sql("INSERT INTO events_event (event_id, type, created, data, username, fanned_out, fanout_error) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)", ["evt_x", "t", "2026-01-01 00:00:00", "{}", "", False, ""])
    with pytest.raises(IntegrityError), transaction.atomic():
        run_sql("INSERT INTO events_event (event_id, type, created, data, username, fanned_out, fanout_error) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)", ["evt_x", "t", "2026-01-01 00:00:00", "{}", "", False, ""])
    assert run_sql("SELECT count(*) FROM events_event WHERE event_id = %s", ["evt_x"]) == [(1,)]
    assert run_sql("UPDATE events_event SET type = %s WHERE event_id = %s", ["u", "evt_x"]) is None


@pytest.mark.django_db(transaction=True)
def test_a_transaction_the_database_ended_fails_the_operation(erp, writer, monkeypatch, settings):
    """If SQLite itself rolled the whole transaction back while storing the event (a full disk),
    the operation fails as a whole instead of carrying on outside any transaction."""
    from django.db import OperationalError, connection

    from core.erp.models import Item

    if not settings.USING_SQLITE:
        pytest.skip("SQLite ends transactions on such errors; PostgreSQL uses a savepoint")

    def full_disk(model, rows):
        connection.connection.rollback()  # what SQLite does on SQLITE_FULL
        raise OperationalError("database or disk is full")

    monkeypatch.setattr("core.db.fast_insert", full_disk)
    reserved = Item.objects.get(item_id="ITEM-001").reserved
    with pytest.raises(ToolError) as refused:
        call_tool("ax_create_salesorder", ORDER, writer)
    assert refused.value.code == "BACKEND_UNAVAILABLE"
    assert not SalesOrder.objects.exists()
    assert Item.objects.get(item_id="ITEM-001").reserved == reserved
    assert AuditEntry.objects.get(tool="ax_create_salesorder").error_code == "BACKEND_UNAVAILABLE"


def test_deleting_a_user_keeps_their_history_and_clears_the_reference(erp, writer):
    """Events and audit rows name their user without a database constraint (no check per inserted
    row); deleting the user through the ORM still clears the reference, and the name stays."""
    call_tool("ax_create_salesorder", ORDER, writer)
    writer.delete()
    event = Event.objects.get(type="salesorder.created")
    audit = AuditEntry.objects.get(tool="ax_create_salesorder")
    assert (event.user_id, event.username, audit.user_id, audit.username) == (None, "writer", None, "writer")
    assert not Event._meta.get_field("user").db_constraint and not AuditEntry._meta.get_field("user").db_constraint
