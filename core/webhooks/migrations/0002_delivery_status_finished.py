# Retention deletes finished deliveries by status and finish time: an index on both, so the
# hourly prune reads only the rows it deletes. On SQLite, adding an index does not copy the table.

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("webhooks", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(fields=["status", "finished"], name="delivery_status_finished"),
        ),
    ]
