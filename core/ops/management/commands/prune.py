"""Delete what is past retention now, as the hourly schedule does (README "Retention")."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.ops.prune import prune


class Command(BaseCommand):
    help = ("Delete events, webhook deliveries, idempotency records, batch runs, import files and row "
            "errors, task results (and audit rows, if AUDIT_RETENTION_DAYS is set) past their retention; "
            "prints the rows per table.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
        parser.add_argument("--chunk-rows", type=int, default=None,
                            help="rows per DELETE, each in its own transaction (default: PRUNE_CHUNK_ROWS)")

    def handle(self, *args, dry_run: bool = False, chunk_rows: int | None = None, **options) -> None:
        if chunk_rows is not None and not 1 <= chunk_rows <= 10_000:
            raise CommandError("--chunk-rows must be 1..10000")
        outcome = prune(dry_run=dry_run, chunk_size=chunk_rows, raise_on_failure=False)
        verb = "would delete" if dry_run else "deleted"
        width = max(len(table) for table in outcome.counts) if outcome.counts else 0
        for table, rows in outcome.counts.items():
            self.stdout.write(f"{table:<{width}}  {verb} {rows}")
        if outcome.audit_kept:
            self.stdout.write("audit rows kept: AUDIT_RETENTION_DAYS is not set")
        self.stdout.write(f"{'dry run: ' if dry_run else ''}{outcome.total} rows in all")
        if outcome.failed:
            raise CommandError("; ".join(f"{step}: {error}" for step, error in outcome.failed.items()))
