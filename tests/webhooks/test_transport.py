"""How a failure to reach the receiver is classified, against real sockets on 127.0.0.1:
refused, reset and unreachable are `connection`; no answer in time is `timeout`."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from core.webhooks import transport
from core.webhooks.models import Attempt
from tests.waiting import wait_until
from tests.webhooks.helpers import order, subscribe


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}/hook"


def _post(port: int) -> transport.Result:
    return transport.post(_url(port), b"{}", {"webhook-id": "msg_test"})


@contextmanager
def _listening(backlog: int = 8) -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(backlog)
    try:
        yield server
    finally:
        server.close()


def _closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_refused_is_a_connection_error():
    result = _post(_closed_port())
    assert (result.status, result.error_class) == (None, "connection")
    assert "refused" in result.error.lower()


def test_connection_reset_is_a_connection_error():
    """The receiver reads the whole request, then aborts the connection (SO_LINGER 0 sends an RST)
    while the client waits for the answer."""
    with _listening() as server:
        def reset() -> None:
            conn, _ = server.accept()
            received = b""
            while not received.endswith(b"\r\n\r\n{}"):  # the headers, then the 2-byte body
                chunk = conn.recv(65536)
                if not chunk:
                    break
                received += chunk
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

        thread = threading.Thread(target=reset, daemon=True)
        thread.start()
        result = _post(server.getsockname()[1])
        thread.join(5)
    assert (result.status, result.error_class) == (None, "connection")
    assert "reset" in result.error.lower()


def test_no_answer_is_a_read_timeout(settings):
    """The kernel completes the handshake for a listening socket nobody accepts from, so the
    request goes out and the answer never comes."""
    settings.WEBHOOK_TIMEOUT_MS = 500
    with _listening() as server:
        result = _post(server.getsockname()[1])
    assert (result.status, result.error_class) == (None, "timeout")
    assert result.error == "no response within 500 ms"
    assert 450 <= result.duration_ms < 1500


def test_a_full_accept_queue_is_a_connect_timeout(settings):
    """With the accept queue of a backlog-0 socket full, Linux drops further SYNs, so a connect
    waits until the connect timeout. Skipped where the kernel refuses instead (tcp_abort_on_overflow)
    or never fills the queue."""
    settings.WEBHOOK_CONNECT_TIMEOUT_MS = 300
    fillers: list[socket.socket] = []
    with _listening(backlog=0) as server:
        port = server.getsockname()[1]
        try:
            for _ in range(16):
                filler = socket.socket()
                filler.settimeout(0.2)
                fillers.append(filler)
                try:
                    filler.connect(("127.0.0.1", port))
                except TimeoutError:
                    break  # this SYN was dropped: the queue is full
                except OSError as exc:
                    pytest.skip(f"the kernel answers a full accept queue with {exc!r}, not silence")
            else:
                pytest.skip("the accept queue never filled up")
            result = _post(port)
        finally:
            for filler in fillers:
                filler.close()
    assert (result.status, result.error_class) == (None, "timeout")
    assert result.error == "could not connect within 300 ms"


def test_unexpected_exceptions_classify_by_their_cause_not_their_text():
    from urllib3.exceptions import NewConnectionError, ProtocolError

    refused = NewConnectionError(None, "Failed to establish a new connection: timed out?")
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert transport.classify(refused)[0] == "connection"
    kernel_gave_up = NewConnectionError(None, "Failed to establish a new connection")
    kernel_gave_up.__cause__ = TimeoutError(110, "Connection timed out")
    assert transport.classify(kernel_gave_up)[0] == "timeout"
    assert transport.classify(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))[0] == \
        "connection"
    assert transport.classify(ProtocolError("Connection aborted.", TimeoutError("write timed out")))[0] == "timeout"


@pytest.mark.django_db(transaction=True)
def test_a_refused_delivery_is_logged_as_connection_and_retried(erp, writer, worker):
    subscribe(_url(_closed_port()), retry_policy={"max_retries": 1, "backoff_ms": 100})
    order(writer)
    worker.dispatch()
    attempt = wait_until(lambda: Attempt.objects.first())
    assert (attempt.number, attempt.error_class, attempt.status_code) == (1, "connection", None)
    assert attempt.delivery.status == "pending"  # connection errors are retried
