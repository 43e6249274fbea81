"""django-q2 tasks of the tools area. Short, idempotent, keyed by primary key."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from core.tools import batch


def run_batch(run_pk: int) -> str:
    run = batch.claim(run_pk)
    if run is None:
        return "not claimed (already running or done)"
    _execute(run)
    return "done"


def resume_batch(run_pk: int) -> str:
    run = batch.claim(run_pk, stale_after=timedelta(seconds=settings.BATCH_STALE_SECONDS))
    if run is None:
        return "not claimed"
    _execute(run)
    return "resumed"


def _execute(run) -> None:
    try:
        batch.execute(run)
    except Exception as exc:
        batch.mark_failed(run.pk, f"{type(exc).__name__}: the batch stopped unexpectedly")
        raise


def recover_stale_batches() -> dict[str, int]:
    return batch.recover_stale()
