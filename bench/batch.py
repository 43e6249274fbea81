"""One HTTP batch of 100 ax_create_salesorder (max_parallel 1, 5 and 10) against the same 100 as
separate HTTP calls (all on one item, as a webshop's best seller: each order waits for the one
before it to release the item's row), 100 orders that share no customer or item (where they can
overlap), and a batch of 1000 mixed operations, on the embedded default (SQLite) or
on PostgreSQL + Redis (bench.profile), or on both in one run side by side.

On SQLite a batch whose operations all write runs them on one thread whatever max_parallel says
(they would queue for the one writer lock); on PostgreSQL they overlap on max_parallel threads.

Usage: .venv/bin/python -m bench.batch [--rounds 7] [--profile sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import requests

from bench import profile as bench_profile
from bench.compare import side_by_side
from bench.hub import add_hub_env, hub_env, running_hub

PARALLEL = (1, 5, 10)


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


def _batch(session: requests.Session, base: str, max_parallel: int, make=order) -> float:
    body = {"requests": [{"tool": "ax_create_salesorder", "arguments": make(n)} for n in range(100)],
            "max_parallel": max_parallel}
    started = time.perf_counter()
    response = session.post(f"{base}/api/tools/ax_batch_operations", json=body, timeout=120)
    elapsed = (time.perf_counter() - started) * 1000
    result = response.json()
    assert response.status_code == 200 and result["successful"] == 100, result
    return elapsed


def spread(n: int) -> dict:
    """An order that shares no row with the others of its batch: its own customer and item."""
    return {"customer_account": f"BENCH-C{n:03d}", "lines": [{"item_id": f"BENCH-I{n:03d}", "quantity": 1}]}


def _separate(session: requests.Session, base: str) -> float:
    started = time.perf_counter()
    for n in range(100):
        session.post(f"{base}/api/tools/ax_create_salesorder", json=order(n), timeout=30).raise_for_status()
    return (time.perf_counter() - started) * 1000


def measure(profile: bench_profile.Profile, rounds: int, extra_env: dict[str, str]) -> dict[str, float]:
    with running_hub(extra_env=extra_env, profile=profile) as (base, token, _env):
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        # Plenty of stock and no credit limit, so every order succeeds.
        for account in ("CUST-001", "CUST-002"):
            session.post(f"{base}/api/tools/ax_update_customer", json={"customer_account": account,
                                                                         "credit_limit": 0}).raise_for_status()
        session.post(f"{base}/api/tools/ax_adjust_inventory", json={
            "item_id": "ITEM-004", "quantity_change": 1_000_000, "reason": "bench stock"}).raise_for_status()
        # 100 customers and items of their own, for the batches whose orders share no row.
        for n in range(100):
            session.post(f"{base}/api/tools/ax_create_customer", json={
                "customer_account": f"BENCH-C{n:03d}", "name": f"Bench customer {n}", "currency": "EUR"},
            ).raise_for_status()
            session.post(f"{base}/api/tools/ax_create_item", json={
                "item_id": f"BENCH-I{n:03d}", "name": f"Bench item {n}", "unit_price": 10.0, "on_hand": 1_000_000},
            ).raise_for_status()
        # Warm-up: every web thread opens its database connection on its first request, and the
        # first batch pays for loading what a batch uses; neither is the steady state measured.
        for n in range(20):
            session.post(f"{base}/api/tools/ax_create_salesorder", json=order(n)).raise_for_status()
        for max_parallel in (5, *PARALLEL):
            _batch(session, base, max_parallel)

        # Each round times the separate calls and then a batch at each max_parallel back to back,
        # so a round's ratios are taken at one machine speed; their median drifts least.
        batch_times: dict[int, list[float]] = {p: [] for p in PARALLEL}
        spread_times: dict[int, list[float]] = {p: [] for p in PARALLEL}
        single_times: list[float] = []
        for _ in range(rounds):
            single_times.append(_separate(session, base))
            for max_parallel in PARALLEL:
                batch_times[max_parallel].append(_batch(session, base, max_parallel))
            for max_parallel in PARALLEL:
                spread_times[max_parallel].append(_batch(session, base, max_parallel, spread))

        started = time.perf_counter()
        response = session.post(f"{base}/api/tools/ax_batch_operations",
                                json={"requests": [mixed(n) for n in range(1000)], "max_parallel": 10}, timeout=300)
        mixed_ms = (time.perf_counter() - started) * 1000
        mixed_result = response.json()

    single_ms = statistics.median(single_times)
    print(f"{profile.label}, {rounds} rounds:")
    print(f"  100 x ax_create_salesorder, separate HTTP calls:             {single_ms:5.0f} ms "
          f"(median; all: {', '.join(f'{t:.0f}' for t in single_times)})")
    figures = {"100 orders, separate HTTP calls": single_ms}
    for max_parallel in PARALLEL:
        times = batch_times[max_parallel]
        batch_ms = statistics.median(times)
        ratios = [single / batch for single, batch in zip(single_times, times, strict=True)]
        ratio = statistics.median(ratios)
        targets = (f"   targets: batch < 300 ms {'met' if batch_ms < 300 else 'NOT MET'}, ratio >= 5x "
                   f"{'met' if ratio >= 5 else 'NOT MET'}") if max_parallel == 5 else ""
        print(f"  100 x ax_create_salesorder, one HTTP batch (max_parallel {max_parallel:2}): {batch_ms:5.0f} ms "
              f"(median; all: {', '.join(f'{t:.0f}' for t in times)})")
        print(f"    ratio separate / batch: {ratio:.1f}x (median of the rounds' ratios: "
              f"{', '.join(f'{r:.1f}' for r in ratios)}; ratio of the medians {single_ms / batch_ms:.1f}x){targets}")
        figures[f"100 orders, one batch, max_parallel {max_parallel}"] = batch_ms
        figures[f"(ratio separate / batch, max_parallel {max_parallel})"] = ratio
    for max_parallel in PARALLEL:
        times = spread_times[max_parallel]
        print(f"  100 orders sharing no customer or item, one batch (max_parallel {max_parallel:2}): "
              f"{statistics.median(times):5.0f} ms (median; all: {', '.join(f'{t:.0f}' for t in times)})")
        figures[f"100 orders, no shared rows, max_parallel {max_parallel}"] = statistics.median(times)
    print(f"  1000 mixed operations in one batch (max_parallel 10): {mixed_ms:.0f} ms, "
          f"{mixed_result['successful']} ok, {mixed_result['failed']} failed", flush=True)
    figures["1000 mixed operations, one batch, max_parallel 10"] = mixed_ms
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    add_hub_env(parser)
    bench_profile.add_arguments(parser)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    extra_env = hub_env(args)
    figures = {p.short: measure(p, args.rounds, extra_env) for p in bench_profile.profiles(args)}
    ratios = frozenset(label for label in next(iter(figures.values())) if label.startswith("(ratio"))
    side_by_side("Batches over HTTP", figures, plain=ratios)


if __name__ == "__main__":
    main()
