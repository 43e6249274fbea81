# A subscription listens to several event types (event_types; event_type keeps the first), and
# each delivery carries what its event is about (subject, amount, currency) for the deliveries
# page. Existing rows are filled in: subscriptions from their one type, deliveries from their
# event's data, in chunks. The rules are copied from core/webhooks/subjects.py as they were
# when this was written, so that later changes there do not change what this migration does.

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import migrations, models

CHUNK = 2000
KEYS = {"salesorder": "sales_id", "invoice": "invoice_id", "payment": "payment_id", "customer": "customer_account",
        "inventory": "item_id", "import": "job_id"}
FALLBACK = ("sales_id", "invoice_id", "payment_id", "item_id", "customer_account", "job_id")


def _amount(data):
    value = data.get("total_amount", data.get("amount"))
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    try:
        value = Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        return None
    return value if abs(value) < Decimal(10) ** 16 else None


def _subject(event_type, data):
    if not isinstance(data, dict):
        return "", None, ""
    key = KEYS.get(event_type.split(".", 1)[0])
    keys = (key,) if key else FALLBACK
    subject = next((data[k] for k in keys if isinstance(data.get(k), str | int) and data.get(k) != ""), "")
    currency = data.get("currency")
    return str(subject)[:100], _amount(data), currency if isinstance(currency, str) and len(currency) == 3 else ""


def fill(apps, schema_editor):
    Subscription = apps.get_model("webhooks", "Subscription")
    for sub in Subscription.objects.only("pk", "event_type").iterator():
        Subscription.objects.filter(pk=sub.pk).update(event_types=[sub.event_type])
    Delivery = apps.get_model("webhooks", "Delivery")
    Event = apps.get_model("events", "Event")
    last = 0
    while True:
        rows = list(Delivery.objects.filter(pk__gt=last).order_by("pk").only("pk", "event_id", "event_type")[:CHUNK])
        if not rows:
            return
        data = dict(Event.objects.filter(pk__in={r.event_id for r in rows}).values_list("pk", "data"))
        for row in rows:
            row.subject, row.amount, row.currency = _subject(row.event_type, data.get(row.event_id))
        Delivery.objects.bulk_update(rows, ["subject", "amount", "currency"], batch_size=500)
        last = rows[-1].pk


class Migration(migrations.Migration):

    dependencies = [
        ('events', '0002_json_exact_decimal'),
        ('webhooks', '0003_json_exact_decimal'),
    ]

    operations = [
        migrations.AddField(
            model_name='delivery',
            name='amount',
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=18, null=True),
        ),
        migrations.AddField(
            model_name='delivery',
            name='currency',
            field=models.CharField(blank=True, max_length=3),
        ),
        migrations.AddField(
            model_name='delivery',
            name='subject',
            field=models.CharField(blank=True, help_text='sales_id, customer_account, invoice_id, …', max_length=100),
        ),
        migrations.AddField(
            model_name='subscription',
            name='event_types',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AlterField(
            model_name='subscription',
            name='event_type',
            field=models.CharField(help_text='the first of event_types', max_length=100),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(fields=['created'], name='delivery_created'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(fields=['subject', 'created'], name='delivery_subject'),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
