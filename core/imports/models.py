from __future__ import annotations

from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import models
from django.utils import timezone

from core import jsoncodec
from core.jobs import JobRow


class ImportType(models.TextChoices):
    CUSTOMERS = "customers"
    ITEMS = "items"
    SALESORDERS = "salesorders"


@dataclass(frozen=True)
class Dialect:
    """How a file was read: kept on the job so that a resume reads it the same way."""

    encoding: str = "utf-8"
    delimiter: str = ","
    decimal_comma: bool = False

    def as_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict | None) -> Dialect | None:
        return cls(**data) if data else None


class ImportMode(models.TextChoices):
    CREATE = "create", "create new records"
    UPDATE = "update", "update existing records"
    UPSERT = "upsert", "create or update"


class ImportJob(JobRow):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Format(models.TextChoices):
        CSV = "csv"
        XLSX = "xlsx"

    job_id = models.CharField(max_length=40, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=20, choices=ImportType.choices)
    format = models.CharField(max_length=5, choices=Format.choices)
    file = models.FileField(upload_to="imports/")
    original_name = models.CharField(max_length=255, blank=True)
    sheet = models.CharField(max_length=100, blank=True)
    validate_only = models.BooleanField(default=False)
    mode = models.CharField(max_length=10, choices=ImportMode.choices, default=ImportMode.CREATE)
    mapping = models.JSONField(default=dict, blank=True, encoder=jsoncodec.Encoder,
                               help_text="file column -> field, as given or from a saved mapping")
    mapping_name = models.CharField(max_length=100, blank=True)
    roi = models.BooleanField(default=True, help_text="False: a one-off migration, not counted as saved work")
    source_job = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   help_text="the job whose stored file this one runs (from_job)")
    batch_size = models.PositiveIntegerField(default=100)
    dialect = models.JSONField(null=True, blank=True, encoder=jsoncodec.Encoder)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(null=True, blank=True)
    checkpoint = models.PositiveIntegerField(default=0, help_text="data rows handled in committed batches")
    records_created = models.PositiveIntegerField(default=0)
    records_updated = models.PositiveIntegerField(default=0)
    records_unchanged = models.PositiveIntegerField(default=0)
    preview = models.JSONField(null=True, blank=True, encoder=jsoncodec.Encoder,
                               help_text="the header and first rows as parsed, after mapping")

    class Meta(JobRow.Meta):
        indexes = [models.Index(fields=["status", "heartbeat"]), models.Index(fields=["user", "created"]),
                   models.Index(fields=["status", "finished"], name="importjob_status_finished")]  # retention

    def __str__(self) -> str:
        return f"import {self.job_id} ({self.type}, {self.status})"

    @property
    def rows_per_second(self) -> float | None:
        if not self.started or not self.processed:
            return None
        end = self.finished or timezone.now()
        seconds = (end - self.started).total_seconds()
        return self.processed / seconds if seconds > 0 else None

    @property
    def eta_seconds(self) -> int | None:
        rate = self.rows_per_second
        if self.done or not rate or not self.total:
            return None
        return int((self.total - self.processed) / rate)


class ImportMapping(models.Model):
    """A column mapping saved under a name per type, for the next file of the same source."""

    type = models.CharField(max_length=20, choices=ImportType.choices)
    name = models.CharField(max_length=100)
    mapping = models.JSONField(default=dict, encoder=jsoncodec.Encoder, help_text="file column -> field")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["type", "name"]
        constraints = [models.UniqueConstraint(fields=["type", "name"], name="importmapping_type_name")]

    def __str__(self) -> str:
        return f"{self.type} mapping {self.name}"


class ImportRowError(models.Model):
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="errors")
    row = models.PositiveIntegerField(help_text="line number as seen in the file; the header is line 1")
    column = models.CharField(max_length=60, blank=True)
    code = models.CharField(max_length=60)
    message = models.CharField(max_length=500)
    value = models.CharField(max_length=500, blank=True)
    data = models.JSONField(null=True, blank=True, encoder=jsoncodec.Encoder,
                            help_text="the row as read, for the failed-rows file")

    class Meta:
        ordering = ["row", "id"]
        indexes = [models.Index(fields=["job", "row"]),
                   models.Index(fields=["job", "code"], name="importrowerror_job_code")]  # the error summary

    def __str__(self) -> str:
        return f"row {self.row}: {self.code}"
