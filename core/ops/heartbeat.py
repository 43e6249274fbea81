"""Heartbeat rows of the long-running processes (worker, dispatcher): written, read, judged."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from core.db import write_slot
from core.ops.models import Heartbeat

log = logging.getLogger(__name__)

# Rows of processes that died without removing theirs are deleted after this long.
FORGET_AFTER = timedelta(days=1)


class Beat:
    """This process's heartbeat row. Every write is best effort: a database that is away for a
    moment must not stop the process, and the row's age then says so to the health check."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.host = socket.gethostname()[:150]
        self.pid = os.getpid()
        self.process = f"{kind}@{self.host}:{self.pid}"

    def save(self, **fields) -> bool:
        fields.setdefault("beat", timezone.now())
        try:
            with write_slot():
                updated = Heartbeat.objects.filter(process=self.process).update(**fields)
                if not updated:
                    Heartbeat.objects.create(process=self.process, kind=self.kind, host=self.host, pid=self.pid,
                                             **fields)
            return True
        except DatabaseError:
            log.warning("%s: could not save its heartbeat", self.process, exc_info=True)
            close_old_connections()
            return False

    def remove(self) -> None:
        try:
            with write_slot():
                Heartbeat.objects.filter(process=self.process).delete()
                Heartbeat.objects.filter(beat__lt=timezone.now() - FORGET_AFTER).delete()
        except DatabaseError:
            log.warning("%s: could not remove its heartbeat", self.process, exc_info=True)


def beat_in_background(beat: Beat, stop: threading.Event, fields: Callable[[], dict] | None = None) -> threading.Thread:
    """Save `beat` every WORKER_PROBE_SECONDS on a thread of its own until `stop` is set."""

    def loop() -> None:
        try:
            while True:
                beat.save(**(fields() if fields else {}))
                if stop.wait(settings.WORKER_PROBE_SECONDS):
                    break
        finally:
            connection.close()

    thread = threading.Thread(target=loop, name=f"{beat.kind}-heartbeat", daemon=True)
    thread.start()
    return thread


def alive(kind: str, now: datetime | None = None) -> list[Heartbeat]:
    """Rows of `kind` whose process beat within HEARTBEAT_STALE_SECONDS."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS)
    return list(Heartbeat.objects.filter(kind=kind, beat__gte=cutoff).exclude(state="stopped"))
