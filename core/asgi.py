"""ASGI entry point of the web process.

Django itself runs as a WSGI application on a fixed thread pool (a2wsgi): each pool thread
keeps its database connection, and a request pays no per-middleware thread hops, which under
Django's ASGI handler cost more than the tool call itself. The MCP endpoint (an ASGI app of
the official SDK) is mounted beside it at /mcp.
"""

from __future__ import annotations

import asyncio
import gc
import os

from a2wsgi import WSGIMiddleware
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

from django.conf import settings  # noqa: E402

django_app = WSGIMiddleware(get_wsgi_application(), workers=settings.WEB_THREADS)


class Router:
    """Dispatch by path: /mcp to the MCP app, everything else to Django."""

    def __init__(self, django, mcp=None) -> None:
        self.django = django
        self.mcp = mcp

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path = scope.get("path", "")
        if self.mcp is not None and scope["type"] == "http" and (path == "/mcp" or path.startswith("/mcp/")):
            await self.mcp(scope, receive, send)
            return
        await self.django(scope, receive, send)

    async def _lifespan(self, receive, send) -> None:
        receive = _checked_at_startup(receive)
        if self.mcp is None or not hasattr(self.mcp, "lifespan"):
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await self.mcp.lifespan(receive, send)


def _checked_at_startup(receive):
    """`receive` of the lifespan protocol, checking the stored webhook secrets at start-up: a
    failed check fails the start-up, and uvicorn exits with its message."""

    async def checked():
        message = await receive()
        if message["type"] == "lifespan.startup":
            await asyncio.to_thread(_check_stored_secrets)
        return message

    return checked


def _check_stored_secrets() -> None:
    """Refuse to start when no configured key decrypts the stored webhook secrets (README
    "Webhook secret keys"). Only that stops the web process: a database that cannot be read yet
    is the health check's business."""
    import logging

    from django.core.exceptions import ImproperlyConfigured
    from django.db import connections

    from core.webhooks.crypto import check_stored_secrets

    try:
        check_stored_secrets()
    except ImproperlyConfigured:
        raise
    except Exception as exc:
        logging.getLogger(__name__).warning("could not check the stored webhook secrets: %s", exc)
    finally:
        connections.close_all()


from core.api.guard import McpGuard  # noqa: E402
from core.api.mcp import McpHttpApp  # noqa: E402

# The guard turns away addresses that keep failing to authenticate, as Django's middleware
# does for /api/, and adds the headers Django's SecurityMiddleware would (core/api/guard.py).
application = Router(django_app, McpGuard(McpHttpApp()))

# Everything loaded so far lives as long as the process: move it out of the collector's view, so
# a full collection scans the objects of requests, not all of Django.
gc.freeze()
