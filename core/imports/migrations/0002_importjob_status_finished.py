# Retention finds finished import jobs (their stored files, their row errors) by status and
# finish time: an index on both. On SQLite, adding an index does not copy the table.

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("imports", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="importjob",
            index=models.Index(fields=["status", "finished"], name="importjob_status_finished"),
        ),
    ]
