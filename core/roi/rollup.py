"""The usage rollup: per-day and per-month totals of the audit rows, which metrics read.

Why: a year of audit rows is a million rows, and aggregating them per request takes seconds
on SQLite, even from a covering index. The rollup holds a few rows per user, tool and day, so
a year of metrics reads thousands of rows instead of a million.

What is counted: every audit row except replayed calls (AuditEntry.replayed: the answer was a
stored result; the work happened once, in the original call), the envelopes of calls that
fan out into audited inner calls (ENVELOPE_TOOLS), and the records of one-off migrations
(via NOT_COUNTED_VIA), which are counted apart (level MIGRATION_DAY) so that a report can say
how many it left out. saved_ms sums max(0, baseline_ms - duration_ms) over the successful
counted rows, with the baseline in force on the row's UTC day (roi_baseline is a history: each
row from its effective_from until the tool's next row). A baseline change recomputes that
tool's rows from the first day it affects on (rebuild(tools, since)); the days before keep
their figures. A rebuild counts the per-day rows in one scan of the audit rows and sums the
month and all-tools rows from them. The SQL fragments (tables, what counts, the baseline in
force, one row in or out) are in rollup_sql.py.

How it stays exact and current: new audit rows are counted by fold(), which every metrics
query runs first, in its transaction, and a scheduled task runs every minute, so a query
reflects every row committed before it. Which rows are new:
- SQLite: the rows above a watermark id (models.Watermark). SQLite has one writer at a time
  and AUTOINCREMENT never hands out an id twice, so no row can appear below the watermark
  later. No insert trigger: on SQLite any insert trigger makes each audit insert spill a
  statement journal to a temporary file (~200 µs per row, imports included).
- PostgreSQL: ids commit out of order, so an insert trigger queues each counted row's id in
  models.Pending, in the audit row's transaction; the fold takes the queue with
  DELETE ... RETURNING. Counting rows straight into the rollup from the trigger made a bulk
  insert five times slower (thousands of updates of the same rollup rows in one transaction).
Audit rows updated or deleted after they were counted are un-counted and re-counted by
triggers, on both databases (rare: a user deleted, an admin deleting rows).

The triggers are installed after every `migrate` (ensure_installed, from post_migrate): a
migration that remakes the audit table on SQLite drops them, and their name carries a digest
of their SQL, so a changed definition replaces the old one. Either way the rollup is then
rebuilt from the audit rows.

Audit retention (AUDIT_RETENTION_DAYS, off by default) deletes the audit rows of whole UTC days.
For those days the rollup becomes the only record, so it must not change: before the first row
goes, freeze_before() counts every row not counted yet and records the first kept day
(models.Horizon). From then on, deleting an audit row of an earlier day un-counts nothing (a
row not counted yet is counted as it goes), and rebuild() recounts only the days from the
horizon on: earlier days, and the earlier part of the horizon's month, keep their figures,
also when a baseline changes afterwards (they stay priced with the baselines of their time).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, date, datetime, time

from django.db import connection, transaction

from core.db import write_slot
from core.dialect import PostgreSQL, SQLite, dialect, quote_literal
from core.roi import rollup_sql as sql
from core.roi.models import Horizon
from core.roi.rollup_sql import (  # noqa: F401 (the tables and rules, also as rollup.<name>)
    AUDIT,
    BASELINE,
    COUNTED_LEVELS,
    DAY,
    ENVELOPE_TOOLS,
    HORIZON,
    MIGRATION_DAY,
    NOT_COUNTED_VIA,
    PENDING,
    TOOL_DAY,
    TOOL_MONTH,
    USAGE,
    WATERMARK,
)

log = logging.getLogger(__name__)

PREFIX = "roi_rollup_"
FOLD_LOCK = 7_606_001  # PostgreSQL advisory lock: one fold at a time


def _slot() -> AbstractContextManager:
    # Inside a transaction that is already open (an admin save, a tool call) this thread holds
    # SQLite's write lock; taking the process lock now would invert the usual order.
    return nullcontext() if connection.in_atomic_block else write_slot()


@contextmanager
def write_transaction() -> Iterator[None]:
    """A transaction that may write the rollup (SQLite: with the process's writer lock)."""
    with _slot(), transaction.atomic():
        yield


# --- Counting audit rows in bulk: fold and rebuild.

def _count_sql(source: str, *, levels: tuple[str, ...] = COUNTED_LEVELS, add: bool) -> str:
    """INSERT of the given levels' rows, aggregated from `source`: a FROM clause (with its
    WHERE) exposing the audit columns as `a`, from _audit_source(). Its parameters repeat once
    per level. The per-day level (TOOL_DAY) also writes the MIGRATION_DAY rows, from the same
    scan. add=True adds to existing rows; add=False expects none."""
    d, n = dialect(), sql.names()
    saved = sql.saved("a", _strategy().bulk_seconds("a"))
    migration = f"a.via = {quote_literal(NOT_COUNTED_VIA)}"
    shapes = {
        TOOL_DAY: (f"CASE WHEN {migration} THEN '{MIGRATION_DAY}' ELSE '{TOOL_DAY}' END", d.utc_day("a.created"),
                   "a.tool", "1, 2, 3, 4, 5, 6", sql.operation("a"), f"CASE WHEN {migration} THEN 0 ELSE {saved} END"),
        TOOL_MONTH: (f"'{TOOL_MONTH}'", d.utc_month("a.created"), "a.tool", "2, 3, 4, 5, 6", sql.counted("a"), saved),
        DAY: (f"'{DAY}'", d.utc_day("a.created"), "''", "2, 4, 5, 6", sql.counted("a"), saved),
    }
    parts = []
    for level in levels:
        name, start, tool, group, rows, sums = shapes[level]
        parts.append(
            f"SELECT {name}, {start}, {tool}, COALESCE(a.user_id, 0), a.username, a.department, COUNT(*), "
            f"SUM(CASE WHEN a.success THEN 1 ELSE 0 END), SUM({sums}) FROM {source} AND {rows} GROUP BY {group}")
    # Rows in key order: concurrent writers of the rollup then lock its rows in the same order.
    upsert = f" ORDER BY 1, 2, 3, 4, 5, 6 {n.add}" if add else ""
    return f"{n.insert} SELECT * FROM ({' UNION ALL '.join(parts)}) x WHERE 1 = 1{upsert}"


def _audit_source(where: str, source: str = "") -> str:
    """FROM (and WHERE) of the operations among the audit rows (or `source`, a query of them)."""
    return f"{source or sql.names().audit} a {_strategy().bulk_join('a')} WHERE {sql.operation('a')} AND {where}"


def fold() -> None:
    """Count the audit rows committed since the last fold into the rollup."""
    with write_transaction(), connection.cursor() as cursor:
        _strategy().fold(cursor)


def rebuild(tools: Iterable[str] | None = None, since: date | None = None) -> None:
    """Recompute the rollup from the audit rows: of `tools` (after a baseline change), or all;
    of the days from `since` on (the first day a baseline change affects), or all days."""
    with write_transaction(), connection.cursor() as cursor:
        _rebuild(cursor, None if tools is None else sorted(set(tools)), since)


def _rebuild(cursor, tools: list[str] | None, since: date | None = None) -> None:
    """Recount the per-day rows from the audit rows (one scan), then sum the month and all-tools
    rows from the per-day rows. A rebuild from a day within a month sums that month again from
    all its per-day rows: those before the day were kept, the later ones recounted."""
    if tools is not None and not tools:
        return
    n = sql.names()
    # Never before the horizon: earlier days have no audit rows left to count.
    start = max((day for day in (since, current_horizon()) if day is not None), default=None)
    where, params = _strategy().recount(cursor, whole=tools is None and start is None, tools=tools)
    only, only_params = "", []
    if tools is not None:
        only, only_params = f" AND tool IN ({', '.join(['%s'] * len(tools))})", list(tools)
        where += f" AND a.tool IN ({', '.join(['%s'] * len(tools))})"
        params = [*params, *tools]
    days, months, bound_days, bound_months = "", "", [], []
    if start is not None:
        where += " AND a.created >= %s"
        params = [*params, connection.ops.adapt_datetimefield_value(datetime.combine(start, time.min, tzinfo=UTC))]
        days, bound_days = " AND period_start >= %s", [_date(start)]
        months, bound_months = " AND period_start >= %s", [_date(start.replace(day=1))]
    per_day = f"level IN ('{TOOL_DAY}', '{MIGRATION_DAY}')"
    cursor.execute(f"DELETE FROM {n.usage} WHERE {per_day}{only}{days}", only_params + bound_days)
    cursor.execute(f"DELETE FROM {n.usage} WHERE level = '{TOOL_MONTH}'{only}{months}", only_params + bound_months)
    # The all-tools level is summed again from the tool level, all tools: simpler than patching it.
    cursor.execute(f"DELETE FROM {n.usage} WHERE level = '{DAY}'{days}", bound_days)
    cursor.execute(_count_sql(_audit_source(where), levels=(TOOL_DAY,), add=False), params)
    cursor.execute(
        f"{n.insert} SELECT '{TOOL_MONTH}', {_month_of('period_start')}, tool, user_pk, username, department, "
        f"SUM(operations), SUM(successful), SUM(saved_ms) FROM {n.usage} WHERE level = '{TOOL_DAY}'{only}{months} "
        f"GROUP BY 2, 3, 4, 5, 6", only_params + bound_months)
    cursor.execute(
        f"{n.insert} SELECT '{DAY}', period_start, '', user_pk, username, department, SUM(operations), "
        f"SUM(successful), SUM(saved_ms) FROM {n.usage} WHERE level = '{TOOL_DAY}'{days} GROUP BY 2, 4, 5, 6",
        bound_days)


def _month_of(column: str) -> str:
    """SQL: the first day of the month of a date column (the UTC month of a UTC day)."""
    return dialect().utc_month(column)


def _date(day: date):
    return connection.ops.adapt_datefield_value(day)


# --- Audit retention: the days whose audit rows are pruned keep their figures.

def current_horizon() -> date | None:
    """The first day whose audit rows are all kept, or None while no audit row was pruned."""
    return Horizon.objects.filter(pk=1).values_list("day", flat=True).first()


def freeze_before(day: date) -> date:
    """Call before deleting the audit rows of the days before `day`: counts every audit row not
    counted yet, then keeps the rollup of those days as it is (the horizon moves to `day`,
    never back). Returns the horizon now in force."""
    with write_transaction(), connection.cursor() as cursor:
        _strategy().fold(cursor)  # on PostgreSQL its advisory lock also serialises two freezes
        current = current_horizon()
        if current is None:
            Horizon.objects.create(pk=1, day=day)
        elif day > current:
            Horizon.objects.filter(pk=1).update(day=day)
    return max(day, current or day)


# --- Per database: which audit rows are new, and the triggers for rows updated or deleted
# after they were counted (both), and for queueing new rows (PostgreSQL).

class _Watermark:
    """SQLite: the new audit rows are those above a watermark id (see the module docstring)."""

    suffixes = ("del", "del_frozen", "upd_old", "upd_new")

    # Counting many rows, each looks its baseline up by the (tool, effective_from) index: on
    # SQLite that is about as fast as the join of one baseline per tool was, where joining the
    # periods (a window-function subquery) made a rebuild of a year four times slower.
    @staticmethod
    def bulk_join(row: str) -> str:
        return ""

    @staticmethod
    def bulk_seconds(row: str) -> str:
        return sql.in_force(row)

    def fold(self, cursor) -> int:
        """Count the audit rows above the watermark and raise it. Returns the watermark."""
        cursor.execute(f"SELECT audit_id FROM {sql.names().watermark} WHERE id = 1")
        row = cursor.fetchone()
        done, newest = (row[0] if row else 0), self._newest(cursor)
        if newest > done:
            cursor.execute(_count_sql(_audit_source("a.id > %s AND a.id <= %s"), add=True),
                           [done, newest] * len(COUNTED_LEVELS))
            self._set(cursor, newest)
        return max(done, newest)

    def recount(self, cursor, *, whole: bool, tools: list[str] | None) -> tuple[str, list]:
        """Before a rebuild: the audit rows it counts (WHERE over `a`, parameters)."""
        # Everything up to the newest row is counted here (all of it) or folded first (the
        # other tools, or the days before the horizon, which are not recounted), so the
        # watermark ends at the newest row either way.
        newest = self._newest(cursor) if whole else self.fold(cursor)
        if tools is None:
            self._set(cursor, newest)
        return "a.id <= %s", [newest]

    @staticmethod
    def _newest(cursor) -> int:
        cursor.execute(f"SELECT MAX(id) FROM {sql.names().audit}")
        return cursor.fetchone()[0] or 0

    @staticmethod
    def _set(cursor, audit_id: int) -> None:
        n = sql.names()
        cursor.execute(f"UPDATE {n.watermark} SET audit_id = %s WHERE id = 1", [audit_id])
        if cursor.rowcount == 0:
            cursor.execute(f"INSERT INTO {n.watermark} (id, audit_id) VALUES (1, %s)", [audit_id])

    def statements(self, name: str) -> list[str]:
        d, n = dialect(), sql.names()

        def counted(row: str) -> str:  # and at or below the watermark: rows above it are fold()'s
            return f"{sql.operation(row)} AND {row}.id <= (SELECT w.audit_id FROM {n.watermark} w WHERE w.id = 1)"

        def frozen(row: str) -> str:  # a day before the horizon: its audit rows are being pruned
            return f"{d.utc_day(row + '.created')} < COALESCE((SELECT h.day FROM {n.horizon} h WHERE h.id = 1), '')"

        return [
            f"CREATE TRIGGER {name}_del AFTER DELETE ON {n.audit} WHEN {counted('OLD')} AND NOT {frozen('OLD')} "
            f"BEGIN {sql.remove_row('OLD')} END",
            # A row of a frozen day that fold() has not counted yet: counted as it goes.
            f"CREATE TRIGGER {name}_del_frozen AFTER DELETE ON {n.audit} WHEN {sql.operation('OLD')} "
            f"AND OLD.id > COALESCE((SELECT w.audit_id FROM {n.watermark} w WHERE w.id = 1), 0) AND {frozen('OLD')} "
            f"BEGIN {sql.add_row('OLD')} END",
            f"CREATE TRIGGER {name}_upd_old AFTER UPDATE ON {n.audit} WHEN {counted('OLD')} "
            f"BEGIN {sql.remove_row('OLD')} END",
            f"CREATE TRIGGER {name}_upd_new AFTER UPDATE ON {n.audit} WHEN {counted('NEW')} "
            f"BEGIN {sql.add_row('NEW')} END",
        ]

    def reset(self, cursor) -> None:
        """After the triggers were dropped, before the rebuild."""


class _Queue:
    """PostgreSQL: ids commit out of order, so an insert trigger queues each counted row's id."""

    suffixes = ("ins", "chg", "trunc")

    # Counting many rows, PostgreSQL joins the baseline periods once (a hash join) rather than
    # looking the baseline up row by row.
    @staticmethod
    def bulk_join(row: str) -> str:
        day = dialect().utc_day(f"{row}.created")
        return (f"LEFT JOIN {sql.periods()} b ON b.tool = {row}.tool AND b.since <= {day} "
                f"AND (b.until IS NULL OR {day} < b.until)")

    @staticmethod
    def bulk_seconds(row: str) -> str:
        return "COALESCE(b.seconds, 0)"

    def fold(self, cursor) -> None:
        """Count the queued audit rows, taking them off the queue, in one statement."""
        n = sql.names()
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
        # Waits for a rebuild to commit; the next statement then reads the baselines it left.
        cursor.execute(f"LOCK TABLE {n.usage} IN ROW EXCLUSIVE MODE")
        cursor.execute(
            f"WITH taken AS (DELETE FROM {n.pending} RETURNING audit_id), "
            f"queued AS (SELECT a.* FROM {n.audit} a JOIN taken t ON t.audit_id = a.id) "
            + _count_sql(_audit_source("1 = 1", source="queued"), add=True))

    def recount(self, cursor, *, whole: bool, tools: list[str] | None) -> tuple[str, list]:
        # Folds and the update/delete triggers wait until the rebuild commits; audit inserts
        # only queue, and queued rows are the fold's, not the rebuild's.
        n = sql.names()
        cursor.execute(f"LOCK TABLE {n.usage} IN SHARE ROW EXCLUSIVE MODE")
        return f"NOT EXISTS (SELECT 1 FROM {n.pending} p WHERE p.audit_id = a.id)", []

    def statements(self, name: str) -> list[str]:
        d, n = dialect(), sql.names()
        columns = ("created", "tool", "user_id", "username", "department", "success", "replayed", "duration_ms",
                   "via")
        old, new = (", ".join(f"{row}.{c}" for c in columns) for row in ("OLD", "NEW"))
        return [
            # Counts or un-counts one row directly. ROW EXCLUSIVE before reading the baseline: a
            # rebuild holds SHARE ROW EXCLUSIVE while it recounts, so this either finishes before
            # the rebuild reads the audit rows or reads the baseline after the rebuild committed.
            f"""CREATE FUNCTION {name}_apply(p_created timestamptz, p_tool text, p_user_id bigint, p_username text,
    p_department text, p_success boolean, p_replayed boolean, p_duration_ms bigint, p_via text, p_sign integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_day date := {d.utc_day("p_created")};
    v_month date := {d.utc_month("p_created")};
    v_saved bigint := 0;
    v_ok integer := CASE WHEN p_success THEN 1 ELSE 0 END;
BEGIN
    IF p_replayed OR p_tool IN ({', '.join(map(quote_literal, ENVELOPE_TOOLS))}) THEN
        RETURN;
    END IF;
    LOCK TABLE {n.usage} IN ROW EXCLUSIVE MODE;
    IF p_via = {quote_literal(NOT_COUNTED_VIA)} THEN
        -- A record of a one-off migration: counted apart, saving nothing.
        IF p_sign > 0 THEN
            {n.insert} VALUES
                ('{MIGRATION_DAY}', v_day, p_tool, COALESCE(p_user_id, 0), p_username, p_department, 1, v_ok, 0)
            {n.add};
        ELSE
            UPDATE {n.usage} SET operations = operations - 1, successful = successful - v_ok
            WHERE user_pk = COALESCE(p_user_id, 0) AND username = p_username AND department = p_department
              AND level = '{MIGRATION_DAY}' AND period_start = v_day AND tool = p_tool;
        END IF;
        RETURN;
    END IF;
    IF p_success THEN
        v_saved := GREATEST(0, COALESCE((SELECT b.seconds FROM {n.baseline} b WHERE b.tool = p_tool
                                         AND b.effective_from <= v_day ORDER BY b.effective_from DESC LIMIT 1),
                                        0)::bigint * 1000 - p_duration_ms);
    END IF;
    IF p_sign > 0 THEN
        {n.insert} VALUES
            ('{DAY}', v_day, '', COALESCE(p_user_id, 0), p_username, p_department, 1, v_ok, v_saved),
            ('{TOOL_DAY}', v_day, p_tool, COALESCE(p_user_id, 0), p_username, p_department, 1, v_ok, v_saved),
            ('{TOOL_MONTH}', v_month, p_tool, COALESCE(p_user_id, 0), p_username, p_department, 1, v_ok, v_saved)
        {n.add};
    ELSE
        -- An UPDATE, never an upsert: see the SQLite triggers.
        UPDATE {n.usage} SET operations = operations - 1, successful = successful - v_ok,
            saved_ms = saved_ms - v_saved
        WHERE user_pk = COALESCE(p_user_id, 0) AND username = p_username AND department = p_department
          AND ((level = '{TOOL_DAY}' AND period_start = v_day AND tool = p_tool)
            OR (level = '{TOOL_MONTH}' AND period_start = v_month AND tool = p_tool)
            OR (level = '{DAY}' AND period_start = v_day AND tool = ''));
    END IF;
END $$""",
            # Once per statement over its new rows (a transition table): an import's INSERT of
            # 5,000 audit rows queues them with one INSERT ... SELECT, not 5,000 trigger calls.
            f"""CREATE FUNCTION {name}_queue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {n.pending} (audit_id) SELECT a.id FROM {name}_new a WHERE {sql.operation('a')};
    RETURN NULL;
END $$""",
            # A row still queued is counted by the fold as it is then: just keep the queue right.
            # A row already counted is un-counted as it was, and counted as it is now.
            f"""CREATE FUNCTION {name}_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_queued boolean;
BEGIN
    DELETE FROM {n.pending} WHERE audit_id = OLD.id;
    v_queued := FOUND;
    IF TG_OP = 'DELETE' AND {d.utc_day("OLD.created")} < (SELECT h.day FROM {n.horizon} h WHERE h.id = 1) THEN
        -- A day before the horizon, whose audit rows are being pruned: it keeps its figures.
        -- A row counted stays counted; a row still queued is counted as it goes.
        IF v_queued THEN
            PERFORM {name}_apply({old}, 1);
        END IF;
        RETURN NULL;
    END IF;
    IF NOT v_queued THEN
        PERFORM {name}_apply({old}, -1);
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF NOT v_queued THEN
            PERFORM {name}_apply({new}, 1);
        ELSIF {sql.operation('NEW')} THEN
            INSERT INTO {n.pending} (audit_id) VALUES (NEW.id);
        END IF;
    END IF;
    RETURN NULL;
END $$""",
            f"""CREATE FUNCTION {name}_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {n.usage};
    DELETE FROM {n.pending};
    RETURN NULL;
END $$""",
            f"CREATE TRIGGER {name}_ins AFTER INSERT ON {n.audit} REFERENCING NEW TABLE AS {name}_new "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}_queue()",
            f"CREATE TRIGGER {name}_chg AFTER UPDATE OR DELETE ON {n.audit} FOR EACH ROW "
            f"EXECUTE FUNCTION {name}_change()",
            f"CREATE TRIGGER {name}_trunc AFTER TRUNCATE ON {n.audit} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {name}_truncate()",
        ]

    def reset(self, cursor) -> None:
        # Without the triggers, nothing queued is to be trusted: the rebuild counts it all.
        cursor.execute(f"DELETE FROM {sql.names().pending}")


_STRATEGIES: dict[type, _Watermark | _Queue] = {SQLite: _Watermark(), PostgreSQL: _Queue()}


def _strategy() -> _Watermark | _Queue:
    return _STRATEGIES[type(dialect())]


# --- Installing the triggers.

def _definition() -> tuple[str, list[str], set[str]]:
    """(name, statements, trigger names) of the current definition for this database."""
    strategy = _strategy()
    name = PREFIX + hashlib.sha256("\n".join(strategy.statements(PREFIX)).encode()).hexdigest()[:10]
    return name, strategy.statements(name), {f"{name}_{suffix}" for suffix in strategy.suffixes}


def _installed_triggers(cursor) -> set[str]:
    return dialect().trigger_names(cursor, AUDIT, PREFIX)


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
        dialect().drop_triggers(cursor, AUDIT, present, PREFIX)
        _strategy().reset(cursor)
        for statement in statements:
            cursor.execute(statement)
        _rebuild(cursor, None)
    log.info("ROI rollup triggers %s installed; rollup rebuilt from the audit rows", name)
    return True
