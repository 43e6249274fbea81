"""Bulk import throughput and peak memory, against django-import-export on the same CSV, on
the embedded default (SQLite) or PostgreSQL + Redis or both (bench.profile).

Usage: .venv/bin/pip install -r requirements-bench.txt   (once: django-import-export is bench-only)
       .venv/bin/python -m bench.imports [--rows 100000] [--xlsx-rows 100000] [--batch-size 5000]
           [--die-default-rows 20000] [--million] [--german] [--phases] [--cprofile FILE] [--skip-die]
           [--skip-modes] [--profile sqlite|postgres|both] [--database URL] [--redis URL]

Every measurement runs in a fresh subprocess against a fresh database in its own temporary
AX_VAR_DIR, so its peak memory is that process's ru_maxrss and nothing is cached between
runs. For our engine a first subprocess migrates, seeds the demo users and submits the job
(the web side of an upload: it holds the file's bytes); a second one runs
core.imports.tasks.run_import(pk) in-process, exactly what the worker does, and is the one
timed and measured. The update modes are measured the same way on a database that already
holds the file's customers (imported, untimed, by the first subprocess): upsert of the same
file (every row unchanged) and update of a file in which every row changes two fields.
django-import-export imports the same CSV in its default mode and in its
fastest bulk mode, each on a fresh database. Besides wall-clock rows/s the bench prints rows
per CPU-second of the measured process, which other work on the machine disturbs less.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.profile import Profile, add_arguments, environment, profiles

ROOT = Path(__file__).resolve().parent.parent
TARGET_ROWS_PER_S = 35_000  # customers CSV, create mode, on the 2-core machine the README's figures come from
TARGET_BULK_RATIO = 3.0  # and at least this many times django-import-export's fastest (bulk) mode, in one run
TARGET_XLSX_RATIO = 0.8  # XLSX rows/s against the CSV rows/s of the same run
TARGET_MILLION_MB = 300
TARGET_MILLION_XLSX_MB = 500
TARGET_SERVER_ROWS_PER_S = 20_000  # the same CSV on PostgreSQL + Redis
HEADER = ["customer_account", "name", "currency", "credit_limit", "segment", "email"]

_NAMES = [
    ("Müller", "GmbH"), ("Société Générale de Négoce", "SA"), ("北京贸易", "有限公司"), ("Ångström", "AB"),
    ("Øresund Trading", "ApS"), ("Łódź Metal", "Sp. z o.o."), ("Ελληνικά Τρόφιμα", "Α.Ε."), ("Smith & Sons", "Ltd"),
    ("O'Brien, Kelly & Partners", "LLP"), ('Café "Zur Post"', "KG"), ("Škoda Díly", "s.r.o."),
    ("Nordström Järn", "AB"), ("Straße & Söhne", "OHG"), ("東京商事", "株式会社"), ("Peña Hermanos", "S.L."),
]
_SEGMENTS = ["wholesale", "retail", "export", "public sector", ""]
_CURRENCIES = ["EUR", "EUR", "EUR", "USD", "USD", "SEK"]


def customer_rows(count: int, seed: int = 4711):
    """Rows that look like a real customer master export (deterministic for a given seed)."""
    rng = random.Random(seed)
    for n in range(1, count + 1):
        base, form = rng.choice(_NAMES)
        city = rng.choice(["Berlin", "Lyon", "北京", "Göteborg", "Wien", "Zürich", "Kraków", "Dublin"])
        cents = rng.choice([0, rng.randrange(100, 10_000_000_00)])
        yield [
            f"CU{n:08d}",
            f"{base} {city} {form}",
            rng.choice(_CURRENCIES),
            None if rng.random() < 0.05 else cents / 100,
            rng.choice(_SEGMENTS),
            f"einkauf.{n}@kunde{n % 997}.example" if rng.random() < 0.9 else "",
        ]


def write_csv(path: Path, count: int, *, german: bool = False) -> None:
    """Stream `count` rows to disk; a German Excel export uses ';', '1.234,56' and a BOM."""
    encoding, delimiter = ("utf-8-sig", ";") if german else ("utf-8", ",")
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(HEADER)
        for row in customer_rows(count):
            limit = row[3]
            if limit is None:
                row[3] = ""
            elif german:
                row[3] = f"{limit:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
            else:
                row[3] = f"{limit:.2f}"
            writer.writerow(row)


def write_changed_csv(source: Path, target: Path) -> None:
    """The same customers with two fields changed in every row (a nightly file after a day of edits)."""
    with source.open(encoding="utf-8", newline="") as f, target.open("w", encoding="utf-8", newline="") as out:
        reader, writer = csv.reader(f), csv.writer(out)
        writer.writerow(next(reader))
        for row in reader:
            row[1] = row[1] + " (neu)"
            row[4] = "key account" if row[4] != "key account" else "retail"
            writer.writerow(row)


def write_xlsx(path: Path, count: int) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("customers")
    sheet.append(HEADER)
    for row in customer_rows(count, seed=815):
        sheet.append(row)
    workbook.save(path)


# --- the subprocesses -------------------------------------------------------------------------


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _switches() -> tuple[int, int]:
    """(voluntary, involuntary) context switches: waits for I/O or locks, and preemptions."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_nvcsw, usage.ru_nivcsw


