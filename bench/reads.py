"""The read tools over 1,000,000 sales orders on the embedded default (SQLite): each list call
must stay under 50 ms.

Fills a throw-away database (temporary AX_VAR_DIR) with 2,000 customers, 200 items, 1,000,000
sales orders over a year (one line each), an invoice for every third order and a payment for
every second invoice, all with INSERT ... SELECT over a recursive counter. Then calls each read
tool through the pipeline (call_tool: role check, rate limit, audit row, as an agent's call) with
the filters an agent uses, first page and the page its cursor names, and prints p50/p95/max.

Usage: .venv/bin/python -m bench.reads [--orders 1000000] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 50.0
CUSTOMERS, ITEMS = 2_000, 200


def _setup(var: str) -> None:
    os.environ.update(AX_VAR_DIR=var, DJANGO_SETTINGS_MODULE="core.settings", LOG_LEVEL="WARNING",
                      RATE_LIMIT_PER_MINUTE="0")
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    call_command("seed_demo", "--no-history", stdout=open(os.devnull, "w"))  # noqa: SIM115 - closed at exit


def _fill(orders: int) -> None:
    """Customers, items, orders, lines, invoices and payments, set-based (SQLite)."""
    from django.db import connection, transaction

    from core.erp.models import search_text

    names = ["Müller", "Schäfer", "Contoso", "Fabrikam", "Northwind", "Société Générale", "Łódź Metal", "Nordström"]
    with transaction.atomic(), connection.cursor() as c:
        c.executemany(
            "INSERT INTO erp_customer (customer_account, name, search_name, currency, credit_limit, balance, segment,"
            " email, blocked, created, updated) VALUES (%s, %s, %s, %s, 0, 0, %s, '', 0, datetime('now'),"
            " datetime('now'))",
            [(f"B{n:05d}", f"{names[n % len(names)]} {n} GmbH", search_text(f"{names[n % len(names)]} {n} GmbH"),
              "EUR" if n % 3 else "USD", "retail" if n % 2 else "wholesale") for n in range(CUSTOMERS)])
        c.executemany(
            "INSERT INTO erp_item (item_id, name, search_name, unit_price, on_hand, reserved, reorder_point, created,"
            " updated) VALUES (%s, %s, %s, 10, %s, 0, 20, datetime('now'), datetime('now'))",
            [(f"BI{n:04d}", f"Item {n}", search_text(f"Item {n}"), n % 50) for n in range(ITEMS)])
        c.execute("SELECT MIN(id) FROM erp_customer WHERE customer_account LIKE 'B%%'", [])
        first_customer = c.fetchone()[0]
        c.execute("SELECT MIN(id) FROM erp_item WHERE item_id LIKE 'BI%%'", [])
        first_item = c.fetchone()[0]
        statuses = "CASE n %% 10 WHEN 0 THEN 'cancelled' WHEN 1 THEN 'confirmed' WHEN 2 THEN 'open' ELSE 'invoiced' END"
        c.execute(
            "INSERT INTO erp_salesorder (sales_id, customer_id, currency, status, total_amount, customer_ref,"
            " cancel_reason, created, updated) "
            "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < %s) "
            f"SELECT printf('SO-B-%%07d', n), {first_customer} + n %% {CUSTOMERS}, 'EUR', {statuses}, "
            "(n %% 997) + 0.5, printf('PO-%%d', n), '', "
            "datetime('2025-01-01', '+' || (n * 31536 / %s) || ' seconds'), datetime('now') FROM k",
            [orders, orders // 1000 or 1])
        c.execute(
            "INSERT INTO erp_salesorderline (order_id, line_number, item_id, quantity, unit_price, line_amount) "
            f"SELECT id, 1, {first_item} + id %% {ITEMS}, 1, total_amount, total_amount FROM erp_salesorder "
            "WHERE sales_id LIKE 'SO-B-%%'", [])
        c.execute(
            "INSERT INTO erp_invoice (invoice_id, sales_order_id, customer_id, currency, amount, paid_amount, status,"
            " due_date, created) "
            "SELECT 'INV-B-' || id, id, customer_id, currency, total_amount, "
            "CASE WHEN id %% 2 = 0 THEN total_amount ELSE 0 END, CASE WHEN id %% 2 = 0 THEN 'paid' ELSE 'open' END, "
            "date(created, '+30 days'), created FROM erp_salesorder WHERE sales_id LIKE 'SO-B-%%' AND id %% 3 = 0", [])
        c.execute(
            "INSERT INTO erp_payment (payment_id, customer_id, invoice_id, amount, currency, reference, created) "
            "SELECT 'PAY-B-' || id, customer_id, id, amount, currency, '', datetime(created, '+10 days') "
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="axhub-bench-reads-") as var:
        _setup(var)
        started = time.perf_counter()
        _fill(args.orders)
        print(f"Read tools on the embedded default (SQLite), {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.2f}: {args.orders:,} orders (one line each), {args.orders // 3:,} invoices, "
              f"{args.orders // 6:,} payments, {CUSTOMERS:,} customers, {ITEMS} items, filled in "
              f"{time.perf_counter() - started:.1f} s; {args.runs} calls each through call_tool", flush=True)
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
            ("ax_list_salesorders", {"min_amount": 990}),  # no index on amounts: the created index, filtered
            ("ax_find_customers", {"query": "muller"}),
            ("ax_find_customers", {"query": "B0004"}),
            ("ax_list_items", {"below_reorder_point": True}),
            ("ax_list_invoices", {"customer_account": "B00042", "status": "open"}),
            ("ax_list_invoices", {"status": "open", "overdue": True}),
            ("ax_get_customer_balance", {"customer_account": "B00042"}),
            ("ax_list_payments", {"customer_account": "B00042"}),
            ("ax_list_payments", {"date_from": "2025-03-01", "date_to": "2025-03-31"}),
        ]
        worst = 0.0
        for tool, arguments in cases:
            times, result = _timed(user, tool, arguments, args.runs)
            rows = len(result.get("items", [])) if isinstance(result, dict) else 0
            line = f"  {tool:24} {str(arguments)[:58]:58} p50 {statistics.median(times):6.1f} ms  " \
                   f"p95 {sorted(times)[int(len(times) * 0.95) - 1]:6.1f} ms  max {max(times):6.1f} ms  ({rows} rows)"
            print(line, flush=True)
            worst = max(worst, statistics.median(times))
            cursor = result.get("next_cursor") if isinstance(result, dict) else None
            if cursor:
                times, _ = _timed(user, tool, {**arguments, "cursor": cursor}, args.runs)
                print(f"  {'':24} {'… next page (cursor)':58} p50 {statistics.median(times):6.1f} ms  "
                      f"p95 {sorted(times)[int(len(times) * 0.95) - 1]:6.1f} ms  max {max(times):6.1f} ms", flush=True)
                worst = max(worst, statistics.median(times))
        verdict = "met" if worst < TARGET_MS else "NOT MET"
        print(f"SUMMARY  slowest p50 {worst:.1f} ms over {args.orders:,} orders; "
              f"target every call < {TARGET_MS:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
