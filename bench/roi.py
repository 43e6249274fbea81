"""ax_get_roi_metrics over a year of 1,000,000 audit rows, on the embedded default (SQLite) or on
PostgreSQL + Redis (bench.profile), or on both side by side (each in a process of its own, so that
Django starts with that profile's DATABASE_URL and REDIS_URL).

Fills a throw-away database (bench.profile: a temporary AX_VAR_DIR, on PostgreSQL a database of
its own) with a year of audit rows from 50 users in
6 departments, rebuilds the ROI rollup, changes a baseline and two rates from days within the
year (so that the figures are priced with the values in force on each day, and months with a
rate change are read per day), times the tool for a whole year grouped by tool, department and
day (and the other groupings), and checks the figures against a direct aggregation of the
audit table. Also measures the cost per audit row of inserting (with and without the ROI
triggers) and of counting it into the rollup (the fold).

Usage: .venv/bin/python -m bench.roi [--rows 1000000] [--runs 5] [--no-changes] [--profile sqlite|postgres|both]
(--no-changes: every baseline and rate stays in force the whole year, for comparison)
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench import profile as bench_profile
from bench.compare import run_as_child, run_children, side_by_side

ROOT = Path(__file__).resolve().parent.parent
YEAR = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
# (tool, weight, typical duration in ms); import.* rows come in bursts from the importer.
TOOLS = [
    ("ax_get_customer", 20, 40), ("ax_check_inventory", 20, 35), ("ax_get_salesorder", 10, 45),
    ("ax_create_salesorder", 15, 180), ("ax_update_salesorder", 3, 150), ("ax_cancel_salesorder", 1, 120),
    ("ax_create_invoice", 5, 220), ("ax_post_payment", 6, 130), ("ax_create_customer", 2, 90),
    ("ax_update_customer", 2, 80), ("ax_create_item", 1, 70), ("ax_adjust_inventory", 3, 60),
    ("ax_get_batch_status", 2, 20), ("ax_batch_operations", 1, 4000), ("ax_get_import_status", 1, 15),
    ("import.customers", 4, 0), ("import.items", 3, 0), ("import.salesorders", 1, 0),
]
COLUMNS = ("tool", "user_id", "username", "department", "via", "arguments_digest", "success", "error_code",
           "error_message", "duration_ms", "idempotency_key", "replayed", "batch_id", "created")


def setup_django() -> None:
    """Django on the environment bench.profile.applied() set (this process is the profile's own)."""
    os.environ.update({"RATE_LIMIT_PER_MINUTE": "0", "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "core.settings"})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_people(rng: random.Random):
    from core.accounts.models import Department
    from core.accounts.roles import MCP_ADMIN, MCP_WRITE
    from core.accounts.services import create_user

    rates = {"SALES": "55.00", "FIN": "70.50", "OPS": None, "WH": "38.00", "IT": "90.00", "SVC": "45.25"}
    departments = [Department.objects.create(code=code, name=code.title(), hourly_rate=rate and Decimal(rate))
                   for code, rate in rates.items()]
    users = []
    for n in range(50):
        department = departments[n % len(departments)] if n % 10 else None
        rate = Decimal(rng.choice(["62.00", "80.25", "48.10"])) if n % 7 == 0 else None
        user = create_user(f"user{n:02d}", MCP_WRITE, department=department, hourly_rate=rate)
        users.append((user.pk, user.username, department.code if department else ""))
    admin = create_user("bench-admin", MCP_ADMIN)
    return users, admin


def audit_rows(rng: random.Random, users, count: int, start: datetime, end: datetime):
    tools = [t for t, _w, _d in TOOLS]
    weights = [w for _t, w, _d in TOOLS]
    typical = {t: d for t, _w, d in TOOLS}
    step = (end - start) / count
    for n in range(count):
        tool = rng.choices(tools, weights)[0]
        user_id, username, department = rng.choice(users)
        ok = rng.random() > 0.04
        created = start + step * n + timedelta(microseconds=rng.randrange(int(step.total_seconds() * 1e6)))
        duration = 0 if tool.startswith("import.") else int(rng.lognormvariate(0, 0.6) * typical[tool])
        yield (tool, user_id, username, department, "http", f"{rng.getrandbits(256):064x}", ok,
               "" if ok else "VALIDATION_ERROR", "" if ok else "bad input", duration, "", rng.random() < 0.01,
               "", created.strftime("%Y-%m-%d %H:%M:%S.%f"))


def insert(rows) -> None:
    """The rows in one transaction: executemany on SQLite, COPY on PostgreSQL (as a restore would)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY tools_auditentry ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        sql = f"INSERT INTO tools_auditentry ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
        cursor.executemany(sql, rows)


def drop_triggers() -> None:
    from django.db import connection

    from core.dialect import dialect
    from core.roi import rollup

    with connection.cursor() as cursor:
        dialect().drop_triggers(cursor, rollup.AUDIT, rollup._installed_triggers(cursor), rollup.PREFIX)


def _indexes(cursor) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the audit table's indexes, but its primary key."""
    from django.db import connection

    if connection.vendor == "postgresql":
        cursor.execute("SELECT i.indexname, i.indexdef FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname "
                       "JOIN pg_index x ON x.indexrelid = c.oid WHERE i.tablename = 'tools_auditentry' "
                       "AND i.schemaname = current_schema() AND NOT x.indisprimary")
    else:
        cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tools_auditentry' "
                       "AND sql IS NOT NULL")
    return cursor.fetchall()


def write_costs(rng: random.Random, users, count: int = 20_000, rounds: int = 3) -> dict[str, float]:
    """µs per audit row (best of `rounds`): inserting without and with the ROI triggers, and
    counting rows into the rollup (SQLite's fold, run before each metrics call and every minute)."""
    from django.db import connection

    from core.roi import rollup

    rows = list(audit_rows(rng, users, count, datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC)))
    costs: dict[str, float] = {}

    def best(label: str, started: float) -> None:
        costs[label] = min(costs.get(label, 1e9), (time.perf_counter() - started) / count * 1e6)

    for _ in range(rounds):
        for with_triggers in (False, True):
            if with_triggers:
                rollup.ensure_installed()
            else:
                drop_triggers()
            started = time.perf_counter()
            insert(rows)
            best(f"insert {'with' if with_triggers else 'without'} triggers", started)
            if with_triggers:
                started = time.perf_counter()
                rollup.fold()
                best("fold", started)
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM tools_auditentry")
    rollup.rebuild()
    return costs


def fill(rng: random.Random, users, count: int) -> dict[str, float]:
    """Load like a restore: without triggers and indexes, then index, install and rebuild."""
    from django.db import connection

    from core.roi import rollup

    drop_triggers()
    with connection.cursor() as cursor:
        indexes = _indexes(cursor)
        for name, _sql in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    started = time.perf_counter()
    insert(audit_rows(rng, users, count, *YEAR))
    loaded = time.perf_counter()
    with connection.cursor() as cursor:
        for _name, sql in indexes:
            cursor.execute(sql)
        cursor.execute("ANALYZE")
    indexed = time.perf_counter()
    rollup.ensure_installed()
    rebuilt = time.perf_counter()
    return {"load": loaded - started, "index": indexed - loaded, "rebuild": rebuilt - indexed}


def change_history(users) -> dict[str, float]:
    """A baseline and two rates change from days within the year, as an admin would: seconds of
    the rollup recomputation the baseline change costs."""
    from core.accounts.models import Department
    from core.roi import history

    started = time.perf_counter()
    history.set_baseline("ax_create_salesorder", 240, effective_from=date(2025, 7, 1))
    baseline = time.perf_counter() - started
    history.set_rate(department_id=Department.objects.get(code="FIN").pk, rate=Decimal("75.00"),
                     effective_from=date(2025, 4, 15))
    history.set_rate(user_id=users[1][0], rate=Decimal("99.00"), effective_from=date(2025, 10, 20))
    return {"baseline change": baseline}


def direct_totals(date_from: str, date_to: str) -> dict[str, tuple[int, int, int]]:
    """(operations, saved ms, cost units) per tool, aggregated straight from the audit table with
    the baseline in force on each row's day, and priced per day with the rates then in force."""
    from django.db import connection

    from core.dialect import dialect
    from core.roi.history import rate_history
    from core.roi.rollup import ENVELOPE_TOOLS

    rates = rate_history()
    d = dialect()
    day = d.utc_day("a.created")
    in_force = ("COALESCE((SELECT b.seconds FROM roi_baseline b WHERE b.tool = a.tool AND b.effective_from <= "
                f"{day} ORDER BY b.effective_from DESC LIMIT 1), 0)")
    sql = (
        f"SELECT a.tool, COALESCE(a.user_id, 0), a.department, {day}, COUNT(*), "
        f"SUM(CASE WHEN a.success THEN {d.greatest}(0, {in_force} * 1000 - a.duration_ms) ELSE 0 END) "
        "FROM tools_auditentry a "
        "WHERE a.created >= %s AND a.created < %s AND NOT a.replayed AND a.via <> 'migration' "
        f"AND a.tool NOT IN ({', '.join(['%s'] * len(ENVELOPE_TOOLS))}) GROUP BY 1, 2, 3, 4"
    )
    end = date.fromisoformat(date_to) + timedelta(days=1)
    totals: dict[str, list[int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [datetime.fromisoformat(date_from).replace(tzinfo=UTC),
                             datetime(end.year, end.month, end.day, tzinfo=UTC), *ENVELOPE_TOOLS])
        for tool, user_pk, department, day, operations, saved in cursor.fetchall():
            entry = totals.setdefault(tool, [0, 0, 0])
            entry[0] += operations
            entry[1] += int(saved)
            entry[2] += int(saved) * rates.cents(user_pk, department, day if isinstance(day, date)
                                                 else date.fromisoformat(day))
    return {tool: tuple(v) for tool, v in totals.items()}


def measure(args: argparse.Namespace, profile_label: str) -> dict[str, float]:
    setup_django()
    from django.db import connection

    from core.audit.models import AuditEntry
    from core.roi.figures import UNITS_PER_CENT, round_half_up
    from core.roi.models import Usage
    from core.tools.pipeline import call_tool

    print(f"ROI on {profile_label}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    rng = random.Random(7)
    users, admin = make_people(rng)
    costs = write_costs(rng, users)
    phases = fill(rng, users, args.rows)
    phases.update({"baseline change": 0.0} if args.no_changes else change_history(users))
    print(f"{AuditEntry.objects.count():,} audit rows in 2025, 50 users, 6 departments, {len(TOOLS)} tools; "
          f"rollup: {Usage.objects.count():,} rows")
    print(f"load {phases['load']:.1f} s, index {phases['index']:.1f} s, rollup rebuild {phases['rebuild']:.1f} s, "
          f"a baseline change from 1 July recomputed in {phases['baseline change']:.1f} s")
    print("per audit row: " + ", ".join(f"{label} {us:.1f} µs" for label, us in costs.items()), flush=True)
    figures = {"rollup rebuild (ms)": phases["rebuild"] * 1000,
               "baseline change recomputed (ms)": phases["baseline change"] * 1000,
               **{f"per audit row: {label} (µs)": us for label, us in costs.items()}}

    year = {"date_from": "2025-01-01", "date_to": "2025-12-31"}
    cases = [("tool", year), ("department", year), ("day", year), ("user", year), ("week", year),
             ("month", year), ("day", {"date_from": "2025-03-10", "date_to": "2025-04-20"})]
    print(f"ax_get_roi_metrics (call_tool, whole pipeline), first call and median of {args.runs}:")
    for group_by, span in cases:
        arguments = {**span, "group_by": group_by}
        times = []
        for _ in range(args.runs + 1):
            started = time.perf_counter()
            result = call_tool("ax_get_roi_metrics", arguments, admin)
            times.append((time.perf_counter() - started) * 1000)
        label = f"{group_by:<10} {span['date_from']}..{span['date_to']}"
        print(f"  {label:34} first {times[0]:6.0f} ms   median {statistics.median(times[1:]):6.0f} ms   "
              f"({result['total_operations']:,} operations, {result['total_cost_saved_eur']} EUR)", flush=True)
        figures[f"by {label}, median"] = statistics.median(times[1:])

    # A day of new rows (1/365 of the year) not yet folded: the next call counts them first.
    day = args.rows // 365
    insert(audit_rows(rng, users, day, datetime(2025, 12, 31, 12, tzinfo=UTC), YEAR[1]))
    started = time.perf_counter()
    call_tool("ax_get_roi_metrics", {**year, "group_by": "day"}, admin)
    elapsed = (time.perf_counter() - started) * 1000
    print(f"  day, right after {day:,} new audit rows (the call folds them first): {elapsed:.0f} ms")
    figures[f"by day right after {day:,} new rows"] = elapsed

    result = call_tool("ax_get_roi_metrics", {**year, "group_by": "tool"}, admin)
    direct = direct_totals(year["date_from"], year["date_to"])
    mismatches = [e["tool"] for e in result["by_tool"] if (e["operations"], e["cost_saved_eur"]) != (
        direct[e["tool"]][0], Decimal(round_half_up(direct[e["tool"]][2], UNITS_PER_CENT)).scaleb(-2))]
    total_ops = sum(v[0] for v in direct.values())
    assert len(result["by_tool"]) == len(direct) and not mismatches, mismatches
    assert result["total_operations"] == total_ops
    print(f"checked: by_tool equals a direct aggregation of the audit table ({total_ops:,} operations)", flush=True)
    connection.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-changes", action="store_true", help="change no baseline or rate within the year")
    bench_profile.add_arguments(parser)
    if run_as_child(parser, lambda args, profile: measure(args, profile.label)):
        return
    args = parser.parse_args()
    figures = run_children("bench.roi", bench_profile.profiles(args),
                           ["--rows", str(args.rows), "--runs", str(args.runs)]
                           + (["--no-changes"] if args.no_changes else []))
    side_by_side("ROI", figures, unit="")


if __name__ == "__main__":
    main()
