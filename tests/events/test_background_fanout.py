"""Committed events are handed to the subscribers on a background thread, never in the call."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.events import bus
from core.events.models import Event
from core.tools.pipeline import call_tool
from core.webhooks import services as webhook_services
from core.webhooks.models import Delivery
from tests.waiting import wait_until
from tests.webhooks.helpers import subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
ORDER = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 1}]}


def test_the_call_returns_before_the_fan_out_which_then_runs_in_the_background(settings, erp, writer, monkeypatch):
    settings.EVENTS_FANOUT_IN_BACKGROUND = True
    release = threading.Event()
    seen: list[tuple[str, list[str]]] = []

    def slow_subscriber(event_ids: list[str]) -> None:
        release.wait(10)
        seen.append((threading.current_thread().name, event_ids))

    monkeypatch.setattr(bus, "_subscribers", [slow_subscriber])
    out = call_tool("ax_create_salesorder", ORDER, writer)  # returns although the subscriber blocks
    assert out["status"] == "open" and not seen
    release.set()
    wait_until(lambda: len(seen) == 1)
    name, ids = seen[0]
    assert name == "event-fanout" and ids == [Event.objects.get(type="salesorder.created").event_id]


def test_events_committed_together_are_handed_over_in_one_go(settings, erp, writer, monkeypatch):
    settings.EVENTS_FANOUT_IN_BACKGROUND = True
    gate = threading.Event()
    batches: list[list[str]] = []

    def subscriber(event_ids: list[str]) -> None:
        gate.wait(10)
        batches.append(event_ids)

    monkeypatch.setattr(bus, "_subscribers", [subscriber])
    for _ in range(4):  # the first hand-off blocks; the next three events queue up meanwhile
        call_tool("ax_create_salesorder", ORDER, writer)
    gate.set()
    wait_until(lambda: sum(len(b) for b in batches) == 4)
    assert len(batches) < 4


def test_a_failing_subscriber_does_not_stop_the_thread(settings, erp, writer, monkeypatch):
    settings.EVENTS_FANOUT_IN_BACKGROUND = True
    calls: list[list[str]] = []

    def flaky(event_ids: list[str]) -> None:
        calls.append(event_ids)
        if len(calls) == 1:
            raise RuntimeError("subscriber down")

    monkeypatch.setattr(bus, "_subscribers", [flaky])
    call_tool("ax_create_salesorder", ORDER, writer)
    wait_until(lambda: len(calls) == 1)
    call_tool("ax_create_salesorder", ORDER, writer)
    wait_until(lambda: len(calls) == 2)


def test_the_real_fan_out_marks_events_done_in_the_background(settings, erp, writer):
    settings.EVENTS_FANOUT_IN_BACKGROUND = True
    call_tool("ax_create_salesorder", ORDER, writer)
    wait_until(lambda: not Event.objects.filter(fanned_out=False).exists())


def test_waiting_events_are_handed_over_at_exit(monkeypatch):
    handed: list[list[str]] = []
    monkeypatch.setattr(bus, "_subscribers", [handed.append])
    background = bus._Background()
    background._ids = ["evt_a", "evt_b"]
    background.flush()
    assert handed == [["evt_a", "evt_b"]] and background._ids == []


def test_drain_waits_for_the_batch_in_progress(settings, erp, writer, monkeypatch):
    settings.EVENTS_FANOUT_IN_BACKGROUND = True
    started, gate = threading.Event(), threading.Event()
    seen: list[list[str]] = []

    def subscriber(event_ids: list[str]) -> None:
        started.set()
        gate.wait(10)
        seen.append(event_ids)

    monkeypatch.setattr(bus, "_subscribers", [subscriber])
    call_tool("ax_create_salesorder", ORDER, writer)
    assert started.wait(10)
    assert bus.drain(timeout=0.05) is False  # the thread's batch is still running
    gate.set()
    assert bus.drain() is True
    assert seen == [[Event.objects.get().event_id]]  # no polling: drain returned after the hand-over


def test_drain_hands_over_what_is_still_queued_on_the_callers_thread(settings, erp, writer, monkeypatch):
    settings.EVENTS_FANOUT_IN_BACKGROUND = True
    started, gate = threading.Event(), threading.Event()
    seen: list[tuple[str, int]] = []

    def subscriber(event_ids: list[str]) -> None:
        if not started.is_set():  # the thread's first batch blocks
            started.set()
            gate.wait(10)
        seen.append((threading.current_thread().name, len(event_ids)))

    monkeypatch.setattr(bus, "_subscribers", [subscriber])
    call_tool("ax_create_salesorder", ORDER, writer)
    assert started.wait(10)
    call_tool("ax_create_salesorder", ORDER, writer)  # queued behind the blocked batch
    assert bus.drain(timeout=0.05) is False
    assert seen == [(threading.current_thread().name, 1)]
    gate.set()
    assert bus.drain() is True
    assert seen[1] == ("event-fanout", 1)


def test_drain_with_nothing_queued_returns_at_once(settings):
    settings.EVENTS_FANOUT_IN_BACKGROUND = True
    assert bus.drain(timeout=0) is True


def test_a_process_that_exits_without_draining_hands_its_events_over_at_exit(settings, erp, writer):
    """The atexit safety net, in a real process that never calls drain() itself."""
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    sub, _ = webhook_services.subscribe(event_type="salesorder.created", webhook_url="http://127.0.0.1:9/hook")
    code = ("import django; django.setup(); from django.contrib.auth import get_user_model; "
            "from core.tools.pipeline import call_tool; "
            f"call_tool('ax_create_salesorder', {ORDER!r}, get_user_model().objects.get(username='writer'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=subprocess_env(EVENTS_FANOUT_IN_BACKGROUND="true"))
    assert done.returncode == 0, done.stderr
    event = Event.objects.get(type="salesorder.created")
    assert event.fanned_out
    assert Delivery.objects.get(subscription=sub).event_id == event.pk
