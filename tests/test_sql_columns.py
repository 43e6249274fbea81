"""Every INSERT the hub sends writes every field the database cannot fill by itself.

Raw statements on the fast paths name their columns; a field added to a model with a
Python-side default (which the database does not know) would be left out by them. The
statement builders of core.db refuse such a column list when they build it; these tests hold
every INSERT the hub actually sends, raw or through the ORM, and the rollup's trigger SQL,
to the models' metadata.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models
from django.test.utils import CaptureQueriesContext, isolate_apps

from core.db import insert_select_sql, insert_values_sql, missing_columns
from core.erp.models import Customer
from core.events.bus import publish, publish_many
from core.events.models import Event
from core.roi import rollup
from core.roi.models import Watermark
from core.tools.pipeline import call_tool
from core.webhooks import clock, urlcheck
from core.webhooks.delivery import interrupted, record
from core.webhooks.fanout import fan_out
from core.webhooks.models import Delivery
from core.webhooks.services import subscribe
from tests.imports.helpers import run_import

# INSERT [OR IGNORE] INTO table (columns): (quote, table, columns)
INSERT = re.compile(r'INSERT\s+(?:OR\s+\w+\s+)?INTO\s+("?)(\w+)\1\s*\(([^)]*)\)', re.IGNORECASE)


def unwritten(sql: str) -> list[str]:
    """For each INSERT in `sql` into a model's table: 'table.field' of every field it leaves out
    that the database cannot fill."""
    models_by_table = {m._meta.db_table: m for m in apps.get_models()}
    found = []
    for _, table, columns in INSERT.findall(sql):
        model = models_by_table.get(table)
        if model is not None:
            named = [c.strip().strip('"') for c in columns.split(",")]
            by_column = {f.column: f.name for f in model._meta.concrete_fields}
            found += [f"{table}.{f}" for f in missing_columns(model, [by_column.get(c, c) for c in named])]
    return found


def inserted_tables(sql: str) -> set[str]:
    return {table for _, table, _ in INSERT.findall(sql)}


@isolate_apps("core.erp")
def test_a_field_with_a_python_default_must_be_written():
    class Order(models.Model):  # noqa: DJ008
        customer = models.CharField(max_length=20)
        note = models.CharField(max_length=20, default="none")  # Python-side: the database has no default
        total = models.DecimalField(max_digits=18, decimal_places=2, null=True)  # NULL, as the model's default
        ref = models.CharField(max_length=20, null=True, default="x")  # NULL would not be the model's default
        stamp = models.CharField(max_length=20, db_default="now")

        class Meta:
            app_label = "erp"

    assert missing_columns(Order, ["customer", "note", "ref"]) == []
    assert missing_columns(Order, ["customer"]) == ["note", "ref"]
    with pytest.raises(ImproperlyConfigured, match="leaves out note, ref"):
        insert_values_sql(Order, ("customer",))
    with pytest.raises(ImproperlyConfigured, match="leaves out note"):
        insert_select_sql(Order, (("customer", "%s"), ("ref", "%s")))
    assert unwritten('INSERT INTO "erp_order" ("customer", "ref") VALUES (%s, %s)') == []  # not a registered model


def test_the_checker_reports_an_insert_that_leaves_out_a_field():
    complete = ('INSERT INTO "erp_customer" ("customer_account", "name", "search_name", "currency", "credit_limit", '
                '"balance", "segment", "email", "blocked", "created", "updated") VALUES (%s, %s)')
    assert unwritten(complete) == []
    assert unwritten(complete.replace('"blocked", ', "")) == ["erp_customer.blocked"]
    assert unwritten("INSERT INTO erp_customer (customer_account) SELECT 1") == [
        f"erp_customer.{f}" for f in ("name", "search_name", "currency", "credit_limit", "balance", "segment", "email",
                                      "blocked", "created", "updated")]


def test_the_builders_refuse_a_real_model_without_one_of_its_fields():
    fields = [f.attname for f in Customer._meta.concrete_fields if f.name not in ("id", "blocked")]
    with pytest.raises(ImproperlyConfigured, match="erp_customer leaves out blocked"):
        insert_values_sql(Customer, tuple(fields))


@pytest.fixture
def every_insert(erp, writer, admin, monkeypatch, settings, tmp_path):
    """The SQL of every fast path that inserts: order entry, audit rows (single and bulk),
    idempotency records, events (single, bulk and per imported row), imports of each type,
    webhook deliveries and attempts, the ROI rollup."""
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(urlcheck, "check_for_subscribe", lambda url: url)
    subscribe(event_type="customer.created", webhook_url="https://hooks.example/in", user=admin)
    with CaptureQueriesContext(connection) as captured:
        call_tool("ax_create_salesorder", {"customer_account": "CUST-001",
                                           "lines": [{"item_id": "ITEM-001", "quantity": 2},
                                                     {"item_id": "ITEM-002", "quantity": 1}]},
                  writer, idempotency_key="order-1")
        call_tool("ax_create_customer", {"customer_account": "C-9", "name": "Nine", "currency": "EUR"}, writer)
        run_import(writer, "customers", "customer_account,name,currency,credit_limit\nI-1,One,EUR,10.50\n"
                                        "I-2,Two,USD,0\n")
        run_import(writer, "items", "item_id,name,unit_price,on_hand\nIT-1,Bolt,0.10,5\n")
        run_import(writer, "salesorders", "order_ref,customer_account,item_id,quantity\nPO-1,CUST-001,ITEM-001,1\n")
        publish("customer.created", {"customer_account": "X-1"})
        publish_many("customer.updated", [{"customer_account": "X-1"}, {"customer_account": "X-2"}])
        fan_out(list(Event.objects.filter(type="customer.created").values_list("event_id", flat=True)))
        Delivery.objects.update(status=Delivery.Status.SENDING, claim="t", claimed_until=clock.now() - timedelta(1))
        record([interrupted(d) for d in Delivery.objects.select_related("subscription")[:2]])
        Watermark.objects.all().delete()  # the rebuild then inserts it (SQLite)
        rollup.rebuild()
        call_tool("ax_create_salesorder", {"customer_account": "CUST-001",
                                           "lines": [{"item_id": "ITEM-001", "quantity": 1}]}, writer)
        rollup.fold()
    return "\n".join(q["sql"] for q in captured.captured_queries)


def test_every_insert_the_hub_sends_writes_every_field_the_database_cannot_fill(every_insert):
    assert unwritten(every_insert) == []
    expected = {"erp_salesorder", "erp_salesorderline", "erp_customer", "erp_item", "tools_auditentry",
                "events_event", "tools_idempotencyrecord", "webhooks_delivery", "webhooks_attempt", "roi_usage"}
    if connection.vendor == "sqlite":
        expected.add("roi_watermark")
    assert expected <= inserted_tables(every_insert)


def test_the_rollup_triggers_write_every_field_the_database_cannot_fill():
    for strategy in rollup._STRATEGIES.values():
        sql = "\n".join(strategy.statements("x"))
        assert unwritten(sql) == []
        assert rollup.USAGE in inserted_tables(sql)


TABLE_REFERENCE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE)\s+(\w+)", re.IGNORECASE)


def test_raw_statements_quote_the_tables_they_name(every_insert):
    tables = {m._meta.db_table for m in apps.get_models()}
    rollup_sql = "\n".join(rollup._strategy().statements("x"))
    assert [t for t in TABLE_REFERENCE.findall(every_insert + rollup_sql) if t in tables] == []
