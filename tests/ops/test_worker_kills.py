"""The worker keeps taking tasks whatever kills its processes (embedded default: SQLite + ORM
broker; tests/integration/test_worker_kills_postgres.py runs the same on PostgreSQL + Redis)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from core.ops.supervisor import descendants
from tests.ops import killing
from tests.ops.liveworker import live_worker
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_STALE_SECONDS = 5


def test_killing_every_worker_child_leaves_the_cluster_taking_tasks(writer):
    with live_worker() as worker:
        killing.kill(worker.cluster_children())
        killing.assert_new_work_completes(worker, writer, "ALL")
        assert worker.heartbeat().restarts == 0  # the cluster itself recovered, no restart needed


def test_killing_one_idle_worker_leaves_the_cluster_taking_tasks(writer):
    with live_worker() as worker:
        for _ in range(3):  # whichever worker is next in line for the queue
            killing.kill(worker.cluster_children()[:1])
            assert worker.taking_tasks()
        killing.assert_new_work_completes(worker, writer, "ONE")


def test_a_task_past_its_timeout_or_exiting_the_interpreter_does_not_stop_the_cluster(writer):
    from django_q.tasks import async_task

    with live_worker(Q_TIMEOUT="3") as worker:
        async_task("time.sleep", 30)
        async_task("os._exit", 3)
        async_task("sys.exit", 4)
        # The three are queued; the cluster must survive all of them.
        killing.assert_new_work_completes(worker, writer, "TMO")


def test_an_import_running_when_its_worker_dies_resumes_from_its_checkpoint(writer):
    with live_worker() as worker:
        killing.kill_mid_import_and_resume(worker, writer)


def test_a_stalled_cluster_is_restarted(writer):
    """Workers that hang without running a task (here: stopped with SIGSTOP) stall the cluster;
    the watchdog sees its probe wait with idle workers and starts a new cluster."""
    with live_worker() as worker:
        old_sentinel = worker.sentinel()
        killing.kill(worker.cluster_children(), signal.SIGSTOP)
        wait_until(lambda: worker.heartbeat().restarts == 1, 30)
        assert worker.sentinel() != old_sentinel
        assert "probe task waited" in worker.heartbeat().last_error
        killing.assert_new_work_completes(worker, writer, "STL")


# These two time a real process tree, which no injectable clock can drive. The bounds only
# tell "honours the grace period" from "waits out the task (60 s)" or "waits out the grace
# (30 s)", with room to spare for a busy machine.
@pytest.mark.parametrize("whole_group", [True, False], ids=["process-group", "main-process"])
def test_sigterm_stops_the_worker_within_its_grace_period(whole_group):
    with live_worker(WORKER_STOP_GRACE_SECONDS="2", LOG_LEVEL="INFO") as worker:
        from django_q.tasks import async_task

        async_task("time.sleep", 60)  # a task that would outlive the grace period
        wait_until(lambda: worker.heartbeat().detail.get("busy") == 1, 15)
        tree = descendants(worker.proc.pid)
        started = time.monotonic()
        if whole_group:  # what honcho and systemd do
            os.killpg(worker.proc.pid, signal.SIGTERM)
        else:
            worker.proc.send_signal(signal.SIGTERM)
        assert worker.wait_or_dump(30) == 0
        assert time.monotonic() - started < 2 + 10, worker.output()[-6000:]
        assert not [pid for pid in tree if os.path.exists(f"/proc/{pid}") and _not_zombie(pid)]
        assert worker.heartbeat() is None  # a clean stop removes its heartbeat


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


@pytest.mark.parametrize("whole_group", [True, False], ids=["process-group", "main-process"])
def test_an_idle_worker_stops_at_once_without_waiting_out_its_grace_period(whole_group):
    with live_worker(WORKER_STOP_GRACE_SECONDS="30", LOG_LEVEL="INFO") as worker:
        started = time.monotonic()
        if whole_group:
            os.killpg(worker.proc.pid, signal.SIGTERM)
        else:
            worker.proc.send_signal(signal.SIGTERM)
        assert worker.wait_or_dump(30) == 0
        assert time.monotonic() - started < 15, worker.output()[-6000:]


def test_sigusr1_prints_where_each_thread_of_the_worker_waits():
    # What a test (or an operator, `kill -USR1 <pid>`) learns from a worker that does not stop.
    with live_worker() as worker:
        with pytest.raises(AssertionError) as failed:
            worker.wait_or_dump(1)
        text = str(failed.value)
        assert "the worker still runs after 1 s" in text
        assert "most recent call first" in text and "supervisor.py" in text  # the main thread, in its loop
        assert worker.proc.poll() is None  # the dump does not stop it
