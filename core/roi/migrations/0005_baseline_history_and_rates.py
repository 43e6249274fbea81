"""Effective-dated baselines and hourly rates.

Every existing baseline, and every rate set on a profile or a department, becomes the first
entry of its history, in force from the start (1970-01-01): no figure changes.
"""

from __future__ import annotations

import datetime
import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


FROM_THE_START = datetime.date(1970, 1, 1)


def open_rate_histories(apps, schema_editor):
    HourlyRate = apps.get_model("roi", "HourlyRate")
    Profile = apps.get_model("accounts", "Profile")
    Department = apps.get_model("accounts", "Department")
    rates = [HourlyRate(user_id=user_id, effective_from=FROM_THE_START, rate=rate)
             for user_id, rate in Profile.objects.filter(hourly_rate__isnull=False).values_list("user_id",
                                                                                              "hourly_rate")]
    rates += [HourlyRate(department_id=pk, effective_from=FROM_THE_START, rate=rate)
              for pk, rate in Department.objects.filter(hourly_rate__isnull=False).values_list("pk", "hourly_rate")]
    HourlyRate.objects.bulk_create(rates)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('roi', '0004_horizon'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='HourlyRate',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('effective_from', models.DateField(default=datetime.date(1970, 1, 1), help_text='first UTC day priced with this rate (1970-01-01: from the start)')),
                ('rate', models.DecimalField(blank=True, decimal_places=2, help_text='per hour, in ROI_CURRENCY; empty: no rate of its own from this day', max_digits=10, null=True, validators=[django.core.validators.MinValueValidator(0)])),
                ('note', models.CharField(blank=True, max_length=200)),
                ('updated', models.DateTimeField(auto_now=True)),
            ],
            options={
                'ordering': ['department__code', 'user__username', 'effective_from'],
            },
        ),
        migrations.AlterModelOptions(
            name='baseline',
            options={'ordering': ['tool', 'effective_from']},
        ),
        migrations.AddField(
            model_name='baseline',
            name='effective_from',
            field=models.DateField(default=datetime.date(1970, 1, 1), help_text='first UTC day priced with this value (1970-01-01: from the start)'),
        ),
        migrations.AlterField(
            model_name='baseline',
            name='tool',
            field=models.CharField(help_text='tool name as audited, e.g. ax_create_salesorder or import.customers', max_length=100),
        ),
        migrations.AlterField(
            model_name='usage',
            name='level',
            field=models.CharField(choices=[('tool_day', 'Tool Day'), ('tool_month', 'Tool Month'), ('day', 'Day'), ('migr_day', 'migration records per tool and day (not counted)')], max_length=10),
        ),
        migrations.AddConstraint(
            model_name='baseline',
            constraint=models.UniqueConstraint(fields=('tool', 'effective_from'), name='roi_baseline_tool_from'),
        ),
        migrations.AddField(
            model_name='hourlyrate',
            name='department',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.department'),
        ),
        migrations.AddField(
            model_name='hourlyrate',
            name='user',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name='hourlyrate',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('department__isnull', True), ('user__isnull', False)), models.Q(('department__isnull', False), ('user__isnull', True)), _connector='OR'), name='roi_hourlyrate_one_subject', violation_error_message='Choose a user or a department, not both.'),
        ),
        migrations.AddConstraint(
            model_name='hourlyrate',
            constraint=models.UniqueConstraint(fields=('user', 'effective_from'), name='roi_hourlyrate_user_from'),
        ),
        migrations.AddConstraint(
            model_name='hourlyrate',
            constraint=models.UniqueConstraint(fields=('department', 'effective_from'), name='roi_hourlyrate_department_from'),
        ),
        migrations.RunPython(open_rate_histories, migrations.RunPython.noop),
    ]
