from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.accounts.models import ApiToken


class Command(BaseCommand):
    help = "Revoke API tokens by prefix (as shown in the admin) or all tokens of a user."

    def add_arguments(self, parser) -> None:
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--prefix")
        group.add_argument("--user")

    def handle(self, *args, prefix: str | None, user: str | None, **options) -> None:
        tokens = ApiToken.objects.active()
        tokens = tokens.filter(prefix=prefix) if prefix else tokens.filter(user__username=user)
        count = 0
        for token in tokens:
            token.revoke()
            count += 1
        if not count:
            raise CommandError("no active token matched")
        self.stdout.write(f"revoked {count} token(s)")
