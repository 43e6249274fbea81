"""Fill search_name of the customers and items stored before it existed."""

from __future__ import annotations

from django.db import migrations

from core.erp.models import search_text

CHUNK = 1000


def fill(apps, schema_editor) -> None:
    for name in ("Customer", "Item"):
        model = apps.get_model("erp", name)
        changed = []
        for row in model.objects.only("id", "name", "search_name").order_by("id").iterator(chunk_size=CHUNK):
            text = search_text(row.name)
            if row.search_name != text:
                row.search_name = text
                changed.append(row)
            if len(changed) >= CHUNK:
                model.objects.bulk_update(changed, ["search_name"])
                changed = []
        model.objects.bulk_update(changed, ["search_name"])


class Migration(migrations.Migration):

    dependencies = [
        ("erp", "0002_search_names_and_list_indexes"),
    ]

    operations = [
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
