"""Issue an API token; the raw token is the last word printed and is never stored."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.accounts.models import ApiToken
from core.accounts.roles import MCP_ROLES, ROLE_LEVEL, role_level
from core.accounts.services import create_user


class Command(BaseCommand):
    help = "Create an API token for USERNAME with the given role and print it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=MCP_ROLES)
        parser.add_argument("--create", action="store_true", help="create the user (with that role) if missing")
        parser.add_argument("--name", default="", help="a label to recognise the token by")

    @transaction.atomic
    def handle(self, *args, username: str, role: str, create: bool, name: str, **options) -> None:
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            if not create:
                raise CommandError(f"user {username!r} does not exist (pass --create to create it)")
            user = create_user(username, role)
        if role_level(user) < ROLE_LEVEL[role]:
            raise CommandError(f"user {username!r} does not hold role {role}; grant it first (Django admin)")
        _, raw = ApiToken.issue(user, role, name=name)
        self.stdout.write(f"API token for {username} ({role}), shown once: {raw}")
