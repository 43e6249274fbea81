"""The one way tests wait on another thread or process: poll a condition, never sleep a guess."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 10.0,
               what: str | Callable[[], str] = "the condition") -> T:
    """condition()'s first truthy value, polled every 10 ms. After `timeout` seconds the test
    fails, naming `what` it waited for (a callable is asked then, to describe the state)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s in vain for {what() if callable(what) else what}")
        time.sleep(0.01)
    return value
