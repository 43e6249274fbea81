"""`manage.py worker`: the Procfile's worker, django-q2's cluster under supervision."""

from __future__ import annotations

import faulthandler
import signal
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
        # `kill -USR1 <pid>` prints every thread's stack to stderr: where a worker that does not
        # stop, or does not take tasks, is waiting. Its cluster's processes inherit it.
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        Supervisor(threading.Event()).run()