def _measured(fn) -> dict:
    """Run fn, returning its result with wall seconds, CPU seconds and context switches."""
    switches, started, cpu = _switches(), time.perf_counter(), _cpu_seconds()
    value = fn()
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    waits, preempted = (after - before for after, before in zip(_switches(), switches, strict=True))
    return {"value": value, "seconds": seconds, "cpu": cpu, "waits": waits, "preempted": preempted}


def _instrument() -> dict[str, list[float]]:
    """Wrap the engine's phases with wall and CPU timers (a few calls per chunk, so the
    overhead is negligible); returns name -> [wall s, cpu s, calls], times inclusive."""
    from core.events import bus
    from core.imports import engine, readers, specs

    phases: dict[str, list[float]] = {}

    def timed(name, fn):
        if isinstance(name, str):
            phases[name] = [0.0, 0.0, 0]  # registration order is the printing order

        def wrapper(*args, **kwargs):
            label = name(*args) if callable(name) else name
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                entry = phases.setdefault(label, [0.0, 0.0, 0])
                entry[0] += time.perf_counter() - wall
                entry[1] += time.process_time() - cpu
                entry[2] += 1
        return wrapper

    engine.run = timed("run (total)", engine.run)
    engine.prepare = timed("  prepare: sniff encoding/delimiter", engine.prepare)
    readers.xlsx_rows = timed("  xlsx_rows: open the sheet (calamine loads it whole)", readers.xlsx_rows)
    readers._csv_rows = timed("  _csv_rows: open the CSV, read its header", readers._csv_rows)
    readers.Rows.count = timed("  rows.count: counting pass over the file", readers.Rows.count)
    engine._validate = timed("  _validate: cells -> clean records",
                             engine._validate)
    specs.CustomersSpec.check = timed("  spec.check: existing accounts query", specs.CustomersSpec.check)
    engine._commit_chunk = timed("  _commit_chunk: write + checkpoint + commit", engine._commit_chunk)
    specs.CustomersSpec.write = timed("    spec.write", specs.CustomersSpec.write)
    from django.db.backends.base.base import BaseDatabaseWrapper

    BaseDatabaseWrapper._commit = timed("    _commit: the database's COMMIT (every commit of the run)",
                                        BaseDatabaseWrapper._commit)
    specs.RowsSpec.insert_new = timed("      insert_new: customer rows", specs.RowsSpec.insert_new)
    specs.ImportSpec.audit = timed("      audit: audit rows", specs.ImportSpec.audit)
    specs.publish_rows = timed("      publish_rows: events", specs.publish_rows)
    bus.deliver = timed("    on_commit deliver: webhook fan-out (none without subscriptions)", bus.deliver)
    return phases


def _setup_django() -> None:
    import django

    django.setup()


