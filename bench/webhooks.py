"""Webhook delivery on either profile (bench.profile): the embedded default (SQLite + ORM
broker) or PostgreSQL + Redis; with `--profile both` the figures are printed side by side.

A throw-away hub (web + one worker) runs with its own database; the dispatchers are started and
stopped here, so one run measures one and two dispatcher processes on the same database,
alternating (the machine's speed drifts, so a comparison holds only within one run). The
receiver is a thread of this process on 127.0.0.1 (tests/webhooks/receiver.py); its own
capacity is measured first, alone, from a client in another process, so it is known not to be
the limit.

1. Latency: sequential ax_create_salesorder calls over HTTP; for each, the time from the
   call's commit to the receiver getting the POST. The event's `timestamp` is taken when it is
   stored, just before the commit, so "receiver time - timestamp" is a tight upper bound (the
   headline); "receiver time - response read" is a lower bound (the commit came before it).
2. Throughput: deliveries pile up while the subscription is paused; on resume the time from
   the first to the last POST received gives deliveries per second sustained. Rounds alternate
   one and two dispatchers; the median of each is printed, with the CPU each process used
   while the backlog drained (bench.procstat).
3. Flaky receiver: 30% of first attempts answer 503; every event must arrive in the end.

Usage: .venv/bin/python -m bench.webhooks [--profile sqlite|postgres|both] [--dispatchers 1,2]
           [--latency 300] [--backlog 4000] [--rounds 3] [--flaky 500]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

import requests

from bench import procstat
from bench.hub import ROOT, percentile, running_hub
from bench.profile import Profile, add_arguments, profiles
from tests.webhooks.receiver import ok, serve

SECRET = "whsec_" + "YmVuY2htYXJrLXNlY3JldC1vZi0zMi1ieXRlcy4uLi4="
TARGET_RATE = 500  # deliveries/s on PostgreSQL + Redis
TARGET_P95_MS = 250
TARGET_SCALE = 1.3  # two dispatchers against one


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

    def prepare(self) -> None:
        """Orders that never run out of credit or stock."""
        self.call("ax_update_customer", {"customer_account": "CUST-001", "credit_limit": 0})
        self.call("ax_adjust_inventory", {"item_id": "ITEM-004", "quantity_change": 10_000_000,
                                          "reason": "bench stock"})

    def orders(self, count: int, chunk: int = 500) -> None:
        for start in range(0, count, chunk):
            n = min(chunk, count - start)
            result = self.call("ax_batch_operations", {"requests": [
                {"tool": "ax_create_salesorder", "arguments": order()} for _ in range(n)], "max_parallel": 8})
            assert result["successful"] == n, result


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


def database_name(env: dict[str, str]) -> str:
    url = env.get("DATABASE_URL", "")
    return urlsplit(url).path.lstrip("/") if url else ""


class Dispatchers:
    """`manage.py webhook_dispatcher` processes of the hub, started and stopped to a given count."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: list[subprocess.Popen] = []

    def set(self, count: int) -> None:
        while len(self.procs) > count:
            proc = self.procs.pop()
            proc.terminate()
            proc.wait(30)
        while len(self.procs) < count:
            proc = subprocess.Popen([sys.executable, "manage.py", "webhook_dispatcher"], cwd=ROOT, env=self.env,
                                    stdout=subprocess.PIPE, text=True)
            proc.stdout.readline()  # "webhook dispatcher running": Django is loaded, the loop starts
            self.procs.append(proc)
        time.sleep(0.5)

    def close(self) -> None:
        self.set(0)


