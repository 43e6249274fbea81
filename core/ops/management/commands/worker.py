"""`manage.py worker`: the Procfile's worker, django-q2's cluster under supervision."""

from __future__ import annotations

import threading

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from core.imports.readers import preload
from core.ops.supervisor import Supervisor
from core.webhooks.crypto import check_stored_secrets


class Command(BaseCommand):
    help = ("Run the task workers (django-q2 cluster) and keep them taking tasks: a cluster that stops "
            "taking tasks is restarted; SIGTERM stops it within WORKER_STOP_GRACE_SECONDS.")

    def handle(self, *args, **options) -> None:
        try:
            check_stored_secrets()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        preload()  # before the cluster forks its workers, which inherit the loaded modules
        Supervisor(threading.Event()).run()
