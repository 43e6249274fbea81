"""ROI: manual baselines per tool, and the usage rollup the metrics are read from."""

from __future__ import annotations

from django.core.validators import MaxValueValidator
from django.db import models

# A baseline longer than a working day is a typo, and the bound keeps every sum far from
# 64-bit overflow (86,400,000 ms per operation).
MAX_BASELINE_SECONDS = 86_400


class Baseline(models.Model):
    """How long a person needs, by hand, for one operation of a tool.

    Keyed by the tool name as it appears in audit rows. Bulk imports audit one row per
    imported record under `import.<type>` (import.customers, import.items,
    import.salesorders), so their baselines are per record type under those names.
    """

    tool = models.CharField(max_length=100, unique=True,
                            help_text="tool name as audited, e.g. ax_create_salesorder or import.customers")
    seconds = models.PositiveIntegerField(validators=[MaxValueValidator(MAX_BASELINE_SECONDS)],
                                          help_text="seconds a person needs for one operation by hand")
    note = models.CharField(max_length=200, blank=True, help_text="what the manual work consists of")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tool"]

    def __str__(self) -> str:
        return f"{self.tool}: {self.seconds} s"


class Usage(models.Model):
    """Running totals of the counted audit rows, kept by database triggers (core/roi/rollup.py).

    Three levels: per tool and day, per tool and month, and per day over all tools. Each row
    sums the operations of one user (by audit username and department) in its period.
    Never written by application code except the rebuild in rollup.py.
    """

    class Level(models.TextChoices):
        TOOL_DAY = "tool_day"
        TOOL_MONTH = "tool_month"
        DAY = "day"

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
