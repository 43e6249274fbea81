"""Webhook test world: a live receiver, a stand-in worker pool for django-q2, the dispatcher thread."""

from __future__ import annotations

import ipaddress
import threading
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
    """Sender threads for tests that drive the dispatcher by hand (dispatch()), and django-q2's
    stand-in for WEBHOOK_SENDER=worker (enqueue())."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="test-sender")
        self.tokens: list[str] = []
        self.hold = False  # collect enqueued tokens without running them

    def submit(self, fn, *args, **kwargs) -> None:
        self.pool.submit(self._call, fn, *args, **kwargs)

    def enqueue(self, tokens: list[str]) -> None:
        self.tokens.extend(tokens)
        if not self.hold:
            for token in tokens:
                self.submit(send_claimed, token)

    def dispatch(self) -> int:
        """One dispatcher round: claim what is due and send it on these threads."""
        return dispatcher.dispatch_due(self.submit)

    @staticmethod
    def _call(fn, *args, **kwargs) -> None:
        try:
            fn(*args, **kwargs)
        finally:
            connection.close()


@pytest.fixture
def worker(monkeypatch):
    w = Worker()
    monkeypatch.setattr(fanout, "enqueue", w.enqueue)
    yield w
    w.pool.shutdown(wait=True)


@pytest.fixture
def running_dispatcher():
    """The dispatcher loop, with its own sender threads, on a thread."""
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
