"""Logging filters of the hub's LOGGING setting (core/settings.py)."""

from __future__ import annotations

import logging


class ClientErrorsInOneLine(logging.Filter):
    """A 4xx answer (403, 404, …) is logged as its one line: the PermissionDenied or Http404
    behind it is how the answer was made, not a fault of the hub, so its traceback only buries
    the lines that matter. Server errors (5xx) keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if 400 <= getattr(record, "status_code", 0) < 500:
            record.exc_info = None
            record.exc_text = None
        return True
