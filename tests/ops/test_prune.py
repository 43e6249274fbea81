"""Retention: every growing table is pruned at its boundary, in chunks, and a dry run only counts."""

from __future__ import annotations

import io
import os
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_q.models import Schedule, Task

from core import retention
from core.audit.models import AuditEntry
from core.events.models import Event
from core.imports.models import ImportJob, ImportRowError
from core.ops import prune as ops_prune
from core.ops.prune import prune
from core.ops.schedules import PRUNE_SCHEDULE, ensure_schedules
from core.roi.models import Horizon
from core.tools.models import BatchRun, IdempotencyRecord
from core.webhooks.models import Attempt, Delivery, Subscription
from core.webhooks.retention import prune_deliveries

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def ago(days: float = 0, hours: float = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def subscription(db):
    return Subscription.objects.create(subscription_id=f"sub_{uuid.uuid4().hex[:12]}", event_type="*",
                                       url="http://127.0.0.1:9/hook", secret_encrypted="-")


def event(created: datetime, *, fanned_out: bool = True) -> Event:
    return Event.objects.create(event_id=f"evt_{uuid.uuid4().hex}", type="customer.created", created=created,
                                data={}, fanned_out=fanned_out)


def delivery(subscription, status: str, *, finished: datetime | None = None, created: datetime | None = None,
             of: Event | None = None, attempts: int = 1) -> Delivery:
    created = created or finished or NOW
    d = Delivery.objects.create(delivery_id=f"dlv_{uuid.uuid4().hex}", subscription=subscription,
                                event=of or event(created), event_type="customer.created", status=status,
                                finished=finished, created=created, attempts=attempts)
    Attempt.objects.bulk_create(Attempt(delivery=d, number=n, started=created) for n in range(1, attempts + 1))
    return d


def idempotency(user, created: datetime) -> IdempotencyRecord:
    return IdempotencyRecord.objects.create(user=user, key=uuid.uuid4().hex, tool="ax_create_customer",
                                            request_digest="0" * 64, response={"ok": True}, created=created)


def batch(user, status: str, finished: datetime | None) -> BatchRun:
    return BatchRun.objects.create(batch_id=uuid.uuid4().hex, user=user, status=status, finished=finished,
                                   requests=[{"tool": "ax_get_customer"}], results=[{"index": 0, "success": True}],
                                   total=1, processed=1, successful=1)


def import_job(user, status: str, finished: datetime | None, *, errors: int = 0) -> ImportJob:
    job = ImportJob(job_id=f"IMP-{uuid.uuid4().hex[:16]}", user=user, type="customers", format="csv",
                    status=status, finished=finished, total=10, processed=10, successful=10 - errors, failed=errors)
    job.file.save(f"{job.job_id}.csv", ContentFile(b"customer_account,name,currency\n"), save=False)
    job.save()
    ImportRowError.objects.bulk_create(ImportRowError(job=job, row=n + 2, code="INVALID", message="bad")
                                       for n in range(errors))
    return job


def task_result(stopped: datetime, *, success: bool) -> Task:
    return Task.objects.create(id=uuid.uuid4().hex, name=uuid.uuid4().hex, func="core.ops.tasks.prune",
                               started=stopped - SECOND, stopped=stopped, success=success)


def ids(queryset) -> set:
    return set(queryset.values_list("pk", flat=True))


# --- Each table at its boundary: just older goes, just newer stays.

def test_delivered_and_dead_letter_deliveries_go_with_their_attempts_at_their_own_ages(subscription):
    old_ok = delivery(subscription, "succeeded", finished=ago(30) - SECOND, attempts=2)
    new_ok = delivery(subscription, "succeeded", finished=ago(30) + SECOND)
    old_failed = delivery(subscription, "failed", finished=ago(90) - SECOND, attempts=4)
    new_failed = delivery(subscription, "failed", finished=ago(90) + SECOND)
    ancient_pending = delivery(subscription, "pending", created=ago(400), attempts=3)
    ancient_sending = delivery(subscription, "sending", created=ago(400))

    counts = prune(now=NOW).counts

    assert ids(Delivery.objects.all()) == {new_ok.pk, new_failed.pk, ancient_pending.pk, ancient_sending.pk}
    assert counts["webhooks_delivery"] == 2 and counts["webhooks_attempt"] == 6
    assert not Attempt.objects.filter(delivery_id__in=[old_ok.pk, old_failed.pk]).exists()
    assert Attempt.objects.filter(delivery=ancient_pending).count() == 3


def test_events_go_after_their_age_once_nothing_refers_to_them(subscription):
    old = event(ago(90) - SECOND)
    new = event(ago(90) + SECOND)
    never_fanned_out = event(ago(400), fanned_out=False)
    waiting = event(ago(400))
    delivery(subscription, "pending", created=ago(400), of=waiting)
    in_flight = event(ago(400))
    delivery(subscription, "sending", created=ago(400), of=in_flight)
    recent_dead_letter = event(ago(400))  # retried by hand last week, failed again: kept for 90 days
    delivery(subscription, "failed", created=ago(400), finished=ago(7), of=recent_dead_letter)
    delivered_long_ago = event(ago(400))  # its delivery goes in the same pass, then the event
    delivery(subscription, "succeeded", created=ago(400), finished=ago(400), of=delivered_long_ago)

    counts = prune(now=NOW).counts

    assert ids(Event.objects.all()) == {new.pk, never_fanned_out.pk, waiting.pk, in_flight.pk,
                                        recent_dead_letter.pk}
    assert counts["events_event"] == 2 and not Event.objects.filter(pk__in=[old.pk, delivered_long_ago.pk]).exists()


def test_idempotency_records_go_after_their_ttl(writer, settings):
    settings.IDEMPOTENCY_TTL_HOURS = 24
    old = idempotency(writer, ago(hours=24) - SECOND)
    new = idempotency(writer, ago(hours=24) + SECOND)
    assert prune(now=NOW).counts["tools_idempotencyrecord"] == 1
    assert ids(IdempotencyRecord.objects.all()) == {new.pk} and old.pk not in ids(IdempotencyRecord.objects.all())


def test_finished_batch_runs_go_with_their_results_running_ones_stay(writer):
    completed = batch(writer, "completed", ago(90) - SECOND)
    failed = batch(writer, "failed", ago(90) - SECOND)
    recent = batch(writer, "completed", ago(90) + SECOND)
    running = batch(writer, "running", None)
    queued = batch(writer, "queued", None)
    assert prune(now=NOW).counts["tools_batchrun"] == 2
    assert ids(BatchRun.objects.all()) == {recent.pk, running.pk, queued.pk}
    assert not BatchRun.objects.filter(pk__in=[completed.pk, failed.pk]).exists()


def test_import_files_go_after_30_days_the_job_and_its_counters_stay(writer):
    old = import_job(writer, "completed", ago(30) - SECOND)
    old_cancelled = import_job(writer, "cancelled", ago(30) - SECOND)
    new = import_job(writer, "completed", ago(30) + SECOND)
    running = import_job(writer, "running", None)
    old_path = old.file.path

    counts = prune(now=NOW).counts

    assert counts["imports_importjob.file"] == 2
    old.refresh_from_db()
    assert old.file.name == "" and (old.status, old.processed, old.successful, old.total) == ("completed", 10, 10, 10)
    assert not old.file and not os.path.exists(old_path)
    assert ImportJob.objects.get(pk=old_cancelled.pk).file.name == ""
    for job in (new, running):
        job.refresh_from_db()
        assert job.file.name and job.file.storage.exists(job.file.name)
    assert prune(now=NOW).counts["imports_importjob.file"] == 0  # nothing left to do


def test_an_import_file_already_missing_is_cleared_all_the_same(writer):
    job = import_job(writer, "failed", ago(31))
    job.file.storage.delete(job.file.name)  # e.g. a pass that died between the file and the row
    assert prune(now=NOW).counts["imports_importjob.file"] == 1
    assert ImportJob.objects.get(pk=job.pk).file.name == ""


def test_import_row_errors_go_after_90_days(writer):
    old = import_job(writer, "completed", ago(90) - SECOND, errors=3)
    new = import_job(writer, "completed", ago(90) + SECOND, errors=2)
    running = import_job(writer, "running", None, errors=1)
    assert prune(now=NOW).counts["imports_importrowerror"] == 3
    assert not ImportRowError.objects.filter(job=old).exists()
    assert ImportRowError.objects.filter(job=new).count() == 2 and ImportRowError.objects.filter(job=running).exists()
    assert ImportJob.objects.get(pk=old.pk).failed == 3  # the counters stay


def test_task_results_successes_and_failures_go_after_30_days(db):
    old = [task_result(ago(30) - SECOND, success=True), task_result(ago(30) - SECOND, success=False)]
    new = [task_result(ago(30) + SECOND, success=True), task_result(ago(30) + SECOND, success=False)]
    assert prune(now=NOW).counts["django_q_task"] == 2
    assert ids(Task.objects.all()) == {t.pk for t in new} and not ids(Task.objects.all()) & {t.pk for t in old}


def test_heartbeats_of_processes_that_died_go_after_a_day(db):
    from core.ops.models import Heartbeat

    def beat(pid: int, at: datetime) -> Heartbeat:
        return Heartbeat.objects.create(process=f"worker@h:{pid}", kind="worker", host="h", pid=pid, beat=at)

    gone, alive = beat(1, ago(1) - SECOND), beat(2, ago(1) + SECOND)
    assert prune(now=NOW).counts["ops_heartbeat"] == 1
    assert ids(Heartbeat.objects.all()) == {alive.pk} and gone.pk != alive.pk


def test_log_in_records_go_after_90_days(db):
    from axes.models import AccessAttempt, AccessLog

    old = AccessLog.objects.create(username="a", ip_address="10.0.0.1", user_agent="x")
    new = AccessLog.objects.create(username="b", ip_address="10.0.0.1", user_agent="x")
    attempt = AccessAttempt.objects.create(username="c", ip_address="10.0.0.1", user_agent="x", failures_since_start=1)
    AccessLog.objects.filter(pk=old.pk).update(attempt_time=ago(90) - SECOND)
    AccessLog.objects.filter(pk=new.pk).update(attempt_time=ago(90) + SECOND)
    AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=ago(91))
    counts = prune(now=NOW).counts
    assert (counts["axes_accesslog"], counts["axes_accessattempt"]) == (1, 1)
    assert ids(AccessLog.objects.all()) == {new.pk}


