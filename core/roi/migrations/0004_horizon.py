from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("roi", "0003_pending"),
    ]

    operations = [
        migrations.CreateModel(
            name="Horizon",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField()),
            ],
        ),
    ]
