"""SSRF: refused targets at subscribe time and again, after DNS, at send time."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from core.errors import ToolError
from core.webhooks import services, urlcheck
from core.webhooks.models import Delivery
from tests.waiting import wait_until
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
    # IPv6 addresses that embed an IPv4 address are judged by it.
    ("http://[2002:7f00:1::1]/hook", "loopback"),  # 6to4 of 127.0.0.1
    ("http://[2002:a9fe:a9fe::1]/hook", "link-local"),  # 6to4 of 169.254.169.254
    ("http://[2002:a00:1::1]/hook", "private"),  # 6to4 of 10.0.0.1
    ("http://[64:ff9b::7f00:1]/hook", "loopback"),  # NAT64 of 127.0.0.1
    ("http://[64:ff9b::a9fe:a9fe]/hook", "link-local"),  # NAT64 of 169.254.169.254
    ("http://[64:ff9b::c0a8:10a]/hook", "private"),  # NAT64 of 192.168.1.10
    ("http://[::127.0.0.1]/hook", "loopback"),  # IPv4-compatible
    ("http://[::10.1.2.3]/hook", "private"),  # IPv4-compatible
    ("http://[::ffff:10.1.2.3]/hook", "private"),  # IPv4-mapped
    ("http://[::ffff:169.254.169.254]/hook", "link-local"),  # IPv4-mapped
    # Refused whatever they embed.
    ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook", "Teredo"),  # public server and client
    ("http://[2001:0:7f00:1::]/hook", "Teredo"),  # server 127.0.0.1
    ("http://[64:ff9b:1::808:808]/hook", "local-use NAT64"),
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


@pytest.mark.parametrize("url", [
    "https://n8n.example.com/webhook/order",
    "http://93.184.216.34:8080/in?x=1",
    "http://[2002:5db8:d822::1]/hook",  # 6to4 of 93.184.216.34
    "http://[64:ff9b::5db8:d822]/hook",  # NAT64 of 93.184.216.34: an IPv6-only hub reaches it so
    "http://[::ffff:93.184.216.34]/hook",
    "http://[2606:4700:4700::1111]/hook",
])
def test_public_targets_are_accepted(db, settings, url):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    sub, _ = services.subscribe(event_type="*", webhook_url=url)
    assert sub.url == url


@pytest.mark.parametrize(("address", "embedded", "kind"), [
    ("2002:7f00:1::1", "127.0.0.1", "6to4"),
    ("64:ff9b::7f00:1", "127.0.0.1", "NAT64"),
    ("::7f00:1", "127.0.0.1", "IPv4-compatible"),
    ("::ffff:7f00:1", "127.0.0.1", "IPv4-mapped"),
])
def test_the_refusal_names_the_embedded_address(settings, address, embedded, kind):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    assert urlcheck.refusal(ipaddress.ip_address(address)) == (
        f"a loopback address ({embedded}, embedded in the {kind} address {address})")


def test_a_host_name_resolving_to_an_embedded_loopback_is_refused(db, settings, monkeypatch):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, **kw: [
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2002:7f00:1::1", port, 0, 0))])
    with pytest.raises(ToolError) as refused:
        services.subscribe(event_type="*", webhook_url="https://sneaky.example.com/hook")
    assert "loopback" in refused.value.message
    assert "sneaky.example.com resolves to 2002:7f00:1::1" in refused.value.message
    with pytest.raises(urlcheck.UrlRefused):
        urlcheck.resolve_for_send("https://sneaky.example.com/hook")


def test_an_allowed_network_opens_its_embedded_addresses_too(db, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("10.20.0.0/16")]
    services.subscribe(event_type="*", webhook_url="http://[::ffff:10.20.3.4]/hook")
    services.subscribe(event_type="*", webhook_url="http://[2002:a14:304::1]/hook")  # 6to4 of 10.20.3.4
    with pytest.raises(ToolError):
        services.subscribe(event_type="*", webhook_url="http://[2002:a15:304::1]/hook")  # 10.21.3.4
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("64:ff9b:1::/48")]
    services.subscribe(event_type="*", webhook_url="http://[64:ff9b:1::a00:1]/hook")


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
