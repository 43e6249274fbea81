"""`manage.py health`, /healthz and the Overview's health panel judge the same report."""

from __future__ import annotations

import io
import ipaddress
import json
from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.utils import timezone

from core.ops import health
from core.ops.models import Heartbeat
from tests.helpers import HTMX, logged_in

pytestmark = pytest.mark.django_db


def beat(kind: str = "worker", pid: int = 101, ago: float = 1, **fields) -> Heartbeat:
    now = timezone.now()
    if kind == "worker":
        fields.setdefault("probe_sent", now - timedelta(seconds=ago + 1))
        fields.setdefault("probe_done", now - timedelta(seconds=ago))
        fields.setdefault("detail", {"workers": 2, "busy": 0})
    return Heartbeat.objects.create(process=f"{kind}@host-a:{pid}", kind=kind, host="host-a", pid=pid,
                                    beat=now - timedelta(seconds=ago), state="running", **fields)


@pytest.fixture
def running():
    return beat("worker"), beat("dispatcher", pid=102)


def component(report: health.Report, name: str) -> health.Component:
    return next(c for c in report.components if c.name == name)


def run_command(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("health", *args, stdout=out)
    return exit_.value.code, out.getvalue()


def test_all_running_is_healthy_with_one_line_per_component(running):
    code, out = run_command()
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["database", "cache", "worker", "dispatcher", "tasks",
                                                   "deliveries"]
    assert all(line.split()[1] == "ok" for line in lines)


def test_no_worker_and_no_dispatcher_are_unhealthy():
    code, out = run_command()
    assert code == 1
    assert "worker      FAIL  no worker process has beaten" in out
    assert "dispatcher  FAIL  no webhook dispatcher has beaten" in out


def test_a_heartbeat_older_than_the_limit_counts_as_gone(settings, running):
    Heartbeat.objects.filter(kind="worker").update(beat=timezone.now() - timedelta(seconds=31))
    assert not component(health.check(), "worker").ok
    settings.HEARTBEAT_STALE_SECONDS = 60
    assert component(health.check(), "worker").ok


def test_a_probe_waiting_past_the_stall_limit_with_idle_workers_is_a_stalled_cluster(settings):
    now = timezone.now()
    beat("dispatcher", pid=102)
    row = beat("worker", probe_sent=now - timedelta(seconds=settings.WORKER_STALL_SECONDS + 5), probe_done=None,
               detail={"workers": 2, "busy": 1})
    worker = component(health.check(), "worker")
    assert not worker.ok and "1 of 2 workers idle: stalled" in worker.detail
    # The same wait with every worker busy is a busy cluster, not a stalled one.
    Heartbeat.objects.filter(pk=row.pk).update(detail={"workers": 2, "busy": 2})
    worker = component(health.check(), "worker")
    assert worker.ok and "all 2 workers busy" in worker.detail
    # A probe that waits less than the limit is fine.
    Heartbeat.objects.filter(pk=row.pk).update(probe_sent=now - timedelta(seconds=2), detail={"workers": 2})
    assert component(health.check(), "worker").ok


def test_one_worker_taking_tasks_among_several_is_enough(running, settings):
    beat("worker", pid=103, probe_done=None, probe_sent=timezone.now() - timedelta(minutes=5))
    worker = component(health.check(), "worker")
    assert worker.ok and worker.figures == {"alive": 2, "taking_tasks": 1, "restarts": 0}


def test_the_oldest_queued_task_past_its_limit_is_unhealthy(running, settings):
    from django_q.tasks import async_task

    with mock.patch("django.utils.timezone.now", return_value=timezone.now() - timedelta(seconds=400)):
        async_task("math.sqrt", 4)
    async_task("math.sqrt", 9)
    tasks = component(health.check(), "tasks")
    assert not tasks.ok, tasks.detail
    assert tasks.figures["queued"] == 2 and 399 <= tasks.figures["oldest_age_seconds"] <= 460
    settings.HEALTH_MAX_TASK_WAIT_SECONDS = 900
    assert component(health.check(), "tasks").ok


def test_an_overdue_webhook_delivery_is_unhealthy_unless_its_subscription_is_paused(
        running, erp, writer, settings, django_capture_on_commit_callbacks):
    from core.webhooks.models import Delivery, Subscription
    from tests.webhooks.helpers import order, subscribe

    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    sub, _ = subscribe("http://127.0.0.1:9/hook")
    with django_capture_on_commit_callbacks(execute=True):
        order(writer)
    assert Delivery.objects.count() == 1
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=600))
    deliveries = component(health.check(), "deliveries")
    assert not deliveries.ok and 599 <= deliveries.figures["oldest_due_age_seconds"] <= 660
    Subscription.objects.filter(pk=sub.pk).update(status=Subscription.Status.PAUSED)
    assert component(health.check(), "deliveries").ok


def test_a_database_that_does_not_answer_fails_every_component_that_needs_it(running):
    with mock.patch("core.ops.health.connection.cursor", side_effect=OperationalError("connection refused")):
        report = health.check()
    assert not report.ok
    assert [c.name for c in report.components if not c.ok] == ["database", "worker", "dispatcher", "tasks",
                                                                "deliveries"]


def test_healthz_answers_without_login_and_publishes_no_host_names(client, running):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    body = response.json()
    assert body["status"] == "ok"
    assert body["components"]["worker"] == {"status": "ok", "alive": 1, "taking_tasks": 1, "restarts": 0}
    assert "host-a" not in response.content.decode() and "101" not in json.dumps(body["components"]["worker"])


def test_healthz_is_503_when_a_component_fails(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["components"]["worker"]["status"] == "fail"


def test_healthz_refuses_other_methods(client):
    assert client.post("/healthz").status_code == 405


def test_the_overview_shows_admins_the_health_of_every_component(admin, running):
    response = logged_in(admin).get("/overview/")
    html = response.content.decode()
    assert 'data-health="ok"' in html
    for name in ("database", "cache", "worker", "dispatcher", "tasks", "deliveries"):
        assert f'data-component="{name}"' in html
    Heartbeat.objects.filter(kind="dispatcher").delete()
    fragment = logged_in(admin).get("/overview/", headers=HTMX).content.decode()
    assert 'data-health="fail"' in fragment and "no webhook dispatcher has beaten" in fragment


def test_the_overview_shows_no_health_to_readers(reader, running):
    response = logged_in(reader).get("/overview/")
    assert response.status_code == 200 and 'data-health' not in response.content.decode()
