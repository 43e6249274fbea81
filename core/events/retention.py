"""Retention of the event store (README "Retention"): events older than RETENTION_EVENTS_DAYS.

An event is kept, however old, while it has not been fanned out (the dispatcher's sweep still
has to match it) and while any row refers to it: a webhook delivery, whatever its status,
reads its payload from the event. Deliveries have their own retention, so their events follow
them out. The referring models are found through Event's reverse relations, so this area
needs to know none of the areas built on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet

from core.events.models import Event
from core.retention import older_than, prune_rows


def prunable(now: datetime, *, referrers_going: Iterable[QuerySet] = ()) -> QuerySet:
    """Events past retention, fanned out, and referred to by nothing. Rows of `referrers_going`
    (querysets of referring models) do not count: a dry run passes what the same pass would
    delete before it reaches the events."""
    going = {rows.model: rows for rows in referrers_going}
    condition = Q(created__lt=older_than(now, days=settings.RETENTION_EVENTS_DAYS), fanned_out=True)
    for relation in _referrers():
        model = relation.related_model
        refs = model._base_manager.filter(**{relation.field.name: OuterRef("pk")})
        if model in going:
            refs = refs.exclude(pk__in=going[model].values("pk"))
        condition &= ~Exists(refs)
    return Event.objects.filter(condition)


def _referrers() -> list:
    """The foreign keys to Event, hidden ones (related_name="+") included."""
    return [f for f in Event._meta.get_fields(include_hidden=True)
            if f.auto_created and not f.concrete and (f.one_to_many or f.one_to_one)]


def prune_events(now: datetime, *, dry_run: bool, chunk_size: int,
                 referrers_going: Iterable[QuerySet] = ()) -> dict[str, int]:
    # By key: events kept for a delivery are skipped once per pass, not once per chunk.
    return prune_rows(prunable(now, referrers_going=referrers_going), chunk_size=chunk_size, dry_run=dry_run,
                      keyset=True)
