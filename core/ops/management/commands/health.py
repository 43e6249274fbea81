"""`manage.py health`: one line per component; exit 0 when all are healthy, 1 when not."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand

from core.ops import health


class Command(BaseCommand):
    help = ("Check the database, the cache/Redis, the worker cluster (alive and taking tasks), the webhook "
            "dispatcher, the oldest queued task and the oldest due webhook delivery. Exit status 0: healthy.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the /healthz document instead")

    def handle(self, *args, as_json: bool = False, **options) -> None:
        report = health.check()
        if as_json:
            self.stdout.write(json.dumps(report.public(), indent=2))
        else:
            for line in report.lines():
                self.stdout.write(line)
        sys.exit(0 if report.ok else 1)
