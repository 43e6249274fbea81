"""`manage.py webhook_dispatcher`: the Procfile's dispatcher, with its heartbeat for the health check."""

from __future__ import annotations

import signal
import threading

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from core.ops.heartbeat import Beat, beat_in_background
from core.ops.models import Heartbeat
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
        beat = Beat(Heartbeat.Kind.DISPATCHER)
        beating = beat_in_background(beat, stop, lambda: {"state": "running"})
        self.stdout.write("webhook dispatcher running (Ctrl-C stops it)")
        try:
            dispatcher.run(stop)
        finally:
            stop.set()
            beating.join(5)
            beat.remove()
