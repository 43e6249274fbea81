"""Where webhooks may go: http(s) URLs whose every address is public, unless an operator allows
a network (WEBHOOK_ALLOWED_NETWORKS). Checked at subscribe time and again, after DNS, on each send.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

MAX_URL_LENGTH = 2000
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# IPv6 ranges that carry an IPv4 address (README "Webhooks"). Packets to them reach that IPv4
# address through a translator or tunnel, so such an address is judged as the IPv4 address it
# embeds: 2002:7f00:1::1 (6to4) is 127.0.0.1.
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # ::a.b.c.d, deprecated (RFC 4291)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known NAT64 prefix (RFC 6052)
# Refused whatever they embed: where the IPv4 address sits in a local-use NAT64 prefix
# (RFC 8215) depends on the operator's prefix length, and Teredo (RFC 4380) tunnels to a client
# behind a NAT through a relay, both out of the hub's sight.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_TEREDO = ipaddress.ip_network("2001::/32")


class UrlRefused(Exception):
    """The URL or an address it resolves to is not a permitted webhook target."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written, lower case, without brackets
    port: int
    path: str  # path and query, never empty

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse(url: str) -> Target:
    if not isinstance(url, str) or not url.strip():
        raise UrlRefused("webhook_url is empty")
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"webhook_url is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise UrlRefused("webhook_url must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"webhook_url is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused("webhook_url must use http or https")
    if not parts.hostname:
        raise UrlRefused("webhook_url has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("webhook_url must not carry credentials; receivers authenticate by the signature")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, parts.hostname.lower().rstrip("."), port or (443 if scheme == "https" else 80), path)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address stands for, and what kind of address says so."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # :: and ::1 are IPv6's own unspecified and loopback
        return ipaddress.IPv4Address(int(ip)), "IPv4-compatible"
    return None


def refusal(ip: IPAddress) -> str | None:
    """Why an address is refused, or None when it may be used."""
    if any(ip in network for network in settings.WEBHOOK_ALLOWED_NETWORKS):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _TEREDO:
            return "a Teredo tunnel address"
        if ip in _NAT64_LOCAL:
            return "a local-use NAT64 address"
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            ipv4, kind = embedded
            why = refusal(ipv4)
            return None if why is None else f"{why} ({ipv4}, embedded in the {kind} address {ip})"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (e.g. cloud metadata)"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a carrier-grade NAT address"
    if ip.is_private:
        return "a private or reserved address"
    if not ip.is_global or ip.is_reserved:
        return "a reserved address"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(target: Target) -> list[IPAddress]:
    """Every address of the target's host (raises socket.gaierror when it does not resolve)."""
    literal = _literal(target.host)
    if literal is not None:
        return [literal]
    infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    seen: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if ip not in seen:
            seen.append(ip)
    return seen


def check_addresses(target: Target, addresses: list[IPAddress]) -> None:
    for ip in addresses:
        why = refusal(ip)
        if why is not None:
            shown = "" if str(ip) == target.host else f" ({target.host} resolves to {ip})"
            raise UrlRefused(f"webhook_url points to {why}{shown}; add its network to WEBHOOK_ALLOWED_NETWORKS "
                             f"to allow it")


def check_for_subscribe(url: str) -> str:
    """Refuse a URL that is malformed or points into a refused range; returns it normalised (stripped).

    A host name that does not resolve yet is accepted: every send resolves and checks again.
    """
    target = parse(url.strip())
    if target.host == "localhost" or target.host.endswith(".localhost"):
        check_addresses(target, [ipaddress.ip_address("127.0.0.1")])
    try:
        addresses = resolve(target)
    except (OSError, UnicodeError):
        return url.strip()
    check_addresses(target, addresses)
    return url.strip()


def resolve_for_send(url: str) -> tuple[Target, IPAddress]:
    """The target and the checked address to connect to (never re-resolved, so no DNS rebinding)."""
    target = parse(url)
    addresses = resolve(target)
    if not addresses:
        raise socket.gaierror(f"{target.host} has no address")
    check_addresses(target, addresses)
    return target, addresses[0]
