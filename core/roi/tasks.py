"""Periodic ROI work, run by django-q2 (scheduled after migrate, see core.roi.signals)."""

from __future__ import annotations

from core.roi import rollup


def fold_rollup() -> None:
    """Count new audit rows into the rollup, so that a metrics call finds little left to fold."""
    rollup.fold()
