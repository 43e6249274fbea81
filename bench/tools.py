"""Latency of one ax_create_salesorder (and one ax_get_customer) over HTTP, on the embedded
default (SQLite) or on PostgreSQL + Redis (bench.profile), or on both in one run side by side.

Usage: .venv/bin/python -m bench.tools [--calls 300] [--profile sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import requests

from bench import profile as bench_profile
from bench.compare import side_by_side
from bench.hub import add_hub_env, hub_env, percentile, running_hub

ORDER = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-004", "quantity": 1}]}


def _timings(session: requests.Session, url: str, body: dict, calls: int) -> list[float]:
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        response = session.post(url, json=body, timeout=10)
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return timings


def measure(profile: bench_profile.Profile, calls: int, extra_env: dict[str, str]) -> dict[str, float]:
    with running_hub(extra_env=extra_env, profile=profile) as (base, token, _env):
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        url = f"{base}/api/tools/ax_create_salesorder"
        session.post(f"{base}/api/tools/ax_adjust_inventory", json={
            "item_id": "ITEM-004", "quantity_change": 1_000_000, "reason": "bench stock"}).raise_for_status()
        for _ in range(20):  # warm-up: imports, connections, the database's page cache
            session.post(url, json=ORDER, timeout=10).raise_for_status()
        writes = _timings(session, url, ORDER, calls)
        reads = _timings(session, f"{base}/api/tools/ax_get_customer", {"customer_account": "CUST-001"}, calls)
    print(f"ax_create_salesorder over HTTP, {calls} sequential calls ({profile.label}):")
    print(f"  median {statistics.median(writes):.2f} ms   p95 {percentile(writes, 95):.2f} ms   "
          f"p99 {percentile(writes, 99):.2f} ms")
    print(f"ax_get_customer over HTTP: median {statistics.median(reads):.2f} ms   "
          f"p95 {percentile(reads, 95):.2f} ms", flush=True)
    return {"ax_create_salesorder p50": statistics.median(writes),
            "ax_create_salesorder p95": percentile(writes, 95),
            "ax_create_salesorder p99": percentile(writes, 99),
            "ax_get_customer p50": statistics.median(reads),
            "ax_get_customer p95": percentile(reads, 95)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    add_hub_env(parser)
    bench_profile.add_arguments(parser)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    extra_env = hub_env(args)
    figures = {p.short: measure(p, args.calls, extra_env) for p in bench_profile.profiles(args)}
    side_by_side("One call over HTTP", figures)


if __name__ == "__main__":
    main()
