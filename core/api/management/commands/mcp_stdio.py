"""Serve the MCP tools over stdio as USERNAME (for agents that start the hub themselves).

Nothing else may write to stdout while serving: it is the protocol stream.
"""

from __future__ import annotations

import anyio
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.api.mcp import serve_stdio
from core.events import bus


class Command(BaseCommand):
    help = "Serve the ax_* tools over MCP stdio as USERNAME."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", required=True)

    def handle(self, *args, user: str, **options) -> None:
        account = (get_user_model().objects.select_related("profile__department")
                   .filter(username=user, is_active=True).first())
        if account is None:
            raise CommandError(f"no active user named {user!r}")
        try:
            anyio.run(serve_stdio, account)
        finally:
            bus.drain()  # the last calls' events reach their subscriptions before the process exits
