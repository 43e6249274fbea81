from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand

from core.webhooks import dispatcher


class Command(BaseCommand):
    help = "Run the webhook dispatcher: enqueue due deliveries and retries, recover stalled ones."

    def handle(self, *args, **options) -> None:
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write("webhook dispatcher running (Ctrl-C stops it)")
        dispatcher.run(stop)
