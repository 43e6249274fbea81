"""The read tools over 1,000,000 sales orders on the embedded default (SQLite) or on PostgreSQL +
Redis (bench.profile), or on both side by side: each list call must stay under 50 ms.

Fills a throw-away database (bench.profile: a temporary AX_VAR_DIR, on PostgreSQL a database of
its own) with 2,000 customers, 200 items, 1,000,000 sales orders over a year (one line each), an
invoice for every third order and a payment for every second invoice, all with INSERT ... SELECT
over a recursive counter. Then calls each read tool through the pipeline (call_tool: role check,
rate limit, audit row, as an agent's call) with the filters an agent uses, first page and the
page its cursor names, and prints p50/p95/max. Each profile runs in a subprocess of its own, so
that Django starts with that profile's DATABASE_URL and REDIS_URL.

Usage: .venv/bin/python -m bench.reads [--orders 1000000] [--runs 20] [--profile sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from bench import profile as bench_profile
from bench.compare import run_as_child, run_children, side_by_side

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 50.0
CUSTOMERS, ITEMS = 2_000, 200
# The few SQL fragments of the filling that the two databases spell differently.
FRAGMENTS = {
    "sqlite": {"sales_id": "printf('SO-B-%%07d', n)",
               "created": "datetime('2025-01-01', '+' || (n * 31536 / %s) || ' seconds')",
               "due": "date(created, '+30 days')", "paid": "datetime(created, '+10 days')"},
    "postgresql": {"sales_id": "'SO-B-' || lpad(n::text, 7, '0')",
                   "created": "timestamptz '2025-01-01 00:00:00+00' + (n::bigint * 31536 / %s) * interval '1 second'",
                   "due": "(created + interval '30 days')::date", "paid": "created + interval '10 days'"},
}


def _setup() -> None:
    """Django on the environment bench.profile.applied() set (this process is the profile's own)."""
    os.environ.update(DJANGO_SETTINGS_MODULE="core.settings", LOG_LEVEL="WARNING", RATE_LIMIT_PER_MINUTE="0")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    call_command("seed_demo", "--no-history", stdout=open(os.devnull, "w"))  # noqa: SIM115 - closed at exit


def _fill(orders: int) -> None:
    """Customers, items, orders, lines, invoices and payments, set-based."""
    from django.db import connection, transaction
    from django.utils import timezone

    from core.erp.models import search_text

    sql = FRAGMENTS[connection.vendor]
    now = timezone.now()

    names = ["Müller", "Schäfer", "Contoso", "Fabrikam", "Northwind", "Société Générale", "Łódź Metal", "Nordström"]
    with transaction.atomic(), connection.cursor() as c:
        c.executemany(
            "INSERT INTO erp_customer (customer_account, name, search_name, currency, credit_limit, balance, segment,"
            " email, blocked, created, updated) VALUES (%s, %s, %s, %s, 0, 0, %s, '', %s, %s, %s)",
            [(f"B{n:05d}", f"{names[n % len(names)]} {n} GmbH", search_text(f"{names[n % len(names)]} {n} GmbH"),
              "EUR" if n % 3 else "USD", "retail" if n % 2 else "wholesale", False, now, now)
             for n in range(CUSTOMERS)])
        c.executemany(
            "INSERT INTO erp_item (item_id, name, search_name, unit_price, on_hand, reserved, reorder_point, created,"
            " updated) VALUES (%s, %s, %s, 10, %s, 0, 20, %s, %s)",
            [(f"BI{n:04d}", f"Item {n}", search_text(f"Item {n}"), n % 50, now, now) for n in range(ITEMS)])
        c.execute("SELECT MIN(id) FROM erp_customer WHERE customer_account LIKE 'B%%'", [])
        first_customer = c.fetchone()[0]
        c.execute("SELECT MIN(id) FROM erp_item WHERE item_id LIKE 'BI%%'", [])
        first_item = c.fetchone()[0]
        statuses = "CASE n %% 10 WHEN 0 THEN 'cancelled' WHEN 1 THEN 'confirmed' WHEN 2 THEN 'open' ELSE 'invoiced' END"
        c.execute(
            "INSERT INTO erp_salesorder (sales_id, customer_id, currency, status, total_amount, customer_ref,"
            " cancel_reason, created, updated) "
            "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < %s) "
            f"SELECT {sql['sales_id']}, {first_customer} + n %% {CUSTOMERS}, 'EUR', {statuses}, "
            f"(n %% 997) + 0.5, 'PO-' || n, '', {sql['created']}, %s FROM k",
            [orders, orders // 1000 or 1, now])
        c.execute(
            "INSERT INTO erp_salesorderline (order_id, line_number, item_id, quantity, unit_price, line_amount) "
            f"SELECT id, 1, {first_item} + id %% {ITEMS}, 1, total_amount, total_amount FROM erp_salesorder "
            "WHERE sales_id LIKE 'SO-B-%%'", [])
        c.execute(
            "INSERT INTO erp_invoice (invoice_id, sales_order_id, customer_id, currency, amount, paid_amount, status,"
            " due_date, created) "
            "SELECT 'INV-B-' || id, id, customer_id, currency, total_amount, "
            "CASE WHEN id %% 2 = 0 THEN total_amount ELSE 0 END, CASE WHEN id %% 2 = 0 THEN 'paid' ELSE 'open' END, "
            f"{sql['due']}, created FROM erp_salesorder WHERE sales_id LIKE 'SO-B-%%' AND id %% 3 = 0", [])
        c.execute(
            "INSERT INTO erp_payment (payment_id, customer_id, invoice_id, amount, currency, reference, created) "
            f"SELECT 'PAY-B-' || id, customer_id, id, amount, currency, '', {sql['paid']} "
            "FROM erp_invoice WHERE invoice_id LIKE 'INV-B-%%' AND status = 'paid'", [])
        c.execute("ANALYZE", [])


def _timed(user, tool: str, arguments: dict, runs: int) -> tuple[list[float], dict]:
    from core.tools.pipeline import call_tool

    result = call_tool(tool, arguments, user)  # warm
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = call_tool(tool, arguments, user)
        times.append((time.perf_counter() - started) * 1000)
    return times, result


def measure(orders: int, runs: int, label: str) -> dict[str, float]:
    _setup()
    started = time.perf_counter()
    _fill(orders)
    print(f"Read tools on {label}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}: {orders:,} orders (one line each), {orders // 3:,} invoices, "
          f"{orders // 6:,} payments, {CUSTOMERS:,} customers, {ITEMS} items, filled in "
          f"{time.perf_counter() - started:.1f} s; {runs} calls each through call_tool", flush=True)
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="admin")
    cases = [
        ("ax_list_salesorders", {}),
        ("ax_list_salesorders", {"customer_account": "B00042"}),
        ("ax_list_salesorders", {"customer_account": "B00042", "status": ["open", "confirmed"]}),
        ("ax_list_salesorders", {"status": "open"}),
        ("ax_list_salesorders", {"status": ["open", "confirmed"]}),
        ("ax_list_salesorders", {"date_from": "2025-06-01", "date_to": "2025-06-30"}),
        ("ax_list_salesorders", {"customer_ref": "PO-4711"}),
        ("ax_list_salesorders", {"customer_account": "B00042", "min_amount": 900}),
        ("ax_list_salesorders", {"min_amount": 990}),  # 7,000 above it: the created index, filtered
        ("ax_list_salesorders", {"min_amount": 996}),  # 1,000 above it: the amount index, then sorted
        ("ax_list_salesorders", {"min_amount": 5000}),  # none above it
        ("ax_find_customers", {"query": "muller"}),
        ("ax_find_customers", {"query": "B0004"}),
        ("ax_list_items", {"below_reorder_point": True}),
        ("ax_list_invoices", {"customer_account": "B00042", "status": "open"}),
        ("ax_list_invoices", {"status": "open", "overdue": True}),
        ("ax_get_customer_balance", {"customer_account": "B00042"}),
        ("ax_list_payments", {"customer_account": "B00042"}),
        ("ax_list_payments", {"date_from": "2025-03-01", "date_to": "2025-03-31"}),
    ]
    figures: dict[str, float] = {}
    for tool, arguments in cases:
        times, result = _timed(user, tool, arguments, runs)
        rows = len(result.get("items", [])) if isinstance(result, dict) else 0
        line = f"  {tool:24} {str(arguments)[:58]:58} p50 {statistics.median(times):6.1f} ms  " \
               f"p95 {sorted(times)[int(len(times) * 0.95) - 1]:6.1f} ms  max {max(times):6.1f} ms  ({rows} rows)"
        print(line, flush=True)
        figures[f"{tool} {str(arguments)[:58]}"] = statistics.median(times)
        cursor = result.get("next_cursor") if isinstance(result, dict) else None
        if cursor:
            times, _ = _timed(user, tool, {**arguments, "cursor": cursor}, runs)
            print(f"  {'':24} {'… next page (cursor)':58} p50 {statistics.median(times):6.1f} ms  "
                  f"p95 {sorted(times)[int(len(times) * 0.95) - 1]:6.1f} ms  max {max(times):6.1f} ms", flush=True)
            figures[f"{tool} {str(arguments)[:58]} next page"] = statistics.median(times)
    worst = max(figures.values())
    verdict = "met" if worst < TARGET_MS else "NOT MET"
    print(f"SUMMARY  slowest p50 {worst:.1f} ms over {orders:,} orders; "
          f"target every call < {TARGET_MS:.0f} ms: {verdict}", flush=True)
    from django.db import connection

    connection.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    bench_profile.add_arguments(parser)
    if run_as_child(parser, lambda args, profile: measure(args.orders, args.runs, profile.label)):
        return
    args = parser.parse_args()
    figures = run_children("bench.reads", bench_profile.profiles(args),
                           ["--orders", str(args.orders), "--runs", str(args.runs)])
    side_by_side("Read tools, p50 through call_tool", figures)


if __name__ == "__main__":
    main()
