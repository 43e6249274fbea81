"""Webhook test world: a live receiver, a stand-in worker pool for django-q2, the dispatcher thread."""

from __future__ import annotations

import ipaddress
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from core.webhooks import clock, dispatcher, fanout
from core.webhooks.delivery import send_claimed
from tests.webhooks.receiver import serve


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    settings.WEBHOOK_TIMEOUT_MS = 2000
    settings.WEBHOOK_CONNECT_TIMEOUT_MS = 1000
    settings.WEBHOOK_DISPATCH_POLL_MS = 20
    clock.reset()
    yield
    clock.reset()


@pytest.fixture
def receiver():
    with serve() as r:
        yield r


class Worker:
    """Runs enqueued webhook tasks on threads, like django-q2's worker processes would."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="test-worker")
        self.tokens: list[str] = []
        self.hold = False  # collect tokens without running them (to hand them to a process)

    def enqueue(self, tokens: list[str]) -> None:
        self.tokens.extend(tokens)
        if not self.hold:
            for token in tokens:
                self.pool.submit(self._run, token)

    @staticmethod
    def _run(token: str) -> None:
        try:
            send_claimed(token)
        finally:
            connection.close()


@pytest.fixture
def worker(monkeypatch):
    w = Worker()
    monkeypatch.setattr(fanout, "enqueue", w.enqueue)
    yield w
    w.pool.shutdown(wait=True)


@pytest.fixture
def running_dispatcher(worker):
    """The dispatcher loop on a thread (with the stand-in worker)."""
    stop = threading.Event()

    def run() -> None:
        try:
            dispatcher.run(stop)
        finally:
            connection.close()

    thread = threading.Thread(target=run, name="test-dispatcher", daemon=True)
    thread.start()
    yield thread
    stop.set()
    thread.join(10)


def wait_until(condition, timeout: float = 10.0, interval: float = 0.01):
    """Poll `condition` until it returns something truthy; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
