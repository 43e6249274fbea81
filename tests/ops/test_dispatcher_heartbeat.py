"""The webhook dispatcher beats while it runs and removes its heartbeat when it stops."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from django.db import close_old_connections

from core.ops import health
from core.ops.models import Heartbeat
from tests.ops.liveworker import ROOT, worker_env
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _row(pid: int) -> Heartbeat | None:
    close_old_connections()
    return Heartbeat.objects.filter(kind="dispatcher", pid=pid).first()


def test_the_dispatcher_is_seen_alive_while_it_runs_and_gone_after_sigterm():
    proc = subprocess.Popen([sys.executable, "manage.py", "webhook_dispatcher"], cwd=ROOT, env=worker_env(),
                            stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: _row(proc.pid) is not None, 30)
        dispatcher = next(c for c in health.check().components if c.name == "dispatcher")
        assert dispatcher.ok and dispatcher.figures == {"alive": 1}
        first = _row(proc.pid).beat
        wait_until(lambda: _row(proc.pid).beat > first, 10)  # WORKER_PROBE_SECONDS=1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert _row(proc.pid) is None
    finally:
        proc.kill()
