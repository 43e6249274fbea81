"""django-q2 tasks of the imports area: short, idempotent, keyed by primary key."""

from __future__ import annotations

import logging

from core.imports import engine, services
from core.imports.readers import ImportFailure

log = logging.getLogger(__name__)


def run_import(job_pk: int) -> str:
    job = services.claim(job_pk)
    if job is None:
        return "not claimed (already running, done or cancelled)"
    try:
        engine.run(job)
    except engine.Cancelled:
        return "cancelled"
    except ImportFailure as failure:
        services.mark_failed(job.pk, f"{failure.code}: {failure.message}")
        return failure.code
    except Exception as exc:
        log.exception("import %s failed", job.job_id)
        services.mark_failed(job.pk, f"INTERNAL_ERROR: the import stopped unexpectedly ({type(exc).__name__}); "
                                     f"resume it to continue from the last committed batch")
        raise
    return "done"


def recover_stale_imports() -> dict[str, int]:
    return services.recover_stale()
