"""SSRF: refused targets at subscribe time and again, after DNS, at send time."""

from __future__ import annotations

import ipaddress

import pytest

from core.errors import ToolError
from core.webhooks import services
from core.webhooks.models import Delivery
from tests.webhooks.conftest import wait_until
from tests.webhooks.helpers import order, subscribe

REFUSED = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://localhost:8080/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://10.1.2.3/hook", "private"),
    ("http://172.16.0.1/hook", "private"),
    ("http://192.168.1.10/hook", "private"),
    ("http://[fd00::1]/hook", "private"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://100.64.0.1/hook", "carrier-grade NAT"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://192.0.2.10/hook", "reserved"),  # TEST-NET-1, documentation only
    ("ftp://example.com/hook", "http or https"),
    ("file:///etc/passwd", "http or https"),
    ("http://user:pw@example.com/hook", "credentials"),
    ("http:///hook", "no host"),
    ("http://example.com:99999/hook", "valid URL"),
    ("http://exa mple.com/hook", "whitespace"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED)
def test_refused_at_subscribe_time(db, settings, url, why):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    with pytest.raises(ToolError) as refused:
        services.subscribe(event_type="*", webhook_url=url)
    assert refused.value.code == "VALIDATION_ERROR" and refused.value.field == "webhook_url"
    assert why in refused.value.message


@pytest.mark.parametrize("url", ["https://n8n.example.com/webhook/order", "http://93.184.216.34:8080/in?x=1"])
def test_public_targets_are_accepted(db, settings, url):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    sub, _ = services.subscribe(event_type="*", webhook_url=url)
    assert sub.url == url


def test_allowed_networks_let_an_operator_open_a_private_range(db, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("10.20.0.0/16")]
    services.subscribe(event_type="*", webhook_url="http://10.20.3.4/hook")
    with pytest.raises(ToolError):
        services.subscribe(event_type="*", webhook_url="http://10.21.3.4/hook")


@pytest.mark.django_db(transaction=True)
def test_checked_again_at_send_time(erp, writer, receiver, worker, settings):
    subscribe(receiver.url)  # allowed now (127.0.0.0/8) ...
    settings.WEBHOOK_ALLOWED_NETWORKS = []  # ... and no longer when the event is sent
    order(writer)
    worker.dispatch()
    delivery = wait_until(lambda: Delivery.objects.filter(status="failed").first())
    attempt = delivery.attempt_rows.get()
    assert attempt.error_class == "url_refused" and "loopback" in attempt.error
    assert receiver.requests == []
