"""Re-encrypt the stored webhook signing secrets under the first key of the keyring.

Run after putting a new key first in WEBHOOK_ENCRYPTION_KEYS; when it finishes, every key
but the first can be dropped. Nothing is written unless every secret decrypts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.db import write_slot
from core.webhooks import clock, crypto
from core.webhooks.models import Subscription


@dataclass
class Plan:
    changes: list[tuple[int, tuple[str, str], tuple[str, str]]] = field(default_factory=list)  # pk, old, new
    by_key: Counter[str] = field(default_factory=Counter)  # secrets per key that decrypts them
    current: int = 0  # already under the first key
    rotate: int = 0
    cleared: int = 0  # previous secrets past their grace period: never used again, so dropped
    undecryptable: list[str] = field(default_factory=list)  # "sub_… (current secret)"


def _plan(rows) -> Plan:
    ring, now, plan = crypto.keyring(), clock.now(), Plan()

    def rekey(sid: str, what: str, token: str) -> str:
        index = ring.index(token)
        if index is None:
            plan.undecryptable.append(f"{sid} ({what} secret)")
            return token
        plan.by_key[ring.labels[index]] += 1
        if index == 0:
            plan.current += 1
            return token
        plan.rotate += 1
        return ring.multi.rotate(token.encode()).decode()

    for pk, sid, token, previous, previous_expires in rows:
        new_token = rekey(sid, "current", token)
        new_previous = previous
        if previous and previous_expires and previous_expires > now:
            new_previous = rekey(sid, "previous", previous)
        elif previous:
            new_previous = ""
            plan.cleared += 1
        if (new_token, new_previous) != (token, previous):
            plan.changes.append((pk, (token, previous), (new_token, new_previous)))
    return plan


class Command(BaseCommand):
    help = ("Re-encrypt every stored webhook signing secret under the first key of WEBHOOK_ENCRYPTION_KEYS "
            "(the SECRET_KEY-derived key when it is unset). Exits non-zero, changing nothing, when a secret "
            "cannot be decrypted by any key.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true",
                            help="only count what would be re-encrypted and what no key decrypts")

    def handle(self, *args, dry_run: bool = False, **options) -> None:
        rows = Subscription.objects.order_by("pk").values_list(
            "pk", "subscription_id", "secret_encrypted", "previous_secret_encrypted", "previous_secret_expires")
        with write_slot(), transaction.atomic():
            plan = _plan((rows if dry_run else rows.select_for_update()).iterator(chunk_size=500))
            if dry_run:
                self._summary(plan, "would re-encrypt", "would be dropped")
                self.stdout.write(f"{len(plan.undecryptable)} cannot be decrypted by any key")
            if plan.undecryptable:
                listed = ", ".join(plan.undecryptable[:20]) + (" …" if len(plan.undecryptable) > 20 else "")
                raise CommandError(
                    f"{len(plan.undecryptable)} stored webhook secrets cannot be decrypted by any key ({listed}); "
                    "nothing was changed. Restore the key they were encrypted with, or delete those subscriptions "
                    "and subscribe again.")
            if dry_run:
                return
            for pk, (token, previous), (new_token, new_previous) in plan.changes:
                # Conditional, so a secret another process changed since it was read is never
                # overwritten with the re-encrypted old one.
                updated = Subscription.objects.filter(
                    pk=pk, secret_encrypted=token, previous_secret_encrypted=previous,
                ).update(secret_encrypted=new_token, previous_secret_encrypted=new_previous)
                if updated != 1:
                    raise CommandError("a subscription changed during the rotation; nothing was changed, run it again")
        self._summary(plan, "re-encrypted", "dropped")

    def _summary(self, plan: Plan, verb: str, dropped: str) -> None:
        line = (f"{verb} {plan.rotate} webhook secrets under {crypto.keyring().labels[0]} "
                f"({plan.current} already were")
        if plan.cleared:
            line += f"; {plan.cleared} expired previous secrets {dropped}"
        self.stdout.write(line + ")")
        for label, count in sorted(plan.by_key.items()):
            self.stdout.write(f"  {count} decrypted with {label}")
