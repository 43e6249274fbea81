"""ROI: effective-dated baselines and hourly rates, and the usage rollup the metrics are read from."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.accounts.models import Department

# A baseline longer than a working day is a typo, and the bound keeps every sum far from
# 64-bit overflow (86,400,000 ms per operation).
MAX_BASELINE_SECONDS = 86_400

# The effective_from of a value in force from the start: the first day ROI knows
# (core.roi.services.MIN_YEAR), before any operation the hub can have audited.
FROM_THE_START = date(1970, 1, 1)


class Baseline(models.Model):
    """How long a person needs, by hand, for one operation of a tool, from a day on.

    Keyed by the tool name as it appears in audit rows. Bulk imports audit one row per
    imported record under `import.<type>` (import.customers, import.items,
    import.salesorders), so their baselines are per record type under those names.

    A tool has a history: each row is in force from its effective_from (a UTC day) until the
    next row of the tool, and every operation is priced with the row in force on its day. So
    a change effective tomorrow leaves every figure up to today as it was.
    """

    tool = models.CharField(max_length=100,
                            help_text="tool name as audited, e.g. ax_create_salesorder or import.customers")
    effective_from = models.DateField(default=FROM_THE_START,
                                      help_text="first UTC day priced with this value (1970-01-01: from the start)")
    seconds = models.PositiveIntegerField(validators=[MaxValueValidator(MAX_BASELINE_SECONDS)],
                                          help_text="seconds a person needs for one operation by hand")
    note = models.CharField(max_length=200, blank=True, help_text="what the manual work consists of")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tool", "effective_from"]
        constraints = [
            # Also the index behind every lookup of "the value in force on a day" (rollup.py).
            models.UniqueConstraint(fields=["tool", "effective_from"], name="roi_baseline_tool_from"),
        ]

    def __str__(self) -> str:
        since = "from the start" if self.effective_from == FROM_THE_START else f"from {self.effective_from}"
        return f"{self.tool}: {self.seconds} s {since}"


class HourlyRate(models.Model):
    """What an hour of a user's, or a department's, work costs, from a day on.

    The rate of an operation is the user's in force on its day, else that of the department it
    was audited under, else ROI_DEFAULT_HOURLY_RATE. A row without a rate ends the subject's
    own rate from that day (the department's, or the default, applies again).
    Profile.hourly_rate and Department.hourly_rate show the rate in force today; saving one of
    them writes this history (core/roi/signals.py).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+")
    department = models.ForeignKey(Department, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    effective_from = models.DateField(default=FROM_THE_START,
                                      help_text="first UTC day priced with this rate (1970-01-01: from the start)")
    rate = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True,
                               validators=[MinValueValidator(0)],
                               help_text="per hour, in ROI_CURRENCY; empty: no rate of its own from this day")
    note = models.CharField(max_length=200, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["department__code", "user__username", "effective_from"]
        constraints = [
            models.CheckConstraint(condition=models.Q(user__isnull=False, department__isnull=True)
                                   | models.Q(user__isnull=True, department__isnull=False),
                                   name="roi_hourlyrate_one_subject",
                                   violation_error_message="Choose a user or a department, not both."),
            models.UniqueConstraint(fields=["user", "effective_from"], name="roi_hourlyrate_user_from"),
            models.UniqueConstraint(fields=["department", "effective_from"], name="roi_hourlyrate_department_from"),
        ]

    def __str__(self) -> str:
        value = "no own rate" if self.rate is None else f"{self.rate}/h"
        since = "from the start" if self.effective_from == FROM_THE_START else f"from {self.effective_from}"
        return f"{self.subject}: {value} {since}"

    @property
    def subject(self) -> str:
        if self.user_id is not None:
            return f"user {self.user}"
        return f"department {self.department.code}" if self.department_id else "nobody"


class Usage(models.Model):
    """Running totals of the counted audit rows, kept by database triggers (core/roi/rollup.py).

    Three levels: per tool and day, per tool and month, and per day over all tools. Each row
    sums the operations of one user (by audit username and department) in its period. A
    fourth level counts, per tool and day, the records of one-off migrations, which ROI
    excludes (so a report can say how many it left out). Never written by application code
    except the rebuild in rollup.py.
    """

    class Level(models.TextChoices):
        TOOL_DAY = "tool_day"
        TOOL_MONTH = "tool_month"
        DAY = "day"
        MIGRATION_DAY = "migr_day", "migration records per tool and day (not counted)"

    level = models.CharField(max_length=10, choices=Level.choices)
    period_start = models.DateField(help_text="the day, or the first day of the month (UTC)")
    tool = models.CharField(max_length=100, blank=True, help_text="empty on the all-tools level")
    user_pk = models.BigIntegerField(default=0, help_text="AuditEntry.user_id, 0 when the row has no user")
    username = models.CharField(max_length=150, blank=True)
    department = models.CharField(max_length=30, blank=True)
    operations = models.BigIntegerField(default=0)
    successful = models.BigIntegerField(default=0)
    saved_ms = models.BigIntegerField(default=0, help_text="sum of max(0, baseline - duration) of successful rows")

    class Meta:
        verbose_name_plural = "usage"
        constraints = [
            # The triggers' ON CONFLICT target: keep the column list in step with rollup.KEY.
            models.UniqueConstraint(fields=["level", "period_start", "tool", "user_pk", "username", "department"],
                                    name="roi_usage_key"),
        ]

    def __str__(self) -> str:
        return f"{self.level} {self.period_start} {self.tool or '*'} {self.username}: {self.operations}"


class Watermark(models.Model):
    """SQLite: the highest audit row id already counted in Usage (one row, pk 1).

    SQLite lets one transaction write at a time and AUTOINCREMENT never hands out an id
    twice, so every audit row above the watermark is new, and every row at or below it is
    committed and counted. Unused on PostgreSQL, where triggers count each row as it is written.
    """

    audit_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"audit rows up to id {self.audit_id} counted"


class Pending(models.Model):
    """PostgreSQL: counted audit rows written but not yet in Usage, queued by a trigger.

    PostgreSQL commits ids out of order, so a watermark could skip a row; a queue row is
    committed with its audit row, and the fold takes it (DELETE ... RETURNING) exactly once.
    Unused on SQLite (see Watermark).
    """

    audit_id = models.BigIntegerField(primary_key=True)

    class Meta:
        verbose_name_plural = "pending"

    def __str__(self) -> str:
        return f"audit row {self.audit_id} not counted yet"


class Horizon(models.Model):
    """The first UTC day whose audit rows are all kept (one row, pk 1; none while nothing was pruned).

    Audit rows of the days before it were pruned (AUDIT_RETENTION_DAYS), so for those days the
    rollup is the only record: deleting their audit rows does not un-count them, and a rebuild
    recounts only from this day on. It only ever moves forward (rollup.freeze_before).
    """

    day = models.DateField()

    def __str__(self) -> str:
        return f"audit rows before {self.day} pruned; their rollup kept"
