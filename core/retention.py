"""Deleting old rows in bounded chunks: what every area's retention module builds on.

Each chunk is its own short transaction (on SQLite with the process's writer slot): select up
to `chunk_size` ids, delete the rows that refer to them, then the rows themselves, commit. So
SQLite's single writer lock is held for one chunk at a time and the calls of the hot path
queue behind a few milliseconds of pruning, never behind the whole backlog. On PostgreSQL the
chosen rows are locked (FOR UPDATE) for the chunk, so a concurrent change (a delivery retried)
either happens before the chunk and takes the row out of the selection, or waits for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import connection, models, transaction

from core.db import write_slot

# (model, column) of rows that refer to the pruned rows and go with them, e.g. (Attempt, "delivery_id").
Children = Sequence[tuple[type[models.Model], str]]


def older_than(now: datetime, *, days: int = 0, hours: int = 0) -> datetime:
    """The cutoff: rows whose timestamp is before it are past retention."""
    return now - timedelta(days=days, hours=hours)


def table(model: type[models.Model]) -> str:
    return model._meta.db_table


def prune_rows(rows: models.QuerySet, *, chunk_size: int, dry_run: bool, children: Children = (),
               keyset: bool = False) -> dict[str, int]:
    """Delete `rows` (and their `children`) chunk by chunk; return rows deleted per table, or with
    dry_run the rows that would be, deleting nothing.

    keyset=True walks the rows in primary-key order and never looks at an id twice: for a
    selection that skips rows it keeps (an event still referenced), which would otherwise be
    read again by every chunk."""
    model = rows.model
    counts = {table(model): 0, **{table(child): 0 for child, _ in children}}
    if dry_run:
        counts[table(model)] = rows.count()
        for child, column in children:
            counts[table(child)] = child._base_manager.filter(**{f"{column}__in": rows.values("pk")}).count()
        return counts
    # No ORDER BY unless walking by key: the selection's own index (created, finished, ...)
    # then finds the old rows, where an ORDER BY id could make SQLite walk the whole table.
    rows = rows.order_by("pk") if keyset else rows.order_by()
    last = bound = None
    if keyset:
        bound = rows.aggregate(bound=models.Max("pk"))["bound"]
        if bound is None:
            return counts
    while True:
        with write_slot(), transaction.atomic():
            chunk = rows if last is None else rows.filter(pk__gt=last)
            if bound is not None:
                chunk = chunk.filter(pk__lte=bound)
            ids = list(chunk.select_for_update().values_list("pk", flat=True)[:chunk_size])
            if not ids:
                break
            for child, column in children:
                counts[table(child)] += delete_where_in(child, column, ids)
            counts[table(model)] += delete_where_in(model, model._meta.pk.column, ids)
        if keyset:
            last = ids[-1]
        if len(ids) < chunk_size:
            break
    return counts


def delete_where_in(model: type[models.Model], column: str, values: list) -> int:
    """One DELETE of the rows whose `column` is one of `values`; returns how many went.

    Raw, so that Django's deletion collector does not load the rows first: the callers delete
    the referring rows themselves, in the order the foreign keys need."""
    if not values:
        return 0
    field_columns = {f.column for f in model._meta.concrete_fields}
    if column not in field_columns:
        raise ValueError(f"{table(model)} has no column {column!r}")
    quote = connection.ops.quote_name
    marks = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {quote(table(model))} WHERE {quote(column)} IN ({marks})", values)
        return cursor.rowcount
