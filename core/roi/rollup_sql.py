"""The rollup's SQL vocabulary (core/roi/rollup.py): its tables, which audit rows count, the
baseline in force on an audit row's day, and counting one audit row in or out (the bodies of the
SQLite triggers). Fragments only: rollup.py runs them."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.db import connection

from core.audit.models import AuditEntry
from core.dialect import dialect, quote_literal
from core.roi.models import Baseline, Horizon, Pending, Usage, Watermark

# Tools whose call only wraps other audited calls: counting them as well would count the work
# twice. ax_bulk_import audits each imported record as import.<type>.
ENVELOPE_TOOLS = ("ax_batch_operations", "ax_bulk_import")

# Audit rows of records a one-off migration imported (ax_bulk_import with roi false): real
# work of the hub, but not manual work it saves again and again.
NOT_COUNTED_VIA = "migration"

AUDIT = AuditEntry._meta.db_table
USAGE = Usage._meta.db_table
BASELINE = Baseline._meta.db_table
WATERMARK = Watermark._meta.db_table
PENDING = Pending._meta.db_table
HORIZON = Horizon._meta.db_table
KEY = "level, period_start, tool, user_pk, username, department"
TOTALS = ("operations", "successful", "saved_ms")
TOOL_DAY, TOOL_MONTH, DAY = Usage.Level.TOOL_DAY.value, Usage.Level.TOOL_MONTH.value, Usage.Level.DAY.value
MIGRATION_DAY = Usage.Level.MIGRATION_DAY.value
COUNTED_LEVELS = (TOOL_DAY, TOOL_MONTH, DAY)


@dataclass(frozen=True)
class Names:
    """The tables, quoted through the connection, and the rollup's insert column list."""

    audit: str
    usage: str
    baseline: str
    watermark: str
    pending: str
    horizon: str
    insert: str  # INSERT INTO usage (key..., totals...)
    add: str  # ON CONFLICT (key) DO UPDATE SET of an upsert that adds


@functools.cache
def names() -> Names:
    quote = connection.ops.quote_name
    usage = quote(USAGE)
    return Names(audit=quote(AUDIT), usage=usage, baseline=quote(BASELINE), watermark=quote(WATERMARK),
                  pending=quote(PENDING), horizon=quote(HORIZON),
                  insert=f"INSERT INTO {usage} ({KEY}, {', '.join(TOTALS)})",
                  add=f"ON CONFLICT ({KEY}) DO UPDATE SET {dialect().add_excluded(usage, TOTALS)}")


def operation(row: str) -> str:
    """An audit row that is an operation of its own: not a replay, not an envelope."""
    return f"NOT {row}.replayed AND {row}.tool NOT IN ({', '.join(map(quote_literal, ENVELOPE_TOOLS))})"


def counted(row: str) -> str:
    return f"{operation(row)} AND {row}.via <> {quote_literal(NOT_COUNTED_VIA)}"


def migration(row: str) -> str:
    """An operation ROI leaves out: a record of a one-off migration (counted in MIGRATION_DAY)."""
    return f"{operation(row)} AND {row}.via = {quote_literal(NOT_COUNTED_VIA)}"


def in_force(row: str) -> str:
    """SQL: the baseline seconds in force on the UTC day of one audit row (0 without one), by an
    index seek on (tool, effective_from)."""
    day = dialect().utc_day(f"{row}.created")
    return (f"COALESCE((SELECT b.seconds FROM {names().baseline} b WHERE b.tool = {row}.tool "
            f"AND b.effective_from <= {day} ORDER BY b.effective_from DESC LIMIT 1), 0)")


def periods() -> str:
    """SQL: each baseline with the day its successor takes over (NULL: still in force)."""
    return (f"(SELECT tool, seconds, effective_from AS since, LEAD(effective_from) OVER "
            f"(PARTITION BY tool ORDER BY effective_from) AS until FROM {names().baseline})")


def saved(row: str, baseline_seconds: str) -> str:
    return (f"CASE WHEN {row}.success THEN {dialect().greatest}(0, {baseline_seconds} * 1000 - {row}.duration_ms) "
            "ELSE 0 END")


def add_row(row: str) -> str:
    """SQL (SQLite trigger body): count one audit row in (a counted one, or a migration record)."""
    d, n = dialect(), names()
    day, month = d.utc_day(row + ".created"), d.utc_month(row + ".created")
    who = f"COALESCE({row}.user_id, 0), {row}.username, {row}.department, 1, CASE WHEN {row}.success THEN 1 ELSE 0 END"
    rest = f"{who}, {saved(row, in_force(row))}"
    # INSERT ... SELECT ... WHERE: each statement writes only for the kind of row it is for
    # (SQLite needs the WHERE before an upsert's ON CONFLICT anyway).
    return (f"{n.insert} SELECT '{DAY}', {day}, '', {rest} WHERE {counted(row)} "
            f"UNION ALL SELECT '{TOOL_DAY}', {day}, {row}.tool, {rest} WHERE {counted(row)} "
            f"UNION ALL SELECT '{TOOL_MONTH}', {month}, {row}.tool, {rest} WHERE {counted(row)} "
            f"UNION ALL SELECT '{MIGRATION_DAY}', {day}, {row}.tool, {who}, 0 WHERE {migration(row)} "
            f"{n.add};")


def remove_row(row: str) -> str:
    """SQL (SQLite trigger body): count one audit row out (a counted one, or a migration record)."""
    # An UPDATE, never an upsert: when the rollup was emptied first (a test database flush
    # deletes table by table), un-counting finds nothing instead of leaving negative rows.
    d, n = dialect(), names()
    day, month = d.utc_day(row + ".created"), d.utc_month(row + ".created")
    return (f"UPDATE {n.usage} SET operations = operations - 1, "
            f"successful = successful - (CASE WHEN {row}.success THEN 1 ELSE 0 END), "
            f"saved_ms = saved_ms - (CASE WHEN level = '{MIGRATION_DAY}' THEN 0 "
            f"ELSE {saved(row, in_force(row))} END) "
            f"WHERE user_pk = COALESCE({row}.user_id, 0) AND username = {row}.username "
            f"AND department = {row}.department AND ((({counted(row)}) AND ((level = '{TOOL_DAY}' "
            f"AND period_start = {day} AND tool = {row}.tool) OR (level = '{TOOL_MONTH}' AND period_start = {month} "
            f"AND tool = {row}.tool) OR (level = '{DAY}' AND period_start = {day} AND tool = ''))) "
            f"OR (({migration(row)}) AND level = '{MIGRATION_DAY}' AND period_start = {day} "
            f"AND tool = {row}.tool));")