def test_retention_settings_move_the_boundaries(subscription, settings):
    settings.RETENTION_DELIVERED_DAYS = 2
    settings.RETENTION_EVENTS_DAYS = 3
    goes = delivery(subscription, "succeeded", created=ago(3) - SECOND, finished=ago(2) - SECOND)
    stays = delivery(subscription, "succeeded", created=ago(3) - SECOND, finished=ago(2) + SECOND)
    prune(now=NOW)
    assert ids(Delivery.objects.all()) == {stays.pk}  # and its event, old enough, stays for it
    assert not Event.objects.filter(pk=goes.event_id).exists() and Event.objects.filter(pk=stays.event_id).exists()


# --- Audit rows: the system's record.

def test_audit_rows_are_kept_forever_by_default(writer, settings):
    assert settings.AUDIT_RETENTION_DAYS is None
    AuditEntry.objects.create(tool="ax_get_customer", user=writer, success=True, created=ago(3650))
    outcome = prune(now=NOW)
    assert AuditEntry.objects.count() == 1 and outcome.audit_kept and "tools_auditentry" not in outcome.counts
    assert not Horizon.objects.exists()


def test_audit_rows_go_by_whole_days(writer, settings):
    settings.AUDIT_RETENTION_DAYS = 1  # today (2026-06-01) and yesterday are kept
    last_pruned = AuditEntry.objects.create(tool="ax_get_customer", user=writer, success=True,
                                            created=datetime(2026, 5, 30, 23, 59, 59, 999999, tzinfo=UTC))
    first_kept = AuditEntry.objects.create(tool="ax_get_customer", user=writer, success=True,
                                           created=datetime(2026, 5, 31, tzinfo=UTC))
    assert prune(now=NOW).counts["tools_auditentry"] == 1
    assert ids(AuditEntry.objects.all()) == {first_kept.pk} and last_pruned.pk not in ids(AuditEntry.objects.all())
    assert Horizon.objects.get().day.isoformat() == "2026-05-31"


