# The audit table's index on user_id alone is covered by its (user, created) index. Only the
# index is dropped: an AlterField would make SQLite copy the whole audit table.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

INDEX = "tools_auditentry_user_id_74d53f83"  # the name Django gave the foreign key's index


class Migration(migrations.Migration):

    dependencies = [
        ("tools", "0002_batchrun"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditentry",
                    name="user",
                    field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                            related_name="+", to=settings.AUTH_USER_MODEL),
                ),
            ],
            database_operations=[
                migrations.RunSQL(f'DROP INDEX IF EXISTS "{INDEX}"',
                                  reverse_sql=f'CREATE INDEX "{INDEX}" ON "tools_auditentry" ("user_id")'),
            ],
        ),
    ]
