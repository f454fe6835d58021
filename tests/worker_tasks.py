"""Task functions the worker tests run. They record calls in a module-level list (thread executor)."""

from __future__ import annotations

import threading
import time

calls: list[tuple[str, tuple, dict]] = []
_lock = threading.Lock()
_failures: dict[str, int] = {}


def record(*args: object, **kwargs: object) -> None:
    """Remember the call."""
    with _lock:
        calls.append(("record", args, kwargs))


def fail_times(key: str, times: int) -> None:
    """Fail the first ``times`` calls for ``key``, then succeed."""
    with _lock:
        count = _failures.get(key, 0)
        _failures[key] = count + 1
        calls.append(("fail_times", (key, times), {}))
    if count < times:
        raise ValueError(f"planned failure {count + 1} of {times}")


def always_fail() -> None:
    """Fail every time."""
    with _lock:
        calls.append(("always_fail", (), {}))
    raise RuntimeError("always")


def sleep(seconds: float) -> None:
    """Sleep, then record."""
    time.sleep(seconds)
    record("slept", seconds)


_barriers: dict[int, threading.Barrier] = {}


def meet(parties: int, timeout: float) -> None:
    """Wait until ``parties`` tasks run at the same time (or fail after ``timeout``), then record: proves
    that slots run concurrently without timing them."""
    with _lock:
        barrier = _barriers.setdefault(parties, threading.Barrier(parties))
    barrier.wait(timeout)
    record("met", parties)


def hold(seconds: float) -> None:
    """Sleep without recording: for a task a test abandons (a thread task handed back at shutdown keeps
    running, and must not record into whichever test runs when it ends)."""
    time.sleep(seconds)


def reset() -> None:
    """Forget every call (used by tests)."""
    with _lock:
        calls.clear()
        _failures.clear()
        _barriers.clear()
