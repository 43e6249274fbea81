# The prune deletes django-q2's task results by the time they stopped; django-q2 has no index
# on that column, so one is added here (plain SQL: the table is django-q2's, not a model of
# this app). On SQLite, adding an index does not copy the table.

from __future__ import annotations

from django.db import migrations

INDEX = "ops_django_q_task_stopped"


class Migration(migrations.Migration):

    dependencies = [
        ("ops", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.RunSQL(f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "django_q_task" ("stopped")',
                          reverse_sql=f'DROP INDEX IF EXISTS "{INDEX}"'),
    ]
