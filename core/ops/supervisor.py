"""The worker process: django-q2's cluster, started, watched and stopped by this process.

Three things keep the cluster taking tasks after any of its processes dies:

1. Robust locks (core.ops.robustlocks): a worker killed while it waits for a task no longer
   leaves the task queue locked, which is what froze django-q2's cluster.
2. A probe: every WORKER_PROBE_SECONDS this process enqueues a no-op task through the broker
   (unless the last one is still waiting) and a worker records when it ran it. The heartbeat
   row shows the result, and `manage.py health` and /healthz judge it.
3. A watchdog for whatever else could stall it: when a probe has waited WORKER_STALL_SECONDS
   while some worker is idle (a busy cluster has all its workers running tasks), or when the
   cluster's sentinel has died, the cluster's processes are ended and a new cluster started.
   Jobs the old one was running are resumed by the stale-job recovery of imports and batches.

SIGTERM or SIGINT stop the cluster; tasks still running after WORKER_STOP_GRACE_SECONDS are
ended (imports and batches continue later from their last checkpoint).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import datetime
from multiprocessing import sharedctypes

from django import db
from django.conf import settings
from django.utils import timezone

from core.ops import robustlocks
from core.ops.heartbeat import Beat
from core.ops.models import Heartbeat

log = logging.getLogger(__name__)

PROBE_TASK = "core.ops.supervisor.pong"


def pong(process: str, sent: str) -> str:
    """The probe task: runs in a worker process and records that it ran."""
    from core.db import write_slot

    with write_slot():
        Heartbeat.objects.filter(process=process, probe_sent=datetime.fromisoformat(sent)).update(
            probe_done=timezone.now())
    return "pong"


class WorkerBoard:
    """Which worker processes are running a task: a table in shared memory that the workers
    write before and after each task (django-q2's pre_execute / post_execute_in_worker
    signals), read by the supervisor. A worker that dies in a task leaves its pid behind,
    which no longer names a live process."""

    SLOTS = 128

    def __init__(self) -> None:
        self._pids = sharedctypes.Array("q", self.SLOTS, lock=robustlocks.ProcessLock())

    def started(self, pid: int) -> None:
        with self._pids.get_lock():
            pids = self._pids.get_obj()
            for i in range(self.SLOTS):
                if pids[i] in (0, pid) or not _alive(pids[i]):
                    pids[i] = pid
                    return

    def finished(self, pid: int) -> None:
        with self._pids.get_lock():
            pids = self._pids.get_obj()
            for i in range(self.SLOTS):
                if pids[i] == pid:
                    pids[i] = 0

    def busy(self) -> int:
        with self._pids.get_lock():
            return sum(1 for pid in self._pids.get_obj() if pid and _alive(pid))

    def connect(self) -> None:
        """Workers forked from this process after this call report to the board."""
        from django_q.signals import post_execute_in_worker, pre_execute

        pre_execute.connect(self._on_start, dispatch_uid="ops.board.start")
        post_execute_in_worker.connect(self._on_finish, dispatch_uid="ops.board.finish")

    def _on_start(self, **kwargs) -> None:
        self.started(os.getpid())

    def _on_finish(self, **kwargs) -> None:
        self.finished(os.getpid())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a child that has exited but is not reaped yet
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return True


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, children first (Linux /proc)."""
    found: list[int] = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            direct = [int(p) for p in children.read().split()]
    except OSError:
        return found
    for child in direct:
        found.append(child)
        found.extend(descendants(child))
    return found