# --- Chunks, dry runs, failures.

def test_more_rows_than_a_chunk_all_go_in_several_short_transactions(writer, subscription, monkeypatch):
    for _ in range(7):
        idempotency(writer, ago(2))
    for _ in range(5):
        delivery(subscription, "succeeded", finished=ago(31), attempts=2)
    opened = []

    def counting_atomic(*args, **kwargs):
        opened.append(1)
        return transaction.atomic(*args, **kwargs)

    monkeypatch.setattr(retention, "transaction", SimpleNamespace(atomic=counting_atomic))
    with CaptureQueriesContext(connection) as queries:
        records = retention.prune_rows(IdempotencyRecord.objects.all(), chunk_size=3, dry_run=False)
        deliveries = prune_deliveries(NOW, dry_run=False, chunk_size=2)

    assert records == {"tools_idempotencyrecord": 7} and not IdempotencyRecord.objects.exists()
    assert deliveries == {"webhooks_delivery": 5, "webhooks_attempt": 10} and not Delivery.objects.exists()
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert sum('"tools_idempotencyrecord"' in sql for sql in deletes) == 3  # 3 + 3 + 1
    assert sum('FROM "webhooks_delivery"' in sql for sql in deletes) == 3  # 2 + 2 + 1
    assert sum('FROM "webhooks_attempt"' in sql for sql in deletes) == 3
    assert len(opened) == 6  # one transaction per chunk


