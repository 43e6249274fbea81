"""The worker keeps taking tasks after its processes are killed, on PostgreSQL + Redis (the
broker is Redis there: a task a dead worker took is gone from the queue, and the job's own
stale recovery brings it back).

Run with `make test-integration` (DATABASE_URL=postgres://…/test REDIS_URL=redis://…/15).
"""

from __future__ import annotations

import signal

import pytest
from django.conf import settings

from core.ops import health
from tests.ops import killing
from tests.ops.liveworker import live_worker
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

if "postgresql" not in settings.DATABASES["default"]["ENGINE"] or not settings.REDIS_URL:
    pytest.skip("needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL); run `make test-integration`",
                allow_module_level=True)


@pytest.fixture(autouse=True)
def _clean_queue(settings, tmp_path):
    from django_q.brokers import get_broker

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_STALE_SECONDS = 5
    get_broker().purge_queue()  # tasks other tests left for a worker that never ran


def test_killing_every_worker_child_leaves_the_cluster_taking_tasks(writer):
    with live_worker() as worker:
        killing.kill(worker.cluster_children())
        killing.assert_new_work_completes(worker, writer, "ALL")
        assert worker.heartbeat().restarts == 0
        report = health.check()
        assert [c.name for c in report.components if not c.ok] == ["dispatcher"]  # none runs here
        assert "Redis" in report.components[1].detail


def test_an_import_running_when_its_worker_dies_resumes_from_its_checkpoint(writer):
    with live_worker() as worker:
        killing.kill_mid_import_and_resume(worker, writer)


def test_a_stalled_cluster_is_restarted(writer):
    with live_worker() as worker:
        killing.kill(worker.cluster_children(), signal.SIGSTOP)
        wait_until(lambda: worker.heartbeat().restarts == 1, 30)
        killing.assert_new_work_completes(worker, writer, "STL")