class Supervisor:
    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.beat = Beat(Heartbeat.Kind.WORKER)
        self.board = WorkerBoard()
        self.cluster = None
        self.restarts = 0
        self.state = "starting"
        self.last_error = ""
        self.probe_sent: datetime | None = None
        self.probe_done: datetime | None = None

    # The cluster --------------------------------------------------------------------------

    def start_cluster(self) -> None:
        from django_q.cluster import Cluster

        robustlocks.install()
        self.board.connect()
        # The sentinel is forked from this process: it must not share this process's
        # database connection (it closes what it inherits).
        db.connections.close_all()
        self.cluster = Cluster()
        # Cluster() installs a handler that stops the cluster inside the signal handler;
        # this process stops it from its own loop instead, within the grace period.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop.set())
        self.cluster.start()
        self.probe_sent = self.probe_done = None
        log.info("worker: cluster started (sentinel %s)", self.cluster.sentinel.pid)

    def end_cluster(self, grace: float) -> None:
        """Stop the cluster; whatever still runs after `grace` seconds is killed."""
        cluster, self.cluster = self.cluster, None
        if cluster is None or cluster.sentinel is None:
            return
        sentinel = cluster.sentinel
        # A SIGTERM sent to the whole process group (honcho, systemd) has already ended the
        # sentinel: stopping through its Event would then wait for it forever.
        sentinel.join(0.2)
        log.info("worker: stopping the cluster (sentinel %s %s, grace %.0f s)", sentinel.pid,
                 "running" if sentinel.is_alive() else "ended", grace)
        if grace > 0 and sentinel.is_alive():
            stopper = threading.Thread(target=cluster.stop, name="cluster-stop", daemon=True)
            stopper.start()
            stopper.join(grace)
        tree = descendants(sentinel.pid) if sentinel.is_alive() else []
        for pid in [*tree, sentinel.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        sentinel.join(5)
        if tree:
            log.warning("worker: ended %d cluster processes that were still running", len(tree))
        log.info("worker: cluster stopped (sentinel %s)", "still running" if sentinel.is_alive() else "ended")

    def restart(self, why: str) -> None:
        log.error("worker: restarting the cluster: %s", why)
        self.last_error = f"{timezone.now():%Y-%m-%d %H:%M:%S} restarted: {why}"[:500]
        self.restarts += 1
        self.end_cluster(grace=0)
        self.start_cluster()

    # One watch cycle -----------------------------------------------------------------------

    def check(self, now: datetime | None = None) -> str:
        """Probe the cluster once, restart it when it stalled; returns its state."""
        now = now or timezone.now()
        if self.cluster is None or not self.cluster.sentinel.is_alive():
            self.restart("its sentinel process died")
            return self._probe(timezone.now())
        if self.probe_sent is not None and self.probe_done is None:
            row = Heartbeat.objects.filter(process=self.beat.process).values("probe_done").first()
            if row and row["probe_done"] and row["probe_done"] >= self.probe_sent:
                self.probe_done = row["probe_done"]
        if self.probe_sent is None or self.probe_done is not None:
            return self._probe(now)
        waited = (now - self.probe_sent).total_seconds()
        busy = self.board.busy()
        if waited >= settings.WORKER_STALL_SECONDS:
            if busy < settings.Q_CLUSTER["workers"]:
                self.restart(f"a probe task waited {waited:.0f} s while {busy} of "
                             f"{settings.Q_CLUSTER['workers']} workers were busy")
                return self._probe(timezone.now())
            return "busy"
        return "running" if waited < settings.WORKER_PROBE_SECONDS * 2 else "waiting"

    def _probe(self, now: datetime) -> str:
        from django_q.tasks import async_task

        self.probe_sent, self.probe_done = now, None
        # The row first: the probe's task updates it by its send time.
        self.save_beat(now)
        async_task(PROBE_TASK, self.beat.process, now.isoformat(), save=False, group="probe")
        return "running"

    def save_beat(self, now: datetime | None = None) -> None:
        self.beat.save(beat=now or timezone.now(), state=self.state, probe_sent=self.probe_sent,
                       probe_done=self.probe_done, restarts=self.restarts, last_error=self.last_error,
                       detail={"workers": settings.Q_CLUSTER["workers"], "busy": self.board.busy(),
                               "broker": "redis" if settings.REDIS_URL else "orm",
                               "sentinel": self.cluster.sentinel.pid if self.cluster else None})

    def run(self) -> None:
        self.start_cluster()
        self.state = "running"
        try:
            while not self.stop.is_set():
                try:
                    self.state = self.check()
                    self.save_beat()
                except db.DatabaseError:
                    log.warning("worker: database error while probing the cluster", exc_info=True)
                    db.close_old_connections()
                self.stop.wait(settings.WORKER_PROBE_SECONDS)
        finally:
            started = time.monotonic()
            self.state = "stopping"
            self.end_cluster(grace=settings.WORKER_STOP_GRACE_SECONDS)
            self.beat.remove()
            log.info("worker: heartbeat removed")
            db.connections.close_all()
            log.info("worker: stopped in %.1f s", time.monotonic() - started)