def test_events_kept_for_their_deliveries_are_read_once_per_pass(subscription):
    kept = [event(ago(400)) for _ in range(5)]
    for e in kept:
        delivery(subscription, "pending", created=ago(400), of=e)
    gone = [event(ago(400)) for _ in range(3)]
    with CaptureQueriesContext(connection) as queries:
        counts = prune(now=NOW, chunk_size=2).counts
    assert counts["events_event"] == 3 and ids(Event.objects.all()) == {e.pk for e in kept}
    selects = [q["sql"] for q in queries.captured_queries
               if q["sql"].startswith('SELECT "events_event"."id"') and "LIMIT" in q["sql"]]
    # 2 + 1 rows; the second chunk starts after the first one's last id, so the events kept
    # for their deliveries are not read again by every chunk.
    assert len(selects) == 2 and f'"events_event"."id" > {gone[1].pk}' in selects[1]


def _world(user, subscription) -> None:
    delivery(subscription, "succeeded", finished=ago(31), attempts=2)
    delivery(subscription, "failed", finished=ago(91), attempts=3)
    delivery(subscription, "pending", created=ago(400))
    event(ago(91))
    idempotency(user, ago(2))
    batch(user, "completed", ago(91))
    import_job(user, "completed", ago(91), errors=2)
    task_result(ago(31), success=False)
    AuditEntry.objects.create(tool="ax_get_customer", user=user, success=True, created=ago(400))


