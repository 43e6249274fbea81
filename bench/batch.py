"""One HTTP batch of 100 ax_create_salesorder against the same 100 as separate HTTP calls,
and a batch of 1000 mixed operations, on the embedded default (SQLite).

Usage: .venv/bin/python -m bench.batch [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import requests

from bench.hub import running_hub


def order(n: int) -> dict:
    return {"customer_account": f"CUST-00{1 + n % 2}", "lines": [{"item_id": "ITEM-004", "quantity": 1}]}


def mixed(n: int) -> dict:
    kind = n % 4
    if kind == 0:
        return {"tool": "ax_create_salesorder", "arguments": order(n)}
    if kind == 1:
        return {"tool": "ax_check_inventory", "arguments": {"item_id": "ITEM-003"}}
    if kind == 2:
        return {"tool": "ax_get_customer", "arguments": {"customer_account": "CUST-002"}}
    return {"tool": "ax_adjust_inventory", "arguments": {"item_id": "ITEM-004", "quantity_change": 1,
                                                         "reason": "cycle count"}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with running_hub() as (base, token, _env):
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        # Plenty of stock and no credit limit, so every order succeeds.
        for account in ("CUST-001", "CUST-002"):
            session.post(f"{base}/api/tools/ax_update_customer", json={"customer_account": account,
                                                                         "credit_limit": 0}).raise_for_status()
        session.post(f"{base}/api/tools/ax_adjust_inventory", json={
            "item_id": "ITEM-004", "quantity_change": 1_000_000, "reason": "bench stock"}).raise_for_status()
        # Warm-up: every web thread opens its database connection on its first request, and the
        # first batch pays for loading what a batch uses; neither is the steady state measured.
        for n in range(20):
            session.post(f"{base}/api/tools/ax_create_salesorder", json=order(n)).raise_for_status()
        warm = {"requests": [{"tool": "ax_create_salesorder", "arguments": order(n)} for n in range(100)],
                "max_parallel": 5}
        for _ in range(2):
            session.post(f"{base}/api/tools/ax_batch_operations", json=warm, timeout=120).raise_for_status()

        batch_times, single_times = [], []
        for _ in range(args.rounds):
            body = {"requests": [{"tool": "ax_create_salesorder", "arguments": order(n)} for n in range(100)],
                    "max_parallel": 5}
            started = time.perf_counter()
            response = session.post(f"{base}/api/tools/ax_batch_operations", json=body, timeout=120)
            batch_times.append((time.perf_counter() - started) * 1000)
            result = response.json()
            assert response.status_code == 200 and result["successful"] == 100, result
            started = time.perf_counter()
            for n in range(100):
                session.post(f"{base}/api/tools/ax_create_salesorder", json=order(n), timeout=30).raise_for_status()
            single_times.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        response = session.post(f"{base}/api/tools/ax_batch_operations",
                                json={"requests": [mixed(n) for n in range(1000)], "max_parallel": 10}, timeout=300)
        mixed_ms = (time.perf_counter() - started) * 1000
        mixed_result = response.json()

    batch_ms, single_ms = statistics.median(batch_times), statistics.median(single_times)
    print(f"100 x ax_create_salesorder, one HTTP batch (max_parallel 5): {batch_ms:.0f} ms "
          f"(median of {args.rounds}; all: {', '.join(f'{t:.0f}' for t in batch_times)})")
    print(f"100 x ax_create_salesorder, separate HTTP calls:            {single_ms:.0f} ms "
          f"(median of {args.rounds}; all: {', '.join(f'{t:.0f}' for t in single_times)})")
    # Each round times its batch and its separate calls back to back, so a round's ratio is taken
    # at one machine speed; the median of those is the figure that drifts least.
    ratios = [single / batch for single, batch in zip(single_times, batch_times, strict=True)]
    print(f"ratio separate / batch: {statistics.median(ratios):.1f}x (median of the rounds' ratios: "
          f"{', '.join(f'{r:.1f}' for r in ratios)}; ratio of the medians {single_ms / batch_ms:.1f}x)   "
          f"targets: batch < 300 ms {'met' if batch_ms < 300 else 'NOT MET'}, "
          f"ratio >= 5x {'met' if statistics.median(ratios) >= 5 else 'NOT MET'}")
    print(f"1000 mixed operations in one batch (max_parallel 10): {mixed_ms:.0f} ms, "
          f"{mixed_result['successful']} ok, {mixed_result['failed']} failed")


if __name__ == "__main__":
    main()
