"""Committed events are handed to the subscribers on a background thread, never in the call."""

from __future__ import annotations

import threading

import pytest

from core.events import bus
from core.events.models import Event
from core.tools.pipeline import call_tool
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

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
    assert wait_until(lambda: len(seen) == 1)
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
    assert wait_until(lambda: sum(len(b) for b in batches) == 4)
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
    assert wait_until(lambda: len(calls) == 1)
    call_tool("ax_create_salesorder", ORDER, writer)
    assert wait_until(lambda: len(calls) == 2)


def test_the_real_fan_out_marks_events_done_in_the_background(settings, erp, writer):
    settings.EVENTS_FANOUT_IN_BACKGROUND = True
    call_tool("ax_create_salesorder", ORDER, writer)
    assert wait_until(lambda: not Event.objects.filter(fanned_out=False).exists())


def test_waiting_events_are_handed_over_at_exit(monkeypatch):
    handed: list[list[str]] = []
    monkeypatch.setattr(bus, "_subscribers", [handed.append])
    background = bus._Background()
    background._ids = ["evt_a", "evt_b"]
    background.flush()
    assert handed == [["evt_a", "evt_b"]] and background._ids == []