def _table_sizes() -> dict[str, int]:
    models = (Delivery, Attempt, Event, IdempotencyRecord, BatchRun, ImportRowError, Task, AuditEntry)
    sizes = {m._meta.db_table: m.objects.count() for m in models}
    sizes["files"] = ImportJob.objects.exclude(file="").count()
    return sizes


def test_a_dry_run_deletes_nothing_and_counts_what_the_pass_deletes(writer, subscription, settings):
    settings.AUDIT_RETENTION_DAYS = 365
    _world(writer, subscription)
    before = _table_sizes()

    planned = prune(now=NOW, dry_run=True, chunk_size=1)

    assert _table_sizes() == before and not Horizon.objects.exists()
    done = prune(now=NOW, chunk_size=1)
    assert planned.counts == done.counts
    assert done.counts == {"webhooks_delivery": 2, "webhooks_attempt": 5, "events_event": 2,
                           "tools_idempotencyrecord": 1, "tools_batchrun": 1, "imports_importjob.file": 1,
                           "imports_importrowerror": 2, "django_q_task": 1, "ops_heartbeat": 0,
                           "axes_accesslog": 0, "axes_accessfailurelog": 0, "axes_accessattempt": 0,
                           "tools_auditentry": 1}
    assert prune(now=NOW, dry_run=True).total == 0


def test_a_failing_step_does_not_stop_the_others(writer, subscription, monkeypatch):
    idempotency(writer, ago(2))

    def broken(now, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ops_prune, "STEPS", [("webhook deliveries", broken), *ops_prune.STEPS[1:]])
    outcome = prune(now=NOW, raise_on_failure=False)
    assert outcome.failed == {"webhook deliveries": "RuntimeError: disk on fire"}
    assert outcome.counts["tools_idempotencyrecord"] == 1 and not IdempotencyRecord.objects.exists()
    with pytest.raises(RuntimeError, match="webhook deliveries"):
        prune(now=NOW)


# --- The schedule, the task and the command.

def test_migrate_schedules_the_hourly_prune(db):
    schedule = Schedule.objects.get(name=PRUNE_SCHEDULE)  # registered by post_migrate of the test database
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == ("core.ops.tasks.prune", Schedule.HOURLY, -1)
    ensure_schedules()
    assert Schedule.objects.filter(name=PRUNE_SCHEDULE).count() == 1


def test_the_task_prunes_and_returns_the_counts(writer):
    from core.ops.tasks import prune as prune_task

    idempotency(writer, datetime.now(UTC) - timedelta(days=2))
    assert prune_task()["tools_idempotencyrecord"] == 1 and not IdempotencyRecord.objects.exists()


def test_the_command_prints_rows_per_table(writer):
    now = datetime.now(UTC)
    for _ in range(3):
        idempotency(writer, now - timedelta(days=2))
    batch(writer, "failed", now - timedelta(days=91))

    out = io.StringIO()
    call_command("prune", "--dry-run", stdout=out)
    lines = out.getvalue().splitlines()
    assert any(line.split() == ["tools_idempotencyrecord", "would", "delete", "3"] for line in lines)
    assert any(line.split() == ["tools_batchrun", "would", "delete", "1"] for line in lines)
    assert any(line.split() == ["webhooks_delivery", "would", "delete", "0"] for line in lines)
    assert "audit rows kept: AUDIT_RETENTION_DAYS is not set" in lines
    assert lines[-1] == "dry run: 4 rows in all"
    assert IdempotencyRecord.objects.count() == 3

    out = io.StringIO()
    call_command("prune", "--chunk-rows", "2", stdout=out)
    lines = out.getvalue().splitlines()
    assert any(line.split() == ["tools_idempotencyrecord", "deleted", "3"] for line in lines)
    assert lines[-1] == "4 rows in all"
    assert not IdempotencyRecord.objects.exists() and not BatchRun.objects.exists()

    with pytest.raises(CommandError):
        call_command("prune", "--chunk-rows", "0", stdout=io.StringIO())
