"""Recompute the ROI rollup from the audit rows (after editing baselines or audit rows with raw SQL)."""

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
        self.stdout.write(f"rebuilt in {time.perf_counter() - started:.1f} s: {Usage.objects.count()} rollup rows")
