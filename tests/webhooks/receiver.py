"""A real HTTP receiver on 127.0.0.1 (a thread), for webhook tests and the benchmark.

Each request is recorded (arrival time, headers, body). What it answers is decided by a
`respond(request_number, headers, body)` callable returning (status, headers, body[, delay]).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    at: float  # time.time() at arrival
    path: str
    headers: dict[str, str]
    body: bytes


Response = tuple  # (status, headers dict, body bytes[, delay seconds])


def ok(n: int, headers: dict[str, str], body: bytes) -> Response:
    return 200, {}, b'{"ok": true}'


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.respond: Callable[[int, dict[str, str], bytes], Response] = ok
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.url = ""
        self.release = threading.Event()  # for responders that hang until released

    def record(self, item: Received) -> int:
        with self._arrived:
            self.requests.append(item)
            self._arrived.notify_all()
            return len(self.requests)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until `count` requests arrived (polls a condition, no fixed sleep)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver got {len(self.requests)} request(s), expected {count}")
                self._arrived.wait(left)
            return list(self.requests)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes; with Nagle on, the body would wait for
        # the client's delayed ACK (tens of ms), which no production receiver does.
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            n = receiver.record(Received(time.time(), self.path, headers, body))
            status, extra, payload, *rest = receiver.respond(n, headers, body)
            if rest and rest[0]:
                time.sleep(rest[0])
            if status is None:  # hang until released, then drop the connection
                receiver.release.wait(30)
                self.close_connection = True
                return
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@contextmanager
def serve() -> Iterator[Receiver]:
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
