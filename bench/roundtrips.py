"""Where one call's time goes on each profile: the database round trips and Redis commands of
one HTTP tool call (through Django's request handling in process, so no network client or
server is timed), the statements behind them, and the cost of one round trip and of one commit.

SQLite answers a statement inside the process; PostgreSQL needs a round trip to another process
for each, and a commit waits for the WAL to reach the disk (synchronous_commit = on). These counts
are exact where wall-clock figures on a shared machine are not.

Usage: .venv/bin/python -m bench.roundtrips [--calls 100] [--profile sqlite|postgres|both] [--statements]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from io import StringIO
from pathlib import Path

from bench import profile as bench_profile
from bench.compare import run_as_child, run_children, side_by_side

ROOT = Path(__file__).resolve().parent.parent
ORDER = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-004", "quantity": 1}]}
CALLS = [("ax_create_salesorder", ORDER), ("ax_get_customer", {"customer_account": "CUST-001"}),
         ("ax_check_inventory", {"item_id": "ITEM-004"}),
         ("ax_adjust_inventory", {"item_id": "ITEM-004", "quantity_change": 1, "reason": "count"})]


class _Tally:
    """Statements (SQLite: its trace callback; PostgreSQL: each wait of psycopg for the server,
    which is one round trip) and Redis commands, of this thread only."""

    def __init__(self) -> None:
        self.on = False
        self.thread = threading.get_ident()
        self.statements: list[str] = []
        self.redis: list[str] = []

    def note(self, kind: str, text: str) -> None:
        if self.on and threading.get_ident() == self.thread:
            (self.redis if kind == "redis" else self.statements).append(text)


def _instrument(tally: _Tally) -> None:
    import psycopg
    import redis
    from django.db import connection
    from django.db.backends.signals import connection_created

    if connection.vendor == "postgresql":
        wait, execute = psycopg.Connection.wait, psycopg.Cursor.execute
        current: list[str] = [""]

        def counted_wait(self, gen, *args, **kwargs):
            tally.note("db", current[0] or "BEGIN / COMMIT / ROLLBACK")
            current[0] = ""
            return wait(self, gen, *args, **kwargs)

        def named_execute(self, query, *args, **kwargs):
            text = query.decode() if isinstance(query, bytes) else str(query)
            current[0] = " ".join(text.split())[:110]
            return execute(self, query, *args, **kwargs)

        psycopg.Connection.wait = counted_wait
        psycopg.Cursor.execute = named_execute
    else:
        def trace(sender, connection, **kwargs) -> None:
            connection.connection.set_trace_callback(lambda sql: tally.note("db", " ".join(sql.split())[:110]))

        connection_created.connect(trace, weak=False)
        if connection.connection is not None:
            trace(None, connection)
    command = redis.Redis.execute_command

    def counted_command(self, *args, **kwargs):
        tally.note("redis", str(args[0]))
        return command(self, *args, **kwargs)

    redis.Redis.execute_command = counted_command


def _probe_costs() -> dict[str, float]:
    """µs of one trivial statement, and of an insert + commit, on this profile's connection."""
    from django.db import connection, transaction

    def median_us(run, times: int = 200) -> float:
        samples = []
        for _ in range(times):
            started = time.perf_counter()
            run()
            samples.append((time.perf_counter() - started) * 1e6)
        return statistics.median(samples)

    def select_one() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    def insert_commit() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_probe (v) VALUES ('x')")

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_probe (v varchar(10))")
    return {"one trivial statement (SELECT 1), µs": median_us(select_one),
            "one insert + commit, µs": median_us(insert_commit)}


def measure(calls: int, show_statements: bool, label: str) -> dict[str, float]:
    os.environ.update(DJANGO_SETTINGS_MODULE="core.settings", LOG_LEVEL="WARNING", RATE_LIMIT_PER_MINUTE="0")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import close_old_connections, connection
    from django.test import Client

    call_command("migrate", "--noinput", verbosity=0)
    call_command("seed_demo", "--no-history", stdout=StringIO())
    out = StringIO()
    call_command("create_api_token", "admin", "--role", "MCP_Admin", stdout=out)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {out.getvalue().split()[-1]}", HTTP_HOST="127.0.0.1")

    def call(tool: str, body: dict) -> None:
        # The test client leaves out the request_started handler that closes stale connections
        # (and, with CONN_HEALTH_CHECKS, sends the health check on the next statement): run it.
        close_old_connections()
        response = client.post(f"/api/tools/{tool}", body, content_type="application/json")
        assert response.status_code == 200, response.content

    call("ax_adjust_inventory", {"item_id": "ITEM-004", "quantity_change": 1_000_000, "reason": "bench stock"})
    tally = _Tally()
    _instrument(tally)
    print(f"One HTTP tool call in process on {label} ({os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}); median of {calls} calls:", flush=True)
    figures: dict[str, float] = {}
    for tool, body in CALLS:
        for _ in range(10):
            call(tool, body)
        tally.statements, tally.redis, tally.on = [], [], True
        call(tool, body)
        tally.on = False
        statements, commands = tally.statements, tally.redis
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            call(tool, body)
            times.append((time.perf_counter() - started) * 1000)
        print(f"  {tool:22} {len(statements):3} database round trips, {len(commands)} Redis commands "
              f"({' '.join(commands) or '-'}), median {statistics.median(times):.2f} ms", flush=True)
        if show_statements:
            for sql in statements:
                print(f"      {sql}")
        figures[f"{tool}: database statements"] = len(statements)
        figures[f"{tool}: median in process, ms"] = statistics.median(times)
    costs = _probe_costs()
    print("  " + ", ".join(f"{name} {value:.0f}" for name, value in costs.items()), flush=True)
    connection.close()
    return {**figures, **costs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--statements", action="store_true", help="list each call's statements")
    bench_profile.add_arguments(parser)
    if run_as_child(parser, lambda args, profile: measure(args.calls, args.statements, profile.label)):
        return
    args = parser.parse_args()
    figures = run_children("bench.roundtrips", bench_profile.profiles(args),
                           ["--calls", str(args.calls)] + (["--statements"] if args.statements else []))
    counts = frozenset(label for label in next(iter(figures.values())) if label.endswith("statements"))
    side_by_side("One call in process", figures, unit="", plain=counts)


if __name__ == "__main__":
    main()
