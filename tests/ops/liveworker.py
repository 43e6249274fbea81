"""`manage.py worker` as a real process tree on the test database, for the kill tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections

from core.ops.models import Heartbeat
from core.ops.supervisor import descendants
from tests.waiting import wait_until
from tests.webhooks.helpers import database_url

ROOT = settings.BASE_DIR


@dataclass
class LiveWorker:
    proc: subprocess.Popen
    log_path: Path

    def output(self) -> str:
        """What the worker and its cluster wrote (stdout and stderr), for a failing test."""
        return self.log_path.read_text(errors="replace")

    def wait_or_dump(self, timeout: float) -> int:
        """The worker's exit code; a worker still running after `timeout` prints where each of
        its threads waits (SIGUSR1, core/ops/management/commands/worker.py) and fails the test
        with its output."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGUSR1)
            time.sleep(1)
            raise AssertionError(f"the worker still runs after {timeout} s; its output:\n"
                                 f"{self.output()[-12000:]}") from None

    def heartbeat(self) -> Heartbeat | None:
        close_old_connections()
        return Heartbeat.objects.filter(pid=self.proc.pid, kind="worker").first()

    def sentinel(self) -> int:
        row = self.heartbeat()
        assert row is not None and row.detail.get("sentinel"), "the worker has not reported its cluster yet"
        return row.detail["sentinel"]

    def cluster_children(self) -> list[int]:
        """Workers, pusher and monitor: the sentinel's children."""
        with open(f"/proc/{self.sentinel()}/task/{self.sentinel()}/children") as children:
            return [int(pid) for pid in children.read().split()]

    def taking_tasks(self, timeout: float = 30) -> bool:
        """True once a probe sent after now has been run by a worker."""
        since = time.time()

        def probed() -> bool:
            row = self.heartbeat()
            return bool(row and row.probe_done and row.probe_sent and row.probe_done >= row.probe_sent
                        and row.probe_sent.timestamp() >= since)

        return wait_until(probed, timeout, "a worker to run a probe sent after now")


def worker_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url(), "SECRET_KEY": settings.SECRET_KEY,
           "MEDIA_ROOT": str(settings.MEDIA_ROOT), "DJANGO_SETTINGS_MODULE": "core.settings",
           "Q_WORKERS": "2", "WORKER_PROBE_SECONDS": "1", "WORKER_STALL_SECONDS": "5",
           "IMPORT_STALE_SECONDS": "5", "BATCH_STALE_SECONDS": "5", "LOG_LEVEL": "WARNING"}
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(extra)
    return env


@contextmanager
def live_worker(**extra_env: str) -> Iterator[LiveWorker]:
    """Start the worker in its own process group (as honcho does) and wait until it takes tasks."""
    log_file = tempfile.NamedTemporaryFile(prefix="live-worker-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "manage.py", "worker"], cwd=ROOT, env=worker_env(**extra_env),
                            start_new_session=True, stdout=log_file, stderr=subprocess.STDOUT)
    log_file.close()  # the worker has its own descriptor
    worker = LiveWorker(proc, Path(log_file.name))
    try:
        wait_until(lambda: worker.heartbeat() is not None and worker.heartbeat().probe_done, 60,
                   "the worker to start taking tasks")
        yield worker
    finally:
        tree = descendants(proc.pid)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in tree:  # a restarted cluster is in the same group; this is belt and braces
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(10)
        worker.log_path.unlink(missing_ok=True)
