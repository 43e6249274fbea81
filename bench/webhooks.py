"""Webhook delivery on the embedded default (SQLite + ORM broker): web, worker and dispatcher
processes of a throw-away hub, and a receiver thread in this process on 127.0.0.1.

1. Latency: sequential ax_create_salesorder calls over HTTP; for each, the time from the
   call's commit to the receiver getting the POST. The event's `timestamp` is taken when it is
   stored, just before the commit, so "receiver time - timestamp" is a tight upper bound (the
   headline); "receiver time - response read" is a lower bound (the commit came before it).
2. Throughput: deliveries pile up while the subscription is paused; on resume the time from
   the first to the last POST received gives deliveries per second sustained.
3. Flaky receiver: 30% of first attempts answer 503; every event must arrive in the end.

Usage: .venv/bin/python -m bench.webhooks [--latency 300] [--backlog 2000] [--flaky 500]
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from datetime import datetime

import requests

from bench.hub import percentile, running_hub
from tests.webhooks.receiver import serve

SECRET = "whsec_" + "YmVuY2htYXJrLXNlY3JldC1vZi0zMi1ieXRlcy4uLi4="


def order(item: str = "ITEM-004") -> dict:
    return {"customer_account": "CUST-001", "lines": [{"item_id": item, "quantity": 1}]}


class Hub:
    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, tool: str, arguments: dict, timeout: float = 120) -> dict:
        response = self.session.post(f"{self.base}/api/tools/{tool}", json=arguments, timeout=timeout)
        if response.status_code != 200:
            raise RuntimeError(f"{tool}: {response.status_code} {response.text[:300]}")
        return response.json()


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


def by_sales_id(received) -> dict[str, tuple[float, float]]:
    """sales_id -> (arrival time, event timestamp) of the first POST of each order."""
    arrivals: dict[str, tuple[float, float]] = {}
    for r in received:
        body = json.loads(r.body)
        stamp = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00")).timestamp()
        arrivals.setdefault(body["data"]["sales_id"], (r.at, stamp))
    return arrivals


def latency(hub: Hub, receiver, calls: int, pause: float) -> tuple[list[float], list[float]]:
    sub = hub.call("ax_subscribe_webhook", {"event_type": "salesorder.created", "webhook_url": receiver.url,
                                            "secret": SECRET})["subscription_id"]
    for _ in range(20):  # warm-up: connections, imports, the receiver's first accept
        hub.call("ax_create_salesorder", order())
    receiver.wait_for(20, timeout=30)
    receiver.requests.clear()
    answered: dict[str, float] = {}
    for _ in range(calls):
        sales_id = hub.call("ax_create_salesorder", order())["sales_id"]
        answered[sales_id] = time.time()
        time.sleep(pause)
    wait_for(lambda: len(by_sales_id(list(receiver.requests))) >= calls, 60, "latency deliveries")
    arrivals = by_sales_id(list(receiver.requests))
    upper = [(arrivals[s][0] - arrivals[s][1]) * 1000 for s in answered]
    lower = [(arrivals[s][0] - t) * 1000 for s, t in answered.items()]
    hub.call("ax_unsubscribe_webhook", {"subscription_id": sub})
    return upper, lower


def throughput(hub: Hub, receiver, backlog: int) -> tuple[float, float]:
    receiver.requests.clear()
    sub = hub.call("ax_subscribe_webhook", {"event_type": "salesorder.created", "webhook_url": receiver.url,
                                            "secret": SECRET})["subscription_id"]
    hub.call("ax_update_webhook", {"subscription_id": sub, "status": "paused"})
    for start in range(0, backlog, 500):
        count = min(500, backlog - start)
        result = hub.call("ax_batch_operations", {"requests": [
            {"tool": "ax_create_salesorder", "arguments": order()} for _ in range(count)], "max_parallel": 8})
        assert result["successful"] == count, result
    hub.call("ax_update_webhook", {"subscription_id": sub, "status": "active"})
    resumed = time.time()
    wait_for(lambda: len(receiver.requests) >= backlog, 300, "the backlog")
    times = sorted(r.at for r in receiver.requests[:backlog])
    hub.call("ax_unsubscribe_webhook", {"subscription_id": sub})
    return backlog / (times[-1] - times[0]), times[-1] - resumed


def flaky(hub: Hub, receiver, events: int) -> tuple[int, int, int, float]:
    receiver.requests.clear()
    first_seen: set[str] = set()
    lock = threading.Lock()
    rng = random.Random(7)

    def respond(n, headers, body):
        with lock:
            first = headers["webhook-id"] not in first_seen
            first_seen.add(headers["webhook-id"])
        if first and rng.random() < 0.30:
            return 503, {}, b"try again"
        return 200, {}, b""

    receiver.respond = respond
    sub = hub.call("ax_subscribe_webhook", {"event_type": "salesorder.created", "webhook_url": receiver.url,
                                            "secret": SECRET})["subscription_id"]
    started = time.time()
    for start in range(0, events, 250):
        count = min(250, events - start)
        hub.call("ax_batch_operations", {"requests": [
            {"tool": "ax_create_salesorder", "arguments": order()} for _ in range(count)], "max_parallel": 8})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = hub.call("ax_list_webhooks", {})["subscriptions"][0]["deliveries"]
        if status["succeeded"] + status["failed"] >= events:
            break
        time.sleep(0.5)
    status = hub.call("ax_list_webhooks", {})["subscriptions"][0]["deliveries"]
    with lock:
        failed_first = len(receiver.requests) - len({r.headers["webhook-id"] for r in receiver.requests})
    hub.call("ax_unsubscribe_webhook", {"subscription_id": sub})
    return status["succeeded"], events, failed_first, time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=int, default=300, help="sequential orders for the latency figures")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between latency calls")
    parser.add_argument("--backlog", type=int, default=2000, help="deliveries for the throughput figure")
    parser.add_argument("--flaky", type=int, default=500, help="events sent to the 30%%-failing receiver")
    args = parser.parse_args()
    env = {"WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}
    with serve() as receiver, running_hub(env, worker=True, dispatcher=True) as (base, token, _env):
        hub = Hub(base, token)
        hub.call("ax_update_customer", {"customer_account": "CUST-001", "credit_limit": 0})
        hub.call("ax_adjust_inventory", {"item_id": "ITEM-004", "quantity_change": 1_000_000,
                                         "reason": "bench stock"})
        upper, lower = latency(hub, receiver, args.latency, args.pause)
        rate, drain = throughput(hub, receiver, args.backlog)
        succeeded, events, retried, took = flaky(hub, receiver, args.flaky)

    print(f"Webhook delivery, embedded default (SQLite, ORM broker, {args.latency} sequential orders):")
    print(f"  commit -> receiver, from event timestamp: p50 {percentile(upper, 50):.0f} ms   "
          f"p95 {percentile(upper, 95):.0f} ms   p99 {percentile(upper, 99):.0f} ms")
    print(f"  commit -> receiver, from response read:   p50 {percentile(lower, 50):.0f} ms   "
          f"p95 {percentile(lower, 95):.0f} ms   p99 {percentile(lower, 99):.0f} ms")
    print(f"Throughput: {args.backlog} queued deliveries drained at {rate:.0f} deliveries/s "
          f"({drain:.1f} s from resume to the last POST)")
    print(f"Receiver failing 30% of first attempts: {succeeded}/{events} delivered "
          f"({100 * succeeded / events:.1f}%), {retried} first attempts failed and were retried, {took:.1f} s")


if __name__ == "__main__":
    main()
