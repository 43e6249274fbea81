"""Recompute the ROI rollup from the audit rows (after editing baselines or audit rows with raw SQL).

Once audit rows were pruned (AUDIT_RETENTION_DAYS), only the days from the first kept day on
are recomputed: the days before it have no audit rows left and keep their figures.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from core.roi import rollup
from core.roi.models import Usage


class Command(BaseCommand):
    help = "Recompute the ROI usage rollup from the audit rows; installs the triggers if they are missing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tool", action="append", help="only this tool (repeatable)")

    def handle(self, *args, tool: list[str] | None = None, **options) -> None:
        started = time.perf_counter()
        if not rollup.ensure_installed():  # a fresh install rebuilds everything anyway
            rollup.rebuild(tool)
        horizon = rollup.current_horizon()
        since = "" if horizon is None else f" from {horizon} on (the days before keep their figures: audit pruned)"
        self.stdout.write(f"rebuilt{since} in {time.perf_counter() - started:.1f} s: "
                          f"{Usage.objects.count()} rollup rows")