def child_submit(spec: dict) -> dict:
    """Migrate, seed the demo users and submit the job: the web side of an upload."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from core.imports.services import submit

    call_command("migrate", "--noinput", verbosity=0)
    call_command("seed_demo", "--no-history", stdout=open(os.devnull, "w"))  # noqa: SIM115 - closed at exit
    if spec["engine"] == "die":
        return {}
    user = get_user_model().objects.get(username="admin")
    if spec.get("preload"):  # the customers a sync finds in the database, imported untimed
        from core.imports.tasks import run_import

        first = Path(spec["preload"])
        run_import(submit(user, type="customers", fmt="csv", content=first.read_bytes(), filename=first.name,
                          batch_size=spec["batch_size"]).pk)
    path = Path(spec["file"])
    job = submit(user, type="customers", fmt=spec["fmt"], content=path.read_bytes(), filename=path.name,
                 batch_size=spec["batch_size"], mode=spec.get("mode", "create"))
    return {"job": job.pk}


def child_ours(spec: dict) -> dict:
    """Run the job the way the worker does and time it end to end."""
    from core.audit.models import AuditEntry
    from core.erp.models import Customer
    from core.events.models import Event
    from core.imports.models import ImportJob
    from core.imports.readers import preload
    from core.imports.tasks import run_import

    preload()  # as `manage.py worker` does when it starts, before any job
    phases = _instrument() if spec.get("phases") else None
    baseline = _peak_mb()
    profiler = None
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    timing = _measured(lambda: run_import(spec["job"]))
    if profiler is not None:
        import io
        import pstats

        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(45)
        Path(spec["profile"]).write_text(out.getvalue())
    peak = _peak_mb()
    job = ImportJob.objects.get(pk=spec["job"])
    customers = Customer.objects.filter(customer_account__startswith="CU0").count()
    return {**timing, "peak_mb": peak, "baseline_mb": baseline, "phases": phases, "status": job.status,
            "total": job.total, "successful": job.successful, "failed": job.failed, "last_error": job.last_error,
            "customers": customers, "created": job.records_created, "updated": job.records_updated,
            "unchanged": job.records_unchanged,
            "audit": AuditEntry.objects.filter(batch_id=job.job_id).count(),
            # This job's events (a preloaded database holds the first import's too).
            "events": Event.objects.filter(type="customer.created", created__gte=job.started).count(),
            "updated_events": Event.objects.filter(type="customer.updated", created__gte=job.started).count()}


def child_die(spec: dict) -> dict:
    """django-import-export on the same CSV: file to tablib Dataset to import_data, timed together."""
    import tablib
    from import_export import resources

    from core.erp.models import Customer

    bulk = spec["mode"] == "bulk"

    # Works without import_export in INSTALLED_APPS: import_data needs no app registry entry.
    class CustomerResource(resources.ModelResource):
        class Meta:
            model = Customer
            fields = HEADER
            import_id_fields = ["customer_account"]
            if bulk:
                use_bulk = True
                skip_diff = True
                force_init_instance = True
                batch_size = 5000

    baseline = _peak_mb()
    loaded = 0.0

    def load_and_import():
        nonlocal loaded
        started = time.perf_counter()
        with open(spec["file"], encoding="utf-8", newline="") as f:
            dataset = tablib.Dataset().load(f.read(), format="csv")
        loaded = time.perf_counter() - started
        return CustomerResource().import_data(dataset, dry_run=False)

    timing = _measured(load_and_import)
    result = timing.pop("value")
    errors = [str(e.error) for _, row_errors in result.row_errors()[:3] for e in row_errors[:1]]
    return {**timing, "load_seconds": loaded, "peak_mb": _peak_mb(), "baseline_mb": baseline,
            "has_errors": result.has_errors() or result.has_validation_errors(), "errors": errors,
            "totals": dict(result.totals),
            "customers": Customer.objects.filter(customer_account__startswith="CU0").count()}


def child_floor(spec: dict) -> dict:
    """What PostgreSQL itself needs to store what an import of the file stores: its customers,
    one audit row and one event each, sent with COPY (the fastest way in) in chunks of
    batch_size, one transaction each, with every index and trigger in place. No file is read and
    nothing is validated or built by the database; the rows are the file's rows as the import
    writes them. A lower bound for any import on this database."""
    import csv as csv_module

    from django.db import connection, transaction
    from django.utils import timezone

    from core.audit.models import AuditEntry
    from core.erp.models import Customer, search_text
    from core.events.models import Event

    def copy(model, columns: list[str], rows) -> None:
        with connection.cursor() as cursor, cursor.cursor.copy(
                f'COPY {model._meta.db_table} ({", ".join(columns)}) FROM STDIN') as out:
            for row in rows:
                out.write_row(row)

    with open(spec["file"], encoding="utf-8", newline="") as f:
        records = list(csv_module.reader(f))[1:]
    now = timezone.now()

    def write():
        for start in range(0, len(records), spec["batch_size"]):
            chunk = records[start:start + spec["batch_size"]]
            with transaction.atomic():
                copy(Customer, ["customer_account", "name", "search_name", "currency", "credit_limit", "segment",
                                "email", "balance", "blocked", "created", "updated"],
                     ([r[0], r[1], search_text(r[1]), r[2], r[3] or "0", r[4], r[5], "0", False, now, now]
                      for r in chunk))
                copy(AuditEntry, ["tool", "username", "department", "via", "arguments_digest", "success",
                                  "error_code", "error_message", "duration_ms", "idempotency_key", "replayed",
                                  "batch_id", "created"],
                     (["import.customers", "admin", "", "import", "", True, "", "", 0, "", False, "IMP-FLOOR", now]
                      for _ in chunk))
                copy(Event, ["event_id", "type", "created", "data", "username", "fanned_out", "fanout_error"],
                     ([f"evt_floor{start + n:020x}", "customer.created", now, json.dumps(
                         {"customer_account": r[0], "name": r[1], "currency": r[2], "credit_limit": r[3] or 0,
                          "balance": 0.0, "segment": r[4], "email": r[5], "blocked": False,
                          "caused_by": {"user": "admin", "audit_id": None, "via": "import"}}), "admin", True, ""]
                      for n, r in enumerate(chunk)))

    return {**_measured(write), "rows": len(records)}


CHILDREN = {"submit": child_submit, "ours": child_ours, "die": child_die, "floor": child_floor}


def child_main(step: str, spec_json: str) -> None:
    _setup_django()
    result = CHILDREN[step](json.loads(spec_json))
    print("RESULT " + json.dumps(result, default=str))


# --- the parent ---------------------------------------------------------------------------------


def _child(env: dict[str, str], step: str, spec: dict) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench.imports", "--child", step, json.dumps(spec)], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"bench step {step} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len("RESULT "):])


def _fresh_env(env: dict[str, str]) -> dict[str, str]:
    env = {**env, "DJANGO_SETTINGS_MODULE": "core.settings", "LOG_LEVEL": "WARNING", "RATE_LIMIT_PER_MINUTE": "0",
           "PYTHONHASHSEED": "0"}
    env.pop("MEDIA_ROOT", None)
    return env


def _rates(result: dict, rows: int) -> str:
    result["rows_per_s"] = rows / result["seconds"]
    result["rows_per_cpu_s"] = rows / max(result["cpu"], 1e-9)
    return (f"{result['seconds']:7.2f} s {result['rows_per_s']:>8,.0f} rows/s  (CPU {result['cpu']:6.2f} s, "
            f"{result['rows_per_cpu_s']:>7,.0f} rows per CPU-second; {result['waits']:,} waits, "
            f"{result['preempted']:,} preemptions)")


def run_ours(on: Profile, label: str, path: Path, fmt: str, rows: int, batch_size: int, *, phases: bool = False,
             profile: str = "", mode: str = "create", preload: Path | None = None,
             settings: dict[str, str] | None = None) -> dict:
    with environment(on) as base_env:
        env = {**_fresh_env(base_env), **(settings or {})}
        job = _child(env, "submit", {"engine": "ours", "file": str(path), "fmt": fmt, "batch_size": batch_size,
                                     "mode": mode, "preload": str(preload) if preload else ""})
        result = _child(env, "ours", {"job": job["job"], "phases": phases, "profile": profile})
    assert result["status"] == "completed" and result["successful"] == rows and result["failed"] == 0, result
    assert result["customers"] == rows, result
    if preload is None:  # every row creates a customer, with its audit row and event
        assert result["created"] == result["audit"] == result["events"] == rows, result
    elif mode == "upsert":  # the same file again: nothing to write
        assert result["unchanged"] == rows and result["audit"] == result["updated_events"] == 0, result
    else:  # every row changed
        assert result["updated"] == result["audit"] == result["updated_events"] == rows, result
    print(f"  {label:34} {rows:>9,} rows {_rates(result, rows)}  peak {result['peak_mb']:4.0f} MB "
          f"(idle {result['baseline_mb']:.0f})  {result['status']}: {result['created']:,} created, "
          f"{result['updated']:,} updated, {result['unchanged']:,} unchanged, {result['failed']} failed; "
          f"{result['audit']:,} audit rows, {result['events'] + result['updated_events']:,} events", flush=True)
    if profile:
        print(f"    (run under cProfile, so slower than unprofiled; top functions in {profile})")
    if result["phases"]:
        print("    phases (inclusive; wall s / CPU s / calls):")
        for name, (wall, cpu, calls) in result["phases"].items():
            print(f"    {name:52} {wall:7.2f} {cpu:7.2f} {calls:5}")
    return result


def run_die(on: Profile, path: Path, rows: int, mode: str, note: str = "") -> dict:
    with environment(on) as base_env:
        env = _fresh_env(base_env)
        _child(env, "submit", {"engine": "die"})
        result = _child(env, "die", {"file": str(path), "mode": mode})
    assert not result["has_errors"] and result["customers"] == rows, result
    print(f"  {'django-import-export ' + mode:34} {rows:>9,} rows {_rates(result, rows)}  "
          f"peak {result['peak_mb']:4.0f} MB  (CSV to Dataset {result['load_seconds']:.2f} s){note}", flush=True)
    return result


def run_floor(on: Profile, path: Path, rows: int, batch_size: int) -> dict:
    with environment(on) as base_env:
        env = _fresh_env(base_env)
        _child(env, "submit", {"engine": "die"})  # migrate and seed
        result = _child(env, "floor", {"file": str(path), "batch_size": batch_size})
    assert result["rows"] == rows, result
    print(f"  {'COPY alone (the lower bound)':34} {rows:>9,} rows {_rates(result, rows)}  customers, audit rows "
          f"and events sent with COPY, nothing read or validated", flush=True)
    return result


def _die_installed() -> bool:
    try:
        import import_export  # noqa: F401
        import tablib  # noqa: F401
    except ImportError:
        return False
    return True


def _head(source: Path, target: Path, rows: int) -> None:
    """The header and the first `rows` data rows of a CSV (the generator writes no multi-line cells)."""
    with source.open(encoding="utf-8", newline="") as f, target.open("w", encoding="utf-8", newline="") as out:
        for n, line in enumerate(f):
            if n > rows:
                break
            out.write(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the CSV (default 100,000)")
    parser.add_argument("--xlsx-rows", type=int, default=100_000, help="rows of the XLSX (default 100,000)")
    parser.add_argument("--batch-size", type=int, default=5000, help="the job's batch_size (default 5000)")
    parser.add_argument("--die-default-rows", type=int, default=20_000,
                        help="django-import-export's default mode imports only the first N rows of the CSV "
                             "(it is slow; its rate does not depend on N); 0 = all rows")
    parser.add_argument("--million", action="store_true",
                        help="also import a 1,000,000-row CSV and a 1,000,000-row XLSX (slow)")
    parser.add_argument("--skip-modes", action="store_true", help="skip the update and upsert measurements")
    parser.add_argument("--german", action="store_true", help="also import the CSV as a German Excel export "
                                                                "(';', decimal comma, BOM)")
    parser.add_argument("--phases", action="store_true",
                        help="time the engine's phases in one CSV and one XLSX import before the rounds (not counted)")
    parser.add_argument("--cprofile", metavar="FILE", default="",
                        help="run our CSV import under cProfile and write its top functions to FILE")
    parser.add_argument("--skip-die", action="store_true", help="skip the django-import-export comparison")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of the CSV (with and without read-ahead), XLSX and bulk-mode imports, which "
                             "alternate; each figure is its median round (default 5)")
    add_arguments(parser)
    args = parser.parse_args()

    die = not args.skip_die and _die_installed()
    if not args.skip_die and not die:
        print("django-import-export is not installed; it is a bench-only dependency:\n"
              "  .venv/bin/pip install -r requirements-bench.txt\n(or pass --skip-die)", file=sys.stderr)
        raise SystemExit(2)

    chosen = profiles(args)
    print(f"Import bench on {' and '.join(p.label for p in chosen)}, batch_size {args.batch_size}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (each run: fresh subprocess, fresh "
          f"database)", flush=True)
    with tempfile.TemporaryDirectory(prefix="axhub-bench-files-") as files:
        csv_path, xlsx_path = Path(files, "customers.csv"), Path(files, "customers.xlsx")
        started = time.perf_counter()
        write_csv(csv_path, args.rows)
        write_xlsx(xlsx_path, args.xlsx_rows)
        changed_path = Path(files, "customers-changed.csv")
        write_changed_csv(csv_path, changed_path)
        print(f"  generated {args.rows:,}-row CSV ({csv_path.stat().st_size / 1e6:.1f} MB) and "
              f"{args.xlsx_rows:,}-row XLSX ({xlsx_path.stat().st_size / 1e6:.1f} MB) in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        results = {}
        for on in chosen:
            print(f"{on.label}:", flush=True)
            results[on.name] = _measure(on, args, Path(files), csv_path, xlsx_path, changed_path, die)
    for on in chosen:
        _summary(on, args, **results[on.name])
    if len(chosen) > 1:
        _side_by_side(args, results)


def _measure(on: Profile, args, files: Path, csv_path: Path, xlsx_path: Path, changed_path: Path,
             die: bool) -> dict:
    # The figures with a target, and what they are compared with, in rounds that alternate them
    # (the machine's speed drifts): each is the median round. "IMPORT_READ_AHEAD=0" is the same
    # import with the batches read and validated in turn with their writing, on one thread: what
    # reading ahead (core.imports.ahead) gives.
    runs: dict[str, list[dict]] = {"csv": [], "one_thread": [], "xlsx": [], "bulk": []}
    if args.phases or args.cprofile:  # instrumented imports are slower: run before the rounds, not counted
        run_ours(on, "ours CSV, instrumented (not counted)", csv_path, "csv", args.rows, args.batch_size,
                 phases=args.phases, profile=args.cprofile)
        if args.phases:
            run_ours(on, "ours XLSX, instrumented (not counted)", xlsx_path, "xlsx", args.xlsx_rows,
                     args.batch_size, phases=True)
    for number in range(1, args.rounds + 1):
        of = f" ({number}/{args.rounds})" if args.rounds > 1 else ""
        runs["csv"].append(run_ours(on, "ours CSV" + of, csv_path, "csv", args.rows, args.batch_size))
        runs["one_thread"].append(run_ours(on, "ours CSV, IMPORT_READ_AHEAD=0" + of, csv_path, "csv", args.rows,
                                           args.batch_size, settings={"IMPORT_READ_AHEAD": "0"}))
        runs["xlsx"].append(run_ours(on, "ours XLSX" + of, xlsx_path, "xlsx", args.xlsx_rows, args.batch_size))
        if die:
            runs["bulk"].append(run_die(on, csv_path, args.rows, "bulk", of))
    ours_csv, one_thread, ours_xlsx = (_median(runs[key]) for key in ("csv", "one_thread", "xlsx"))
    floor = run_floor(on, csv_path, args.rows, args.batch_size) if on.name == "postgres" else None
    upsert = update = None
    if not args.skip_modes:
        upsert = run_ours(on, "ours CSV upsert, all unchanged", csv_path, "csv", args.rows, args.batch_size,
                          mode="upsert", preload=csv_path)
        update = run_ours(on, "ours CSV update, all changed", changed_path, "csv", args.rows, args.batch_size,
                          mode="update", preload=csv_path)
    german = None
    if args.german:
        german_path = files / "kunden.csv"
        if not german_path.exists():
            write_csv(german_path, args.rows, german=True)
        german = run_ours(on, "ours CSV ';' decimal comma, BOM", german_path, "csv", args.rows, args.batch_size)
    die_default = die_bulk = None
    if die:
        default_rows = min(args.die_default_rows or args.rows, args.rows)
        default_path = csv_path
        note = ""
        if default_rows < args.rows:
            default_path = files / "customers-head.csv"
            _head(csv_path, default_path, default_rows)
            note = f"  first {default_rows:,} rows of the same CSV"
        die_default = run_die(on, default_path, default_rows, "default", note)
        die_bulk = _median(runs["bulk"])

    million = million_xlsx = None
    if args.million:
        million_path = files / "million.csv"
        write_csv(million_path, 1_000_000)
        print(f"  generated 1,000,000-row CSV ({million_path.stat().st_size / 1e6:.1f} MB)", flush=True)
        million = run_ours(on, "ours CSV 1,000,000 rows", million_path, "csv", 1_000_000, args.batch_size)
        million_path.unlink()
        million_xlsx_path = files / "million.xlsx"
        write_xlsx(million_xlsx_path, 1_000_000)
        print(f"  generated 1,000,000-row XLSX ({million_xlsx_path.stat().st_size / 1e6:.1f} MB)", flush=True)
        million_xlsx = run_ours(on, "ours XLSX 1,000,000 rows", million_xlsx_path, "xlsx", 1_000_000,
                                args.batch_size)
        million_xlsx_path.unlink()
    else:
        print("  1,000,000-row memory checks skipped (pass --million; it takes several minutes)", flush=True)
    return {"ours_csv": ours_csv, "ours_xlsx": ours_xlsx, "german": german, "die_default": die_default,
            "die_bulk": die_bulk, "million": million, "million_xlsx": million_xlsx, "upsert": upsert,
            "update": update, "floor": floor, "one_thread": one_thread}


def _median(runs: list[dict]) -> dict:
    """The run with the median rate, with every round's rate beside it (`rounds`)."""
    ordered = sorted(runs, key=lambda r: r["rows_per_s"])
    return {**ordered[len(ordered) // 2], "rounds": [r["rows_per_s"] for r in runs]}


def _spread(result: dict) -> str:
    rounds = result.get("rounds", [])
    if len(rounds) < 2:
        return ""
    return f"  [median of {len(rounds)} rounds: {' / '.join(f'{r:,.0f}' for r in rounds)}]"


def _side_by_side(args, results: dict[str, dict]) -> None:
    sqlite, server = results["sqlite"], results["postgres"]
    rows = [("CSV create", "ours_csv"), ("CSV create, no read-ahead", "one_thread"), ("XLSX create", "ours_xlsx"),
            ("CSV upsert, unchanged", "upsert"),
            ("CSV update, changed", "update"), ("django-import-export bulk", "die_bulk"),
            ("COPY alone (lower bound)", "floor")]
    print()
    print(f"SIDE BY SIDE  {args.rows:,} customers, rows/s (per CPU-second of the importing process)")
    print(f"  {'':28} {'SQLite':>22} {'PostgreSQL + Redis':>22} {'PG / SQLite':>12}")
    for label, key in rows:
        a, b = sqlite.get(key), server.get(key)
        if not b:
            continue
        if not a:
            print(f"  {label:28} {'':>22} {b['rows_per_s']:>10,.0f} ({b['rows_per_cpu_s']:>8,.0f})")
            continue
        print(f"  {label:28} {a['rows_per_s']:>10,.0f} ({a['rows_per_cpu_s']:>8,.0f}) "
              f"{b['rows_per_s']:>10,.0f} ({b['rows_per_cpu_s']:>8,.0f}) {b['rows_per_s'] / a['rows_per_s']:>11.2f}x")
    rate = server["ours_csv"]["rows_per_s"]
    print(f"  PostgreSQL + Redis CSV create: target >= {TARGET_SERVER_ROWS_PER_S:,} rows/s: "
          f"{'met' if rate >= TARGET_SERVER_ROWS_PER_S else 'NOT MET'}; no more than 2x slower than SQLite: "
          f"{'met' if rate * 2 >= sqlite['ours_csv']['rows_per_s'] else 'NOT MET'}")


def _summary(on: Profile, args, ours_csv, ours_xlsx, german, die_default, die_bulk, million, million_xlsx, upsert,
             update, floor, one_thread) -> None:
    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT MET"

    rate = ours_csv["rows_per_s"]
    target = TARGET_ROWS_PER_S if on.name == "sqlite" else TARGET_SERVER_ROWS_PER_S
    print()
    print("=" * 104)
    print(f"SUMMARY  {on.label}, batch_size {args.batch_size}; ours = end to end (parse, validate, "
          f"write, audit, events, checkpoints)")
    print(f"  ours CSV {args.rows:,} rows:   {rate:>8,.0f} rows/s  ({ours_csv['rows_per_cpu_s']:,.0f} per CPU-s)  "
          f"peak {ours_csv['peak_mb']:.0f} MB   target >= {target:,} rows/s: {verdict(rate >= target)}"
          f"{_spread(ours_csv)}")
    alone = one_thread["rows_per_s"]
    print(f"  the same, IMPORT_READ_AHEAD=0: {alone:>6,.0f} rows/s  ({one_thread['rows_per_cpu_s']:,.0f} per CPU-s): "
          f"reading ahead gives {rate / alone:.2f}x{_spread(one_thread)}")
    xlsx_ratio = ours_xlsx["rows_per_s"] / rate
    print(f"  ours XLSX {args.xlsx_rows:,} rows:   {ours_xlsx['rows_per_s']:>8,.0f} rows/s  "
          f"({ours_xlsx['rows_per_cpu_s']:,.0f} per CPU-s)  peak {ours_xlsx['peak_mb']:.0f} MB   "
          f"{xlsx_ratio:.2f}x the CSV rate; target >= {TARGET_XLSX_RATIO}x: {verdict(xlsx_ratio >= TARGET_XLSX_RATIO)}"
          f"{_spread(ours_xlsx)}")
    if floor:
        print(f"  COPY alone, same rows:       {floor['rows_per_s']:>8,.0f} rows/s: the database's own lower bound; "
              f"ours is {rate / floor['rows_per_s']:.2f}x of it")
    if upsert and update:
        print(f"  ours CSV upsert, unchanged:  {upsert['rows_per_s']:>8,.0f} rows/s  "
              f"({upsert['rows_per_cpu_s']:,.0f} per CPU-s)  peak {upsert['peak_mb']:.0f} MB   (no target)")
        print(f"  ours CSV update, changed:    {update['rows_per_s']:>8,.0f} rows/s  "
              f"({update['rows_per_cpu_s']:,.0f} per CPU-s)  peak {update['peak_mb']:.0f} MB   (no target)")
    if german:
        print(f"  ours CSV ';' decimal comma:  {german['rows_per_s']:>8,.0f} rows/s  peak {german['peak_mb']:.0f} MB")
    if die_default and die_bulk:
        d, b = die_default["rows_per_s"], die_bulk["rows_per_s"]
        print(f"  django-import-export default: {d:>8,.0f} rows/s  ({die_default['rows_per_cpu_s']:,.0f} per CPU-s)  "
              f"peak {die_default['peak_mb']:.0f} MB")
        print(f"  django-import-export bulk:    {b:>8,.0f} rows/s  ({die_bulk['rows_per_cpu_s']:,.0f} per CPU-s)  "
              f"peak {die_bulk['peak_mb']:.0f} MB{_spread(die_bulk)}")
        print(f"  ours / default: {rate / d:6.2f}x  (per CPU-s "
              f"{ours_csv['rows_per_cpu_s'] / die_default['rows_per_cpu_s']:.2f}x)   target > 10x: "
              f"{verdict(rate / d > 10)}")
        print(f"  ours / bulk:    {rate / b:6.2f}x  (per CPU-s "
              f"{ours_csv['rows_per_cpu_s'] / die_bulk['rows_per_cpu_s']:.2f}x)   target >= {TARGET_BULK_RATIO}x: "
              f"{verdict(rate / b >= TARGET_BULK_RATIO)}")
    else:
        print("  django-import-export comparison skipped (--skip-die)")
    if million:
        print(f"  ours CSV 1,000,000 rows: {million['rows_per_s']:>8,.0f} rows/s  peak {million['peak_mb']:.0f} MB   "
              f"target < {TARGET_MILLION_MB} MB: {verdict(million['peak_mb'] < TARGET_MILLION_MB)}")
    else:
        print(f"  ours CSV 1,000,000 rows: skipped (pass --million)   target < {TARGET_MILLION_MB} MB peak")
    if million_xlsx:
        print(f"  ours XLSX 1,000,000 rows: {million_xlsx['rows_per_s']:>8,.0f} rows/s  peak "
              f"{million_xlsx['peak_mb']:.0f} MB   target < {TARGET_MILLION_XLSX_MB} MB: "
              f"{verdict(million_xlsx['peak_mb'] < TARGET_MILLION_XLSX_MB)}")
    print(f"  load average now {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs: wall-clock rates are noisy when "
          f"other work runs; per CPU-s rates less so")
    print("=" * 104)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3])
    else:
        main()
