"""Seeded manual baselines: typical times of a trained clerk in an AX-style client.

Editable in the Django admin (ROI > Baselines); the seed never overwrites an edited value.
"""

from __future__ import annotations

from django.db import migrations

BASELINES = [
    ("ax_get_customer", 45, "find the customer, open the record, read the fields asked for"),
    ("ax_create_customer", 240, "customer form: account, name, address, currency, credit limit"),
    ("ax_update_customer", 120, "find the customer, change fields, save"),
    ("ax_create_item", 180, "item form: number, name, price, stock and reorder data"),
    ("ax_check_inventory", 60, "open on-hand inquiry for the items, read available and reserved"),
    ("ax_adjust_inventory", 90, "inventory journal: line with quantity and reason, post"),
    ("ax_create_salesorder", 300, "sales order: header, lines, prices, stock check, credit check"),
    ("ax_get_salesorder", 45, "find the order, read header and lines"),
    ("ax_update_salesorder", 180, "find the order, change lines or reference, confirm"),
    ("ax_cancel_salesorder", 90, "find the order, cancel, check the reservation is released"),
    ("ax_create_invoice", 150, "invoice update for the order, check and post"),
    ("ax_post_payment", 120, "payment journal: customer, amount, settle against the invoice, post"),
    ("import.customers", 120, "one customer keyed by hand from a list (per imported record)"),
    ("import.items", 90, "one item keyed by hand from a list (per imported record)"),
    ("import.salesorders", 180, "one sales order keyed by hand from a list (per imported record)"),
]


def seed(apps, schema_editor):
    Baseline = apps.get_model("roi", "Baseline")
    for tool, seconds, note in BASELINES:
        Baseline.objects.get_or_create(tool=tool, defaults={"seconds": seconds, "note": note})


def unseed(apps, schema_editor):
    Baseline = apps.get_model("roi", "Baseline")
    for tool, seconds, _note in BASELINES:
        Baseline.objects.filter(tool=tool, seconds=seconds).delete()


class Migration(migrations.Migration):
    dependencies = [("roi", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