@contextmanager
def hub_with_receiver(profile: Profile, web: int = 1, worker: int = 1):
    """(hub, receiver, env, dispatchers) of a fresh hub on `profile`, no dispatcher running yet."""
    env = {"WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}
    with serve() as receiver, running_hub(env, worker=worker, dispatcher=0, web=web, profile=profile) as (
            base, token, hub_env):
        dispatchers = Dispatchers(hub_env)
        try:
            hub = Hub(base, token)
            hub.prepare()
            yield hub, receiver, hub_env, dispatchers
        finally:
            dispatchers.close()


_BLAST = """
import sys, threading, time, urllib3
url, threads, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
parts = urllib3.util.parse_url(url)
body = (b'{"id":"evt_x","event":"salesorder.created","timestamp":"2026-01-01T00:00:00.000Z",'
        b'"data":{"sales_id":"SO-1","customer_account":"CUST-001","total_amount":"10.00","currency":"EUR"}}')
headers = {"Content-Type": "application/json", "webhook-id": "evt_x", "webhook-timestamp": "1",
           "webhook-signature": "v1,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx="}
end = time.monotonic() + seconds
def run():
    pool = urllib3.HTTPConnectionPool(parts.host, parts.port, maxsize=1)
    while time.monotonic() < end:
        pool.urlopen("POST", parts.path, body=body, headers=headers, retries=False).data
ts = [threading.Thread(target=run) for _ in range(threads)]
[t.start() for t in ts]
[t.join() for t in ts]
"""


def receiver_capacity(receiver, threads: int = 16, seconds: float = 3.0) -> tuple[float, dict[str, float]]:
    """POSTs/s the receiver takes alone, from `threads` keep-alive clients in another process
    (as a dispatcher's sender threads send), and the CPU it used meanwhile."""
    receiver.requests.clear()
    before = procstat.Snapshot.take()
    started = time.time()
    subprocess.run([sys.executable, "-c", _BLAST, receiver.url, str(threads), str(seconds)], check=True)
    after = procstat.Snapshot.take()
    times = [r.at for r in receiver.requests if r.at >= started]
    receiver.requests.clear()
    return len(times) / (max(times) - min(times)), procstat.usage(before, after)


def by_sales_id(received) -> dict[str, tuple[float, float]]:
    """sales_id -> (arrival time, event timestamp) of the first POST of each order."""
    arrivals: dict[str, tuple[float, float]] = {}
    for r in received:
        body = json.loads(r.body)
        stamp = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00")).timestamp()
        arrivals.setdefault(body["data"]["sales_id"], (r.at, stamp))
    return arrivals


def subscribe(hub: Hub, receiver) -> str:
    return hub.call("ax_subscribe_webhook", {"event_type": "salesorder.created", "webhook_url": receiver.url,
                                             "secret": SECRET})["subscription_id"]


def latency(hub: Hub, receiver, calls: int, pause: float) -> tuple[list[float], list[float]]:
    receiver.requests.clear()
    sub = subscribe(hub, receiver)
    for _ in range(20):  # warm-up: connections, imports, the receiver's first accept
        hub.call("ax_create_salesorder", order())
    receiver.wait_for(20, timeout=60)
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


def throughput(hub: Hub, receiver, backlog: int, database: str = "") -> tuple[float, float, dict[str, float]]:
    """(deliveries/s from first to last POST, seconds from resume to the last POST, CPU per role
    from resume to the last POST)."""
    receiver.requests.clear()
    sub = subscribe(hub, receiver)
    hub.call("ax_update_webhook", {"subscription_id": sub, "status": "paused"})
    hub.orders(backlog)
    before = procstat.Snapshot.take(database)
    resumed = time.time()
    hub.call("ax_update_webhook", {"subscription_id": sub, "status": "active"})
    wait_for(lambda: len(receiver.requests) >= backlog, 600, "the backlog")
    after = procstat.Snapshot.take(database)
    times = sorted(r.at for r in receiver.requests[:backlog])
    hub.call("ax_unsubscribe_webhook", {"subscription_id": sub})
    return backlog / (times[-1] - times[0]), times[-1] - resumed, procstat.usage(before, after)


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
    sub = subscribe(hub, receiver)
    started = time.time()
    hub.orders(events, chunk=250)
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
    receiver.respond = ok
    return status["succeeded"], events, failed_first, time.time() - started


@dataclass
class Figures:
    capacity: float = 0.0
    capacity_cpu: dict[str, float] = field(default_factory=dict)
    upper: dict[int, list[float]] = field(default_factory=dict)  # dispatchers -> latencies (ms)
    lower: dict[int, list[float]] = field(default_factory=dict)
    rates: dict[int, list[float]] = field(default_factory=dict)  # dispatchers -> deliveries/s per round
    cpu: dict[int, list[dict[str, float]]] = field(default_factory=dict)
    flaky: tuple[int, int, int, float] | None = None

    def rate(self, n: int) -> float:
        return statistics.median(self.rates[n])

    def median_cpu(self, n: int) -> dict[str, float]:
        """The CPU of the round whose rate was the median one."""
        rounds = sorted(zip(self.rates[n], self.cpu[n], strict=True), key=lambda pair: pair[0])
        return rounds[len(rounds) // 2][1]


def measure(profile: Profile, counts: list[int], latency_calls: int, pause: float, backlog: int, rounds: int,
            flaky_events: int) -> Figures:
    figures = Figures()
    with hub_with_receiver(profile) as (hub, receiver, env, dispatchers):
        figures.capacity, figures.capacity_cpu = receiver_capacity(receiver)
        database = database_name(env)
        for n in counts:
            dispatchers.set(n)
            figures.upper[n], figures.lower[n] = latency(hub, receiver, latency_calls, pause)
        for round_no in range(rounds):
            for n in counts if round_no % 2 == 0 else counts[::-1]:
                dispatchers.set(n)
                rate, _drain, cpu = throughput(hub, receiver, backlog, database)
                figures.rates.setdefault(n, []).append(rate)
                figures.cpu.setdefault(n, []).append(cpu)
                print(f"  [{profile.short}] {n} dispatcher(s), round {round_no + 1}: {rate:.0f} deliveries/s",
                      file=sys.stderr, flush=True)
        if flaky_events:
            dispatchers.set(counts[0])
            figures.flaky = flaky(hub, receiver, flaky_events)
    return figures


def _per_delivery(cpu: dict[str, float], deliveries: int) -> str:
    """CPU per delivery of the dispatchers and of the PostgreSQL backends: what a delivery costs,
    which other work on the machine disturbs far less than deliveries/s."""
    dispatchers = sum(v for k, v in cpu.items() if k.startswith("dispatcher"))
    backends = cpu.get("PostgreSQL backends", 0.0)
    text = f"dispatcher {1000 * dispatchers / deliveries:.2f} ms"
    return text + (f", PG {1000 * backends / deliveries:.2f} ms" if backends else "")


def report(results: dict[str, Figures], counts: list[int], args: argparse.Namespace) -> None:
    names = list(results)
    width = 26

    def row(label: str, values: list[str]) -> None:
        print(f"  {label:<44}" + "".join(f"{v:>{width}}" for v in values))

    print(f"Webhook delivery ({args.latency} sequential orders for latency, {args.backlog} queued deliveries "
          f"per throughput round, {args.rounds} rounds alternating the dispatcher count; medians):")
    row("", names)
    row("receiver alone, 16 keep-alive clients", [f"{f.capacity:,.0f} POSTs/s" for f in results.values()])
    for n in counts:
        row(f"{n} dispatcher(s): commit -> receiver p50/p95/p99",
            [f"{percentile(f.upper[n], 50):.0f} / {percentile(f.upper[n], 95):.0f} / "
             f"{percentile(f.upper[n], 99):.0f} ms" for f in results.values()])
        row(f"{n} dispatcher(s): from response read, p95",
            [f"{percentile(f.lower[n], 95):.0f} ms" for f in results.values()])
    for n in counts:
        row(f"{n} dispatcher(s): deliveries/s (every round)",
            [f"{f.rate(n):,.0f} ({', '.join(f'{r:.0f}' for r in f.rates[n])})" for f in results.values()])
    for n in counts:
        row(f"{n} dispatcher(s): CPU per delivery (median round)",
            [_per_delivery(f.median_cpu(n), args.backlog) for f in results.values()])
    if len(counts) > 1:
        a, b = counts[0], counts[-1]
        row(f"{b} vs {a} dispatcher(s)", [f"{f.rate(b) / f.rate(a):.2f}x" for f in results.values()])
    for name, f in results.items():
        if f.flaky:
            succeeded, events, retried, took = f.flaky
            print(f"  {name}: receiver failing 30% of first attempts: {succeeded}/{events} delivered "
                  f"({100 * succeeded / events:.1f}%), {retried} retried, {took:.1f} s")
    print("Where the CPU went while the backlog drained (the median round; % of one core):")
    for name, f in results.items():
        print(f"  {name}: receiver alone at {f.capacity:,.0f}/s: {procstat.describe(f.capacity_cpu)}")
        for n in counts:
            print(f"  {name}, {n} dispatcher(s): {procstat.describe(f.median_cpu(n))}")
    if "PostgreSQL" in results:
        f = results["PostgreSQL"]
        best = max(counts)
        p95 = percentile(f.upper[best], 95)
        print(f"Targets on PostgreSQL + Redis: >= {TARGET_RATE} deliveries/s: {f.rate(best):.0f} "
              f"({'met' if f.rate(best) >= TARGET_RATE else 'not met'}); p95 < {TARGET_P95_MS} ms: {p95:.0f} ms "
              f"({'met' if p95 < TARGET_P95_MS else 'not met'})", end="")
        if len(counts) > 1:
            scale = f.rate(counts[-1]) / f.rate(counts[0])
            print(f"; 2 dispatchers >= {TARGET_SCALE}x one: {scale:.2f}x "
                  f"({'met' if scale >= TARGET_SCALE else 'not met'})")
        else:
            print()


def main() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parser.add_argument("--dispatchers", default="1,2", help="dispatcher counts to compare (default 1,2)")
    parser.add_argument("--latency", type=int, default=300, help="sequential orders for the latency figures")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between latency calls")
    parser.add_argument("--backlog", type=int, default=4000, help="deliveries per throughput round")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per dispatcher count")
    parser.add_argument("--flaky", type=int, default=500, help="events sent to the 30%%-failing receiver (0: skip)")
    args = parser.parse_args()
    counts = [int(n) for n in args.dispatchers.split(",")]
    results = {p.short: measure(p, counts, args.latency, args.pause, args.backlog, args.rounds, args.flaky)
               for p in profiles(args)}
    report(results, counts, args)


if __name__ == "__main__":
    main()
