"""The usage rollup: per-day and per-month totals of the audit rows, which metrics read.

Why: a year of audit rows is a million rows, and aggregating them per request takes seconds
on SQLite, even from a covering index. The rollup holds a few rows per user, tool and day, so
a year of metrics reads thousands of rows instead of a million.

What is counted: every audit row except replayed calls (AuditEntry.replayed: the answer was a
stored result; the work happened once, in the original call) and the envelopes of calls that
fan out into audited inner calls (ENVELOPE_TOOLS). saved_ms sums max(0, baseline_ms -
duration_ms) over the successful counted rows, with the baselines of roi_baseline; changing
a baseline recomputes that tool's rows (rebuild()).

How it stays exact and current:
- PostgreSQL: triggers on the audit table count every inserted, updated or deleted row in the
  transaction that writes it (also rows written in bulk with raw SQL, like imports do).
- SQLite: audit rows above the watermark (models.Watermark) are counted by fold(), which every
  metrics query runs first, in a write transaction; a scheduled task folds every minute so the
  backlog stays small. An insert trigger would cost an audit insert ~200 µs on SQLite (it
  makes every insert spill a statement journal to a temporary file), imports included.
  Triggers un-count and re-count rows below the watermark that are updated or deleted.

The triggers are installed after every `migrate` (ensure_installed, from post_migrate): a
migration that remakes the audit table on SQLite drops them, and their name carries a digest
of their SQL, so a changed definition replaces the old one. Either way the rollup is then
rebuilt from the audit rows.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

from django.db import connection, transaction

from core.db import write_slot
from core.roi.models import Baseline, Usage, Watermark
from core.tools.models import AuditEntry

log = logging.getLogger(__name__)

# Tools whose call only wraps other audited calls: counting them as well would count the work
# twice. ax_bulk_import audits each imported record as import.<type>.
ENVELOPE_TOOLS = ("ax_batch_operations", "ax_bulk_import")

AUDIT = AuditEntry._meta.db_table
USAGE = Usage._meta.db_table
BASELINE = Baseline._meta.db_table
WATERMARK = Watermark._meta.db_table
KEY = "level, period_start, tool, user_pk, username, department"
PREFIX = "roi_rollup_"
TOOL_DAY, TOOL_MONTH, DAY = Usage.Level.TOOL_DAY.value, Usage.Level.TOOL_MONTH.value, Usage.Level.DAY.value


@dataclass(frozen=True)
class _Dialect:
    """The few expressions that differ between SQLite and PostgreSQL. Days are UTC days."""

    day: str  # of a timestamp column, {0}
    month: str  # first day of the month of a timestamp column
    month_of_date: str  # first day of the month of a date column
    greatest: str
    add: str  # ON CONFLICT ... DO UPDATE SET for an upsert that adds


_ADD = "operations = {t}operations + excluded.operations, successful = {t}successful + excluded.successful, " \
       "saved_ms = {t}saved_ms + excluded.saved_ms"
_DIALECTS = {
    "sqlite": _Dialect(day="date({0})", month="date({0}, 'start of month')",
                       month_of_date="date({0}, 'start of month')", greatest="MAX", add=_ADD.format(t="")),
    "postgresql": _Dialect(day="(({0}) AT TIME ZONE 'UTC')::date",
                           month="date_trunc('month', ({0}) AT TIME ZONE 'UTC')::date",
                           month_of_date="date_trunc('month', {0})::date", greatest="GREATEST",
                           add=_ADD.format(t=USAGE + ".")),
}


def _dialect() -> _Dialect:
    try:
        return _DIALECTS[connection.vendor]
    except KeyError:
        raise NotImplementedError(f"ROI rollup supports SQLite and PostgreSQL, not {connection.vendor}") from None


def _quoted(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _counted(row: str) -> str:
    return f"NOT {row}.replayed AND {row}.tool NOT IN ({_quoted(ENVELOPE_TOOLS)})"


def _saved(row: str, baseline_seconds: str, d: _Dialect) -> str:
    return f"CASE WHEN {row}.success THEN {d.greatest}(0, {baseline_seconds} * 1000 - {row}.duration_ms) ELSE 0 END"


def _slot() -> AbstractContextManager:
    # Inside a transaction that is already open (an admin save, a tool call) this thread holds
    # SQLite's write lock; taking the process lock now would invert the usual order.
    return nullcontext() if connection.in_atomic_block else write_slot()


@contextmanager
def write_transaction() -> Iterator[None]:
    """A transaction that may write the rollup (SQLite: with the process's writer lock)."""
    with _slot(), transaction.atomic():
        yield


# --- Counting audit rows in bulk: the rebuild, and SQLite's fold.

ALL_LEVELS = (TOOL_DAY, TOOL_MONTH, DAY)


def _count_rows(cursor, where: str, params: list, *, levels: tuple[str, ...] = ALL_LEVELS,
                add: bool = False) -> None:
    """Count the audit rows matching `where` (SQL on alias a) into the given levels.

    add=False inserts (the rows must not exist yet); add=True adds to existing rows.
    """
    d = _dialect()
    saved = _saved("a", "COALESCE(b.seconds, 0)", d)
    upsert = f" ON CONFLICT ({KEY}) DO UPDATE SET {d.add}" if add else ""
    shapes = {TOOL_DAY: (d.day.format("a.created"), "a.tool", "2, 3, 4, 5, 6"),
              TOOL_MONTH: (d.month.format("a.created"), "a.tool", "2, 3, 4, 5, 6"),
              DAY: (d.day.format("a.created"), "''", "2, 4, 5, 6")}
    for level in levels:
        start, tool, group = shapes[level]
        cursor.execute(
            f"INSERT INTO {USAGE} ({KEY}, operations, successful, saved_ms) "
            f"SELECT '{level}', {start}, {tool}, COALESCE(a.user_id, 0), a.username, a.department, COUNT(*), "
            f"SUM(CASE WHEN a.success THEN 1 ELSE 0 END), SUM({saved}) "
            f"FROM {AUDIT} a LEFT JOIN {BASELINE} b ON b.tool = a.tool WHERE {_counted('a')} AND {where} "
            f"GROUP BY {group}{upsert}", params)


def _newest_audit_id(cursor) -> int:
    cursor.execute(f"SELECT MAX(id) FROM {AUDIT}")
    return cursor.fetchone()[0] or 0


def _set_watermark(cursor, audit_id: int) -> None:
    cursor.execute(f"UPDATE {WATERMARK} SET audit_id = %s WHERE id = 1", [audit_id])
    if cursor.rowcount == 0:
        cursor.execute(f"INSERT INTO {WATERMARK} (id, audit_id) VALUES (1, %s)", [audit_id])


def _fold(cursor) -> int:
    """SQLite: count the audit rows above the watermark and raise it. Returns the watermark."""
    cursor.execute(f"SELECT audit_id FROM {WATERMARK} WHERE id = 1")
    row = cursor.fetchone()
    done, newest = (row[0] if row else 0), _newest_audit_id(cursor)
    if newest > done:
        _count_rows(cursor, "a.id > %s AND a.id <= %s", [done, newest], add=True)
        _set_watermark(cursor, newest)
    return max(done, newest)


def fold() -> None:
    """Bring the rollup up to the last committed audit row (SQLite; nothing to do elsewhere)."""
    if connection.vendor != "sqlite":
        return
    with write_transaction(), connection.cursor() as cursor:
        _fold(cursor)


def rebuild(tools: Iterable[str] | None = None) -> None:
    """Recompute the rollup from the audit rows: of `tools` (after a baseline change), or all."""
    with write_transaction(), connection.cursor() as cursor:
        _rebuild(cursor, None if tools is None else sorted(set(tools)))


def _rebuild(cursor, tools: list[str] | None) -> None:
    if connection.vendor == "postgresql":
        # Audit writers wait until the rebuild commits (see the trigger function).
        cursor.execute(f"LOCK TABLE {USAGE} IN SHARE ROW EXCLUSIVE MODE")
    if tools is not None and not tools:
        return
    where, params = "1 = 1", []
    if connection.vendor == "sqlite":
        if tools is None:
            newest = _newest_audit_id(cursor)
            _set_watermark(cursor, newest)
        else:
            newest = _fold(cursor)  # every other tool is then counted up to the same row
        where, params = "a.id <= %s", [newest]
    if tools is None:
        cursor.execute(f"DELETE FROM {USAGE}")
        _count_rows(cursor, where, params)
        return
    marks = ", ".join(["%s"] * len(tools))
    cursor.execute(f"DELETE FROM {USAGE} WHERE level IN ('{TOOL_DAY}', '{TOOL_MONTH}') AND tool IN ({marks})", tools)
    _count_rows(cursor, f"{where} AND a.tool IN ({marks})", params + tools, levels=(TOOL_DAY, TOOL_MONTH))
    # The all-tools level is summed again from the tool level: simpler than patching it, and
    # a baseline change is rare.
    cursor.execute(f"DELETE FROM {USAGE} WHERE level = '{DAY}'")
    cursor.execute(
        f"INSERT INTO {USAGE} ({KEY}, operations, successful, saved_ms) "
        f"SELECT '{DAY}', period_start, '', user_pk, username, department, SUM(operations), SUM(successful), "
        f"SUM(saved_ms) FROM {USAGE} WHERE level = '{TOOL_DAY}' GROUP BY 2, 4, 5, 6")


# --- Triggers.

def _sqlite_add(row: str, d: _Dialect) -> str:
    baseline = f"COALESCE((SELECT b.seconds FROM {BASELINE} b WHERE b.tool = {row}.tool), 0)"
    day, month = d.day.format(row + ".created"), d.month.format(row + ".created")
    rest = (f"COALESCE({row}.user_id, 0), {row}.username, {row}.department, 1, "
            f"CASE WHEN {row}.success THEN 1 ELSE 0 END, {_saved(row, baseline, d)}")
    return (f"INSERT INTO {USAGE} ({KEY}, operations, successful, saved_ms) VALUES "
            f"('{TOOL_DAY}', {day}, {row}.tool, {rest}), ('{TOOL_MONTH}', {month}, {row}.tool, {rest}), "
            f"('{DAY}', {day}, '', {rest}) ON CONFLICT ({KEY}) DO UPDATE SET {d.add};")


def _sqlite_remove(row: str, d: _Dialect) -> str:
    # An UPDATE, never an upsert: when the rollup was emptied first (a test database flush
    # deletes table by table), un-counting finds nothing instead of leaving negative rows.
    baseline = f"COALESCE((SELECT b.seconds FROM {BASELINE} b WHERE b.tool = {row}.tool), 0)"
    day, month = d.day.format(row + ".created"), d.month.format(row + ".created")
    return (f"UPDATE {USAGE} SET operations = operations - 1, "
            f"successful = successful - (CASE WHEN {row}.success THEN 1 ELSE 0 END), "
            f"saved_ms = saved_ms - ({_saved(row, baseline, d)}) "
            f"WHERE user_pk = COALESCE({row}.user_id, 0) AND username = {row}.username "
            f"AND department = {row}.department AND ((level = '{TOOL_DAY}' AND period_start = {day} "
            f"AND tool = {row}.tool) OR (level = '{TOOL_MONTH}' AND period_start = {month} AND tool = {row}.tool) "
            f"OR (level = '{DAY}' AND period_start = {day} AND tool = ''));")


def _sqlite_sql(name: str) -> list[str]:
    """Rows above the watermark are fold()'s; these keep the rows below it counted right."""
    d = _DIALECTS["sqlite"]

    def folded(row: str) -> str:
        return f"{_counted(row)} AND {row}.id <= (SELECT w.audit_id FROM {WATERMARK} w WHERE w.id = 1)"

    return [
        f"CREATE TRIGGER {name}_del AFTER DELETE ON {AUDIT} WHEN {folded('OLD')} "
        f"BEGIN {_sqlite_remove('OLD', d)} END",
        f"CREATE TRIGGER {name}_upd_old AFTER UPDATE ON {AUDIT} WHEN {folded('OLD')} "
        f"BEGIN {_sqlite_remove('OLD', d)} END",
        f"CREATE TRIGGER {name}_upd_new AFTER UPDATE ON {AUDIT} WHEN {folded('NEW')} "
        f"BEGIN {_sqlite_add('NEW', d)} END",
    ]


def _pg_sql(name: str) -> list[str]:
    d = _DIALECTS["postgresql"]
    args = ("created", "tool", "user_id", "username", "department", "success", "replayed", "duration_ms")
    return [
        # ROW EXCLUSIVE before reading the baseline: rebuild() holds SHARE ROW EXCLUSIVE while
        # it recomputes, so a trigger either finishes before the rebuild reads the audit rows
        # or reads the baseline after the rebuild committed. Writers never block each other.
        f"""CREATE FUNCTION {name}_apply(p_created timestamptz, p_tool text, p_user_id bigint, p_username text,
    p_department text, p_success boolean, p_replayed boolean, p_duration_ms bigint, p_sign integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_day date := {d.day.format('p_created')};
    v_month date := {d.month.format('p_created')};
    v_saved bigint := 0;
    v_ok integer := CASE WHEN p_success THEN 1 ELSE 0 END;
BEGIN
    IF p_replayed OR p_tool IN ({_quoted(ENVELOPE_TOOLS)}) THEN
        RETURN;
    END IF;
    LOCK TABLE {USAGE} IN ROW EXCLUSIVE MODE;
    IF p_success THEN
        v_saved := GREATEST(0, COALESCE((SELECT b.seconds FROM {BASELINE} b WHERE b.tool = p_tool), 0)::bigint
                               * 1000 - p_duration_ms);
    END IF;
    IF p_sign > 0 THEN
        INSERT INTO {USAGE} ({KEY}, operations, successful, saved_ms) VALUES
            ('{TOOL_DAY}', v_day, p_tool, COALESCE(p_user_id, 0), p_username, p_department, 1, v_ok, v_saved),
            ('{TOOL_MONTH}', v_month, p_tool, COALESCE(p_user_id, 0), p_username, p_department, 1, v_ok, v_saved),
            ('{DAY}', v_day, '', COALESCE(p_user_id, 0), p_username, p_department, 1, v_ok, v_saved)
        ON CONFLICT ({KEY}) DO UPDATE SET {d.add};
    ELSE
        -- An UPDATE, never an upsert: see the SQLite triggers.
        UPDATE {USAGE} SET operations = operations - 1, successful = successful - v_ok, saved_ms = saved_ms - v_saved
        WHERE user_pk = COALESCE(p_user_id, 0) AND username = p_username AND department = p_department
          AND ((level = '{TOOL_DAY}' AND period_start = v_day AND tool = p_tool)
            OR (level = '{TOOL_MONTH}' AND period_start = v_month AND tool = p_tool)
            OR (level = '{DAY}' AND period_start = v_day AND tool = ''));
    END IF;
END $$""",
        f"""CREATE FUNCTION {name}_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM {name}_apply({', '.join('OLD.' + a for a in args)}, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM {name}_apply({', '.join('NEW.' + a for a in args)}, 1);
    END IF;
    RETURN NULL;
END $$""",
        f"""CREATE FUNCTION {name}_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {USAGE};
    RETURN NULL;
END $$""",
        f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON {AUDIT} FOR EACH ROW EXECUTE FUNCTION {name}_row()",
        f"CREATE TRIGGER {name}_truncate AFTER TRUNCATE ON {AUDIT} FOR EACH STATEMENT "
        f"EXECUTE FUNCTION {name}_truncate()",
    ]


def _definition() -> tuple[str, list[str], set[str]]:
    """(name, statements, trigger names) of the current definition for this database."""
    _dialect()  # refuses other databases
    build = _sqlite_sql if connection.vendor == "sqlite" else _pg_sql
    name = PREFIX + hashlib.sha256("\n".join(build(PREFIX)).encode()).hexdigest()[:10]
    if connection.vendor == "sqlite":
        triggers = {f"{name}_{suffix}" for suffix in ("del", "upd_old", "upd_new")}
    else:
        triggers = {name, f"{name}_truncate"}
    return name, build(name), triggers


def _installed_triggers(cursor) -> set[str]:
    if connection.vendor == "sqlite":
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s AND name LIKE %s",
                       [AUDIT, PREFIX + "%"])
    else:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal "
                       "AND tgname LIKE %s", [AUDIT, PREFIX + "%"])
    return {row[0] for row in cursor.fetchall()}


def installed() -> bool:
    """Whether the current triggers are in place on the audit table."""
    with connection.cursor() as cursor:
        return _installed_triggers(cursor) == _definition()[2]


def ensure_installed() -> bool:
    """Install the current triggers unless present, then rebuild. True when it (re)installed."""
    name, statements, expected = _definition()
    with write_transaction(), connection.cursor() as cursor:
        present = _installed_triggers(cursor)
        if present == expected:
            return False
        for trigger in sorted(present):
            cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}" if connection.vendor == "sqlite"
                           else f"DROP TRIGGER IF EXISTS {trigger} ON {AUDIT}")
        if connection.vendor == "postgresql":
            cursor.execute("SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n "
                           "ON n.oid = p.pronamespace WHERE n.nspname = current_schema() AND p.proname LIKE %s",
                           [PREFIX + "%"])
            for (signature,) in cursor.fetchall():
                cursor.execute(f"DROP FUNCTION IF EXISTS {signature}")
        for statement in statements:
            cursor.execute(statement)
        _rebuild(cursor, None)
    log.info("ROI rollup triggers %s installed; rollup rebuilt from the audit rows", name)
    return True
