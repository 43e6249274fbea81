"""The one function that sends webhooks over HTTP: `post`, with explicit timeouts and no redirects.

It connects to the address that passed the URL check (the host name is kept for the Host
header and TLS), so a DNS answer that changes between check and connect cannot redirect a
request into a refused network. It never raises: every outcome is a `Result`.

A failure to reach the receiver is classified from the exception itself, never its text:
`connection` when the receiver said no (refused, reset, unreachable), `timeout` when it said
nothing in time (connect or read), `tls` for a failed handshake or certificate.
"""

from __future__ import annotations

import errno
import ssl
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import urllib3
from django.conf import settings
from django.utils import timezone
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)

from core.webhooks.urlcheck import UrlRefused, resolve_for_send

EXCERPT_CHARS = 1000
_READ_LIMIT = 64 * 1024
USER_AGENT = "AX-Integration-Hub-Webhooks/1.0"

_pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}
_pools_lock = threading.Lock()


@dataclass(frozen=True)
class Result:
    status: int | None
    duration_ms: int
    error_class: str = ""  # "" on success; timeout, connection, dns, tls, url_refused, http_4xx, http_5xx, …
    error: str = ""
    excerpt: str = ""
    retry_after: float | None = None  # seconds, from a Retry-After header

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _pool(scheme: str, ip: str, port: int, host: str) -> urllib3.HTTPConnectionPool:
    key = (scheme, ip, port, host)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            if scheme == "https":
                pool = urllib3.HTTPSConnectionPool(ip, port, maxsize=32, block=False, server_hostname=host,
                                                   assert_hostname=host, cert_reqs="CERT_REQUIRED")
            else:
                pool = urllib3.HTTPConnectionPool(ip, port, maxsize=32, block=False)
            if len(_pools) > 500:  # many endpoints over a long life: start over rather than grow
                _pools.clear()
            _pools[key] = pool
    return pool


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def _causes(exc: BaseException) -> list[BaseException]:
    """exc and what it wraps, outermost first: the explicit cause or context, and the exception
    urllib3 passes as an argument (ProtocolError("Connection aborted.", OSError(...)))."""
    found: list[BaseException] = []
    todo = [exc]
    while todo and len(found) < 10:
        current = todo.pop(0)
        if current in found:
            continue
        found.append(current)
        todo += [arg for arg in current.args if isinstance(arg, BaseException)]
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    return found


def classify(exc: BaseException) -> tuple[str, str]:
    """(error_class, error) for a failure to get an answer. urllib3's NewConnectionError (refused,
    unreachable, reset while connecting) derives from ConnectTimeoutError, so it has to be told
    apart before the timeouts are; a socket error inside it counts as a timeout only when the
    kernel gave up waiting (ETIMEDOUT)."""
    for cause in _causes(exc):
        if isinstance(cause, NewConnectionError):
            os_error = next((e for e in _causes(cause) if isinstance(e, OSError)), None)
            if isinstance(os_error, TimeoutError) or getattr(os_error, "errno", None) == errno.ETIMEDOUT:
                return "timeout", f"could not connect in time: {os_error}"
            return "connection", f"could not connect: {os_error or cause}"
        if isinstance(cause, ConnectTimeoutError):
            connect_ms = min(settings.WEBHOOK_CONNECT_TIMEOUT_MS, settings.WEBHOOK_TIMEOUT_MS)
            return "timeout", f"could not connect within {connect_ms} ms"
        if isinstance(cause, ReadTimeoutError):
            return "timeout", f"no response within {settings.WEBHOOK_TIMEOUT_MS} ms"
        if isinstance(cause, SSLError | ssl.SSLError):
            return "tls", f"TLS failed: {cause}"
        if isinstance(cause, TimeoutError) or getattr(cause, "errno", None) == errno.ETIMEDOUT:
            return "timeout", f"timed out: {cause}"
        if isinstance(cause, OSError) and cause.errno is not None:
            return "connection", f"connection failed: {cause}"
    # E.g. the receiver closed the connection without answering (urllib3's ProtocolError).
    return "connection", f"connection failed: {exc}"


def post(url: str, body: bytes, headers: dict[str, str]) -> Result:
    """POST body to url. Connect timeout WEBHOOK_CONNECT_TIMEOUT_MS, whole exchange WEBHOOK_TIMEOUT_MS."""
    started = time.perf_counter()
    total = settings.WEBHOOK_TIMEOUT_MS / 1000
    deadline = started + total

    def done(status: int | None, error_class: str = "", error: str = "", excerpt: str = "",
             retry_after: float | None = None) -> Result:
        return Result(status, int((time.perf_counter() - started) * 1000), error_class, error[:500],
                      excerpt[:EXCERPT_CHARS], retry_after)

    try:
        target, ip = resolve_for_send(url)
    except UrlRefused as exc:
        return done(None, "url_refused", str(exc))
    except (OSError, UnicodeError) as exc:
        return done(None, "dns", f"could not resolve the host: {exc}")
    timeout = urllib3.Timeout(connect=min(settings.WEBHOOK_CONNECT_TIMEOUT_MS / 1000, total), read=total)
    all_headers = {"Host": target.host_header, "Content-Type": "application/json", "User-Agent": USER_AGENT,
                   **headers}
    try:
        response = _pool(target.scheme, str(ip), target.port, target.host).urlopen(
            "POST", target.path, body=body, headers=all_headers, redirect=False, retries=False, timeout=timeout,
            preload_content=False, assert_same_host=False)
        try:
            chunks, size = [], 0
            while size < _READ_LIMIT:
                if time.perf_counter() > deadline:
                    return done(response.status, "timeout", f"the response took longer than {total:g} s")
                chunk = response.read(8192)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            response.release_conn() if size < _READ_LIMIT else response.close()
    except (HTTPError, OSError) as exc:
        error_class, error = classify(exc)
        return done(None, error_class, error)
    status = response.status
    excerpt = b"".join(chunks).decode("utf-8", errors="replace")
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    if 200 <= status < 300:
        return done(status, excerpt=excerpt)
    if 300 <= status < 400:
        return done(status, "http_3xx", f"HTTP {status}: redirects are not followed", excerpt)
    error_class = "http_429" if status == 429 else f"http_{status // 100}xx"
    return done(status, error_class, f"HTTP {status}", excerpt, retry_after)
