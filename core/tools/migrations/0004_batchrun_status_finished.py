# Retention deletes finished batch runs by status and finish time: an index on both. On
# SQLite, adding an index does not copy the table.

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("tools", "0003_audit_user_index_covered_by_user_created"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="batchrun",
            index=models.Index(fields=["status", "finished"], name="batchrun_status_finished"),
        ),
    ]
