from __future__ import annotations

import signal
import threading

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from core.webhooks import crypto, dispatcher


class Command(BaseCommand):
    help = "Run the webhook dispatcher: enqueue due deliveries and retries, recover stalled ones."

    def handle(self, *args, **options) -> None:
        try:
            crypto.check_stored_secrets()  # a lost key stops the dispatcher here, not delivery by delivery
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write("webhook dispatcher running (Ctrl-C stops it)")
        dispatcher.run(stop)
