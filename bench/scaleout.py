"""Throughput as processes are added, on either profile (bench.profile), and where the time goes.

1. Orders: 16 concurrent HTTP clients (threads, each with its own requests.Session) call
   ax_create_salesorder (3 lines, customers and items drawn at random) against a hub with 1 and
   then 2 web processes (uvicorn --workers); orders/s over fixed windows, the median printed.
2. Deliveries: a queued backlog drained by 1 and by 2 webhook dispatchers, alternating on one
   hub (bench.webhooks).
3. Imports: two 50,000-row customers CSVs submitted at once through the HTTP API
   (ax_bulk_import) to a hub with 1 and then 2 worker processes, each running one task at a
   time (Q_WORKERS=1, so one process runs the jobs one after the other and two run them side
   by side; `--q-workers 2` keeps django-q2's default of two task processes per worker); the
   time from the first submission until both jobs completed.

For each: the ratio of 2 processes to 1 and the CPU each process used meanwhile (bench.procstat:
the hub's processes, the PostgreSQL backends of the run's database, Redis, this process).
On a 2-core machine a second process cannot double anything; the ratio and the CPU say why.

Usage: .venv/bin/python -m bench.scaleout [--profile sqlite|postgres|both] [--only orders,deliveries,imports]
           [--clients 16] [--seconds 8] [--windows 3] [--backlog 4000] [--rounds 3] [--rows 50000]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench import procstat
from bench.hub import percentile, running_hub
from bench.imports import write_csv
from bench.profile import Profile, add_arguments, profiles
from bench.webhooks import Hub, database_name, hub_with_receiver, throughput

CUSTOMERS = ["CUST-001", "CUST-002", "CUST-003", "CUST-004", "CUST-005"]
ITEMS = ["ITEM-001", "ITEM-002", "ITEM-003", "ITEM-004", "ITEM-005"]


def _prepare_orders(hub: Hub) -> None:
    for account in CUSTOMERS:
        hub.call("ax_update_customer", {"customer_account": account, "credit_limit": 0})
    for item in ITEMS:
        hub.call("ax_adjust_inventory", {"item_id": item, "quantity_change": 10_000_000, "reason": "bench stock"})


def _client(base: str, token: str, stop: threading.Event, seed: int, out: list, errors: list) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    rng = random.Random(seed)
    while not stop.is_set():
        arguments = {"customer_account": rng.choice(CUSTOMERS),
                     "lines": [{"item_id": item, "quantity": rng.randint(1, 3)} for item in rng.sample(ITEMS, 3)]}
        started = time.perf_counter()
        response = session.post(f"{base}/api/tools/ax_create_salesorder", json=arguments, timeout=60)
        ended = time.perf_counter()
        if response.status_code == 200:
            out.append((ended, (ended - started) * 1000))
        else:
            errors.append(f"{response.status_code} {response.text[:200]}")


def orders(profile: Profile, web: int, clients: int, seconds: float, windows: int) -> dict:
    """Orders/s of `clients` concurrent clients against `web` web processes: the median window."""
    with running_hub(profile=profile, web=web) as (base, token, env):
        _prepare_orders(Hub(base, token))
        database = database_name(env)
        stop = threading.Event()
        done: list[tuple[float, float]] = []
        errors: list[str] = []
        threads = [threading.Thread(target=_client, args=(base, token, stop, n, done, errors), daemon=True)
                   for n in range(clients)]
        for thread in threads:
            thread.start()
        time.sleep(2)  # warm-up: connections, every web process's first requests
        results = []
        for _ in range(windows):
            before, start = procstat.Snapshot.take(database), time.perf_counter()
            time.sleep(seconds)
            after, end = procstat.Snapshot.take(database), time.perf_counter()
            inside = [ms for at, ms in list(done) if start <= at < end]
            results.append({"rate": len(inside) / (end - start), "p50": percentile(inside, 50),
                            "p95": percentile(inside, 95), "cpu": procstat.usage(before, after)})
        stop.set()
        for thread in threads:
            thread.join(70)
    if errors:
        print(f"  [{profile.short}] {len(errors)} failed orders, e.g. {errors[0]}", file=sys.stderr)
    results.sort(key=lambda r: r["rate"])
    median = dict(results[len(results) // 2])
    median["rates"] = [r["rate"] for r in results]
    print(f"  [{profile.short}] {web} web: {median['rate']:.0f} orders/s", file=sys.stderr, flush=True)
    return median


def deliveries(profile: Profile, backlog: int, rounds: int) -> dict[int, dict]:
    """Deliveries/s with 1 and 2 dispatchers, alternating on one hub: median round of each."""
    found: dict[int, list[tuple[float, dict]]] = {1: [], 2: []}
    with hub_with_receiver(profile) as (hub, receiver, env, dispatchers):
        database = database_name(env)
        for round_no in range(rounds):
            for n in (1, 2) if round_no % 2 == 0 else (2, 1):
                dispatchers.set(n)
                rate, _drain, cpu = throughput(hub, receiver, backlog, database)
                found[n].append((rate, cpu))
                print(f"  [{profile.short}] {n} dispatcher(s): {rate:.0f} deliveries/s", file=sys.stderr, flush=True)
    result = {}
    for n, runs in found.items():
        runs.sort(key=lambda pair: pair[0])
        rate, cpu = runs[len(runs) // 2]
        result[n] = {"rate": rate, "rates": [r for r, _ in found[n]], "cpu": cpu}
    return result


def _files(rows: int, folder: Path) -> list[str]:
    """Two customers CSVs of `rows` rows with different accounts (CU… and CV…)."""
    first = folder / "customers-a.csv"
    write_csv(first, rows)
    text = first.read_text(encoding="utf-8")
    return [text, re.sub(r"^CU", "CV", text, flags=re.MULTILINE)]


def imports(profile: Profile, workers: int, files: list[str], q_workers: int) -> dict:
    """Both files submitted at once; seconds until both jobs completed, and rows/s over both."""
    with running_hub({"Q_WORKERS": str(q_workers)}, profile=profile, worker=workers) as (base, token, env):
        hub = Hub(base, token)
        database = database_name(env)
        before, started = procstat.Snapshot.take(database), time.perf_counter()
        jobs = [hub.call("ax_bulk_import", {"type": "customers", "format": "csv", "data": text, "mode": "create",
                                            "batch_size": 5000})["job_id"] for text in files]
        submitted = time.perf_counter() - started
        finished: dict[str, float] = {}
        while len(finished) < len(jobs):
            for job in jobs:
                if job in finished:
                    continue
                status = hub.call("ax_get_import_status", {"job_id": job, "errors_limit": 1})
                if status["status"] in ("completed", "failed", "cancelled"):
                    if status["status"] != "completed" or status["failed"]:
                        raise RuntimeError(f"import {job}: {status['status']}, {status['failed']} failed rows")
                    finished[job] = time.perf_counter() - started
            if time.perf_counter() - started > 900:
                raise RuntimeError("the imports did not finish in 15 minutes")
            time.sleep(0.2)
        after = procstat.Snapshot.take(database)
    total = max(finished.values())
    rows = sum(text.count("\n") - 1 for text in files)
    print(f"  [{profile.short}] {workers} worker(s): both imports in {total:.1f} s", file=sys.stderr, flush=True)
    return {"seconds": total, "each": sorted(finished.values()), "submitted": submitted, "rate": rows / total,
            "cpu": procstat.usage(before, after)}


def main() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parser.add_argument("--only", default="orders,deliveries,imports", help="which measurements, comma-separated")
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients for orders")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one orders window")
    parser.add_argument("--windows", type=int, default=3, help="orders windows per web count")
    parser.add_argument("--backlog", type=int, default=4000, help="deliveries per dispatcher round")
    parser.add_argument("--rounds", type=int, default=3, help="delivery rounds per dispatcher count")
    parser.add_argument("--rows", type=int, default=50_000, help="rows of each of the two import files")
    parser.add_argument("--q-workers", type=int, default=1, help="django-q2 task processes per worker process")
    args = parser.parse_args()
    only = set(args.only.split(","))
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="axhub-scaleout-") as folder:
        files = _files(args.rows, Path(folder)) if "imports" in only else []
        for profile in profiles(args):
            found: dict = {}
            if "orders" in only:
                found["orders"] = {n: orders(profile, n, args.clients, args.seconds, args.windows) for n in (1, 2)}
            if "deliveries" in only:
                found["deliveries"] = deliveries(profile, args.backlog, args.rounds)
            if "imports" in only:
                found["imports"] = {n: imports(profile, n, files, args.q_workers) for n in (1, 2)}
            results[profile.short] = found
    report(results, args)


def report(results: dict[str, dict], args: argparse.Namespace) -> None:
    names = list(results)
    width = 30

    def row(label: str, values: list[str]) -> None:
        print(f"  {label:<46}" + "".join(f"{v:>{width}}" for v in values))

    print("Scale-out: throughput with 1 and 2 processes of a kind (medians; the ratio is 2 over 1)")
    row("", names)
    found = results[names[0]]
    if "orders" in found:
        for n in (1, 2):
            row(f"orders/s, {args.clients} clients, {n} web process(es)",
                [f"{r['orders'][n]['rate']:.0f} (p50 {r['orders'][n]['p50']:.0f} / p95 {r['orders'][n]['p95']:.0f} ms)"
                 for r in results.values()])
        row("orders: 2 web vs 1", [f"{r['orders'][2]['rate'] / r['orders'][1]['rate']:.2f}x"
                                   for r in results.values()])
    if "deliveries" in found:
        for n in (1, 2):
            row(f"deliveries/s, {n} dispatcher(s)", [f"{r['deliveries'][n]['rate']:.0f} ("
                                                      f"{', '.join(f'{x:.0f}' for x in r['deliveries'][n]['rates'])})"
                                                      for r in results.values()])
        row("deliveries: 2 dispatchers vs 1", [f"{r['deliveries'][2]['rate'] / r['deliveries'][1]['rate']:.2f}x"
                                               for r in results.values()])
    if "imports" in found:
        for n in (1, 2):
            row(f"2 x {args.rows:,}-row imports, {n} worker(s)",
                [f"{r['imports'][n]['seconds']:.1f} s ({r['imports'][n]['rate']:,.0f} rows/s)"
                 for r in results.values()])
        row("imports: 2 workers vs 1 (rows/s)", [f"{r['imports'][2]['rate'] / r['imports'][1]['rate']:.2f}x"
                                                 for r in results.values()])
    print("Where the CPU went (CPU seconds and % of one core over the window):")
    for name, r in results.items():
        for n in (1, 2):
            if "orders" in r:
                print(f"  {name}, orders, {n} web: {procstat.describe(r['orders'][n]['cpu'])}")
        for n in (1, 2):
            if "deliveries" in r:
                print(f"  {name}, deliveries, {n} dispatcher(s): {procstat.describe(r['deliveries'][n]['cpu'])}")
        for n in (1, 2):
            if "imports" in r:
                each = ", ".join(f"{s:.1f}" for s in r["imports"][n]["each"])
                print(f"  {name}, imports, {n} worker(s) (jobs done at {each} s; submitting took "
                      f"{r['imports'][n]['submitted']:.1f} s): {procstat.describe(r['imports'][n]['cpu'])}")


if __name__ == "__main__":
    main()
