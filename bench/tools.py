"""Latency of one ax_create_salesorder over HTTP on the embedded default (SQLite).

Usage: .venv/bin/python -m bench.tools [--calls 300]
"""

from __future__ import annotations

import argparse
import statistics
import time

import requests

from bench.hub import percentile, running_hub

ORDER = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-004", "quantity": 1}]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with running_hub() as (base, token, _env):
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        url = f"{base}/api/tools/ax_create_salesorder"
        for _ in range(20):  # warm-up: imports, connections, SQLite page cache
            session.post(url, json=ORDER, timeout=10).raise_for_status()
        timings = []
        for _ in range(args.calls):
            started = time.perf_counter()
            response = session.post(url, json=ORDER, timeout=10)
            timings.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
        read_timings = []
        for _ in range(args.calls):
            started = time.perf_counter()
            session.post(f"{base}/api/tools/ax_get_customer", json={"customer_account": "CUST-001"},
                         timeout=10).raise_for_status()
            read_timings.append((time.perf_counter() - started) * 1000)
    print(f"ax_create_salesorder over HTTP, {args.calls} sequential calls (embedded SQLite):")
    print(f"  median {statistics.median(timings):.2f} ms   p95 {percentile(timings, 95):.2f} ms   "
          f"p99 {percentile(timings, 99):.2f} ms")
    print(f"ax_get_customer over HTTP: median {statistics.median(read_timings):.2f} ms   "
          f"p95 {percentile(read_timings, 95):.2f} ms")


if __name__ == "__main__":
    main()
