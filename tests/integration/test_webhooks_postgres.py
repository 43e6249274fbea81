"""Webhooks on PostgreSQL: two dispatchers claim from one queue and never send a row twice.

Run with `make test-integration` (DATABASE_URL=postgres://…/test REDIS_URL=redis://…/15).
"""

from __future__ import annotations

import ipaddress
import threading
from collections import Counter

import pytest
from django.conf import settings
from django.db import connection

from core.events import bus
from core.webhooks import dispatcher, services
from core.webhooks.models import Delivery
from tests.waiting import wait_until
from tests.webhooks.receiver import serve

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

if "postgresql" not in settings.DATABASES["default"]["ENGINE"] or not settings.REDIS_URL:
    pytest.skip("needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL); run `make test-integration`",
                allow_module_level=True)


def test_two_dispatchers_share_the_queue_without_double_sends(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    settings.WEBHOOK_TASK_BATCH = 5  # many small claims, so the two dispatchers interleave
    with serve() as receiver:
        sub, _ = services.subscribe(event_type="*", webhook_url=receiver.url)
        services.update(sub, status="paused")
        bus.publish_many("customer.created", [{"customer_account": f"C-{n}"} for n in range(300)])
        services.update(sub, status="active")
        stop = threading.Event()

        def run() -> None:
            try:
                dispatcher.run(stop)
            finally:
                connection.close()

        threads = [threading.Thread(target=run, daemon=True) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            receiver.wait_for(300, timeout=60)
            wait_until(lambda: Delivery.objects.filter(status="succeeded").count() == 300, timeout=30)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
        assert len(ids) == 300 and max(ids.values()) == 1


def test_the_fan_out_commits_without_waiting_for_the_disk_and_a_lost_one_is_swept_again(settings):
    """Its commit is not flushed (synchronous_commit off for that transaction only); losing it is
    the same as the fan-out never having run, which the sweep makes good."""
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext

    from core.events.models import Event
    from core.webhooks import fanout

    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    settings.EVENTS_FANOUT_IN_BACKGROUND = False
    services.subscribe(event_type="customer.*", webhook_url="http://127.0.0.1:9/hook", user=None)
    bus.publish("customer.updated", {"customer_account": "CUST-001"})
    event = Event.objects.latest("id")
    Event.objects.filter(pk=event.pk).update(fanned_out=False)  # as if the fan-out's commit was lost
    Delivery.objects.filter(event=event).delete()
    with CaptureQueriesContext(connection) as queries:
        assert fanout.fan_out([event.event_id]) == 1
    assert "synchronous_commit" in [q["sql"] for q in queries if q["sql"] != "BEGIN"][0]
    with connection.cursor() as cursor:  # only that transaction: the next one flushes again
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    with transaction.atomic():
        assert Event.objects.get(pk=event.pk).fanned_out
    assert Delivery.objects.filter(event=event).count() == 1
