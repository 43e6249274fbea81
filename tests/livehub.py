"""Serve the hub's ASGI application (Django and /mcp) on a real port, in this process.

For transactional tests only: the server's threads open their own database connections,
so they see what the test has committed, never what it holds in an open transaction.
The test database is a SQLite file (or PostgreSQL), so those connections share it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from django.db import DEFAULT_DB_ALIAS, connections

from tests.waiting import wait_until

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


@contextmanager
def serve() -> Iterator[str]:
    """Run core.asgi.application (with its lifespan) on a free 127.0.0.1 port; yield the base URL."""
    from core.asgi import application

    # Binding here and handing the socket to uvicorn leaves no window in which another
    # process could take the port between choosing and binding it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(application, host="127.0.0.1", port=port, lifespan="on", log_level="warning",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    # The server's threads (a2wsgi's pool, anyio's workers) would otherwise keep their
    # connections open past the test run, and SQLite would leave its -wal/-shm files behind.
    database = connections.settings[DEFAULT_DB_ALIAS]
    max_age = database.get("CONN_MAX_AGE", 0)
    database["CONN_MAX_AGE"] = 0
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"livehub-{port}", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), START_TIMEOUT, "the live hub to start")
        if not server.started:
            raise RuntimeError("the live hub did not start (see the uvicorn log above)")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT)
        sock.close()
        database["CONN_MAX_AGE"] = max_age
        if thread.is_alive():
            raise RuntimeError("the live hub did not stop")
