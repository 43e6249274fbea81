"""The locks under the worker cluster's queues: a holder that dies frees them."""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading

import pytest

from core.ops import robustlocks
from core.ops.robustlocks import ProcessLock
from tests.waiting import wait_until

fork = multiprocessing.get_context("fork")


def _hold_forever(lock, ready) -> None:
    lock.acquire()
    ready.set()
    threading.Event().wait()


def _killed_while_holding(lock) -> None:
    ready = fork.Event()
    child = fork.Process(target=_hold_forever, args=(lock, ready), daemon=True)
    child.start()
    assert ready.wait(10)
    assert not lock.acquire(timeout=0.2), "the child holds the lock"
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)


def test_a_lock_whose_holder_is_killed_is_free_again():
    lock = ProcessLock()
    _killed_while_holding(lock)
    assert lock.acquire(timeout=5)
    lock.release()


def test_a_multiprocessing_lock_whose_holder_is_killed_stays_taken():
    """What froze django-q2's cluster: a POSIX semaphore is never given back by a dead holder."""
    lock = fork.Lock()
    _killed_while_holding(lock)
    assert not lock.acquire(timeout=0.5)


def test_the_lock_is_reentrant_in_its_thread_and_excludes_other_threads():
    lock = ProcessLock()
    with lock, lock:
        got = []
        other = threading.Thread(target=lambda: got.append(lock.acquire(timeout=0.1)))
        other.start()
        other.join()
        assert got == [False]
        assert lock.acquire(block=False)  # re-entrant, even without blocking
        lock.release()
    assert lock.acquire(block=False)
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()


def _take_one(q, out) -> None:
    out.put(q.get())


def _blocked_reader_killed(q) -> None:
    reader = fork.Process(target=q.get, daemon=True)
    reader.start()
    # The reader waits inside get(), holding the queue's read lock, until it is killed.
    wait_until(lambda: _held_elsewhere(q._rlock))
    os.kill(reader.pid, signal.SIGKILL)
    reader.join(10)


def _held_elsewhere(lock) -> bool:
    if lock.acquire(False):
        lock.release()
        return False
    return True


def test_a_queue_reader_killed_while_waiting_does_not_block_the_next_reader():
    robustlocks.install()
    import django_q.cluster

    q = django_q.cluster.Queue()
    _blocked_reader_killed(q)
    q.put("task")
    got = fork.Queue()
    taker = fork.Process(target=_take_one, args=(q, got), daemon=True)
    taker.start()
    assert got.get(timeout=10) == "task"
    taker.join(10)
    assert q.qsize() == 0


def test_django_q2s_own_queue_blocks_the_next_reader_after_such_a_kill():
    from django_q.queues import Queue

    q = Queue()
    _blocked_reader_killed(q)
    q.put("task")
    with pytest.raises(queue.Empty):
        q.get(timeout=0.5)


def test_install_makes_the_cluster_build_robust_queues_and_timers():
    import django_q.cluster

    robustlocks.install()
    assert robustlocks.installed()
    assert isinstance(django_q.cluster.Queue()._rlock, ProcessLock)
    timer = django_q.cluster.Value("f", -1)
    with timer.get_lock():
        timer.value = 3
    assert isinstance(timer.get_lock(), ProcessLock) and timer.value == 3
