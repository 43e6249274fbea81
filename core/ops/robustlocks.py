"""Locks between the worker cluster's processes that the kernel frees when their holder dies.

django-q2's cluster hands tasks to its worker processes through a `multiprocessing.Queue`.
An idle worker waits for the next task *while holding the queue's read lock*, a POSIX
semaphore. When that worker is killed (OOM killer, `kill -9`), nobody ever releases the
semaphore: the workers that replace it block on it forever and the cluster stops taking
tasks without a word (django-q2's upstream issue "When the next-in-line worker dies, the
entire cluster stops processing tasks"). The same holds for the queue's write lock, its
size counter and each worker's timer, whose lock the sentinel takes on every guard cycle.

The locks here are `fcntl` record locks on one byte of a shared file each: the kernel drops
a process's record locks when it exits, however it exits, so a dead holder cannot freeze
the others. `install()` makes django-q2's cluster build its queues and worker timers with
them; everything else in django-q2 is unchanged.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import itertools
import os
import tempfile
import threading
import time
from multiprocessing import sharedctypes

_POLL_SECONDS = 0.005
_offsets = itertools.count()
_lock_file: str | None = None
_descriptors: dict[tuple[int, str], int] = {}


def _shared_file() -> str:
    """One file per cluster process tree, removed when the process that made it exits."""
    global _lock_file
    if _lock_file is None:
        handle, _lock_file = tempfile.mkstemp(prefix="axhub-qlocks-")
        os.close(handle)
        creator, path = os.getpid(), _lock_file
        atexit.register(lambda: os.getpid() == creator and os.path.exists(path) and os.unlink(path))
    return _lock_file


def _descriptor(path: str) -> int:
    """One open descriptor of the file per process: closing any of them would drop all its locks."""
    key = (os.getpid(), path)
    if key not in _descriptors:
        _descriptors[key] = os.open(path, os.O_RDWR)
    return _descriptors[key]


class ProcessLock:
    """A re-entrant lock across processes (and the threads of each), freed when its holder dies.

    Record locks belong to a process, not a thread, so a thread lock guards the process's
    share of it; both are re-created in a forked child, which inherits neither holder.
    """

    def __init__(self, path: str | None = None, offset: int | None = None) -> None:
        self._path = path or _shared_file()
        self._offset = next(_offsets) if offset is None else offset
        self._pid = -1
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._fd = _descriptor(self._path)
        self._thread_lock = threading.RLock()
        self._depth = 0

    def __getstate__(self) -> dict:
        return {"path": self._path, "offset": self._offset}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["offset"])

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        if self._pid != os.getpid():
            self._reset()
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        if not (self._thread_lock.acquire(timeout=-1 if deadline is None else timeout) if block
                else self._thread_lock.acquire(False)):
            return False
        if self._depth:
            self._depth += 1
            return True
        while True:
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, self._offset)
                self._depth = 1
                return True
            except OSError:
                if not block or (deadline is not None and time.monotonic() >= deadline):
                    self._thread_lock.release()
                    return False
            if deadline is None and block:
                # Nothing to time out: wait in the kernel instead of polling.
                try:
                    fcntl.lockf(self._fd, fcntl.LOCK_EX, 1, self._offset)
                    self._depth = 1
                    return True
                except OSError as exc:
                    # EDEADLK: the kernel saw a cycle of waiters; poll instead.
                    if exc.errno not in (errno.EINTR, errno.EDEADLK):
                        self._thread_lock.release()
                        raise
            time.sleep(_POLL_SECONDS)

    def release(self) -> None:
        if self._pid != os.getpid() or not self._depth:
            raise RuntimeError("release of a ProcessLock this thread does not hold")
        self._depth -= 1
        if not self._depth:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, self._offset)
        self._thread_lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def robust_value(typecode: str, *args, lock: object = True):
    """`multiprocessing.Value` whose lock is a ProcessLock (django-q2's worker timers)."""
    return sharedctypes.Value(typecode, *args, lock=ProcessLock() if lock is True else lock)


def _robust_queue_class():
    from django_q.queues import Queue, SharedCounter

    class RobustCounter(SharedCounter):
        def __init__(self, n: int = 0) -> None:
            self.count = robust_value("i", n)

    class RobustQueue(Queue):
        """django-q2's queue with its read lock, write lock and size counter made robust."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._rlock = ProcessLock()
            self._wlock = ProcessLock()
            self.size = RobustCounter(0)

    return RobustQueue


def install() -> None:
    """Make django-q2's sentinel build its queues and worker timers on robust locks."""
    import django_q.cluster

    if getattr(django_q.cluster, "_axhub_robust_locks", False):
        return
    _shared_file()
    django_q.cluster.Queue = _robust_queue_class()
    django_q.cluster.Value = robust_value
    django_q.cluster._axhub_robust_locks = True


def installed() -> bool:
    import django_q.cluster

    return bool(getattr(django_q.cluster, "_axhub_robust_locks", False))
