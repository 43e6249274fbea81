"""Reading ahead: an import's next chunk is read and validated on a thread while the current one
is written.

Writing a chunk is mostly time inside the database (SQLite's C code, or waiting for PostgreSQL),
during which Python releases the GIL; reading and validating the next chunk is Python. Run side
by side, the two overlap instead of taking turns. The thread only reads the file and validates:
it never touches the database, and it hands over chunks in file order, so checkpoints, resume
and row numbers are exactly as without it. A fault of the file (a line that does not decode, a
broken quote) reaches the writer at the point of the file where it was met, after the chunks
before it, as it would without the thread.

While a read-ahead runs, the interpreter's switch interval is shortened (READ_AHEAD_SWITCH_S):
the writer gets the GIL back from the reader as soon as a statement returns, instead of waiting
for the default 5 ms at every statement.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.db import connections

T = TypeVar("T")

# The switch interval while a read-ahead runs (the default is 0.005 s).
READ_AHEAD_SWITCH_S = 0.0002

_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.0


def _shorten_switch_interval() -> None:
    global _switch_users, _switch_saved
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_saved, READ_AHEAD_SWITCH_S))
        _switch_users += 1


def _restore_switch_interval() -> None:
    global _switch_users
    with _switch_lock:
        _switch_users -= 1
        if _switch_users == 0:
            sys.setswitchinterval(_switch_saved)


class _Reader(threading.Thread):
    """Puts (True, item) for each item of the source, then (True, end); (False, exception) if
    the source raises. Stops at the next item once `stop` is set."""

    def __init__(self, source: Iterable[T], depth: int) -> None:
        super().__init__(name="import-read-ahead", daemon=True)
        self.source = source
        self.items: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.end = object()

    def put(self, entry: tuple[bool, object]) -> bool:
        while not self.stop.is_set():
            try:
                self.items.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            for item in self.source:
                if not self.put((True, item)):
                    return
            self.put((True, self.end))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self.put((False, exc))
        finally:
            connections.close_all()  # none is expected: reading never queries; never leave one open

    def __iter__(self) -> Iterator[T]:
        while True:
            ok, item = self.items.get()
            if not ok:
                raise item  # type: ignore[misc]
            if item is self.end:
                return
            yield item  # type: ignore[misc]


@contextmanager
def read_ahead(source: Iterable[T], *, enabled: bool = True, depth: int = 1) -> Iterator[Iterator[T]]:
    """Iterate `source` on a thread, up to `depth` items ahead of the consumer; on leaving the
    block (at the end, on an error, or when the consumer stops early) the thread is stopped
    and joined, so the source's resources can be closed after it. With enabled=False the
    source is iterated in the caller's thread."""
    if not enabled:
        yield iter(source)
        return
    reader = _Reader(source, depth)
    _shorten_switch_interval()
    reader.start()
    try:
        yield iter(reader)
    finally:
        reader.stop.set()
        reader.join()
        _restore_switch_interval()
