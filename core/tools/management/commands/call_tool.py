"""Call one tool from the shell: prints its JSON output; on a tool error prints the error JSON
and exits with status 1.

Before it prints, the call's events are handed to the webhook subscriptions (the fan-out
otherwise runs on a background thread that would die with this short-lived process), so the
deliveries exist when the command returns."""

from __future__ import annotations

import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.errors import ToolError
from core.events import bus
from core.tools import jsonio
from core.tools.pipeline import call_tool


class Command(BaseCommand):
    help = "Call an ax_* tool as USERNAME and print its JSON output."

    def add_arguments(self, parser) -> None:
        parser.add_argument("tool")
        parser.add_argument("arguments", nargs="?", default="{}", help="the arguments as a JSON object")
        parser.add_argument("--user", required=True)
        parser.add_argument("--idempotency-key", default=None)

    def handle(self, *args, tool: str, arguments: str, user: str, idempotency_key: str | None, **options) -> None:
        account = get_user_model().objects.filter(username=user, is_active=True).first()
        if account is None:
            raise CommandError(f"no active user named {user!r}")
        try:
            parsed = jsonio.loads(arguments)
        except (ValueError, RecursionError) as exc:  # RecursionError: nesting too deep to parse
            self._fail(ToolError("INVALID_JSON", f"arguments are not valid JSON: {str(exc)[:200]}"))
        try:
            output = call_tool(tool, parsed, account, idempotency_key, via="cli")
        except ToolError as error:
            self._fail(error)
        finally:
            bus.drain()
        self.stdout.write(jsonio.dumps(output, indent=2))

    def _fail(self, error: ToolError) -> None:
        self.stdout.write(jsonio.dumps({"error": error.as_dict()}, indent=2))
        sys.exit(1)
