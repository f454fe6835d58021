"""Stopping code that runs in a thread: a soft time limit, and a stop on request (a cancelled task).

Python cannot kill a thread. The watchdog instead raises :class:`TaskTimeout` inside it with
``PyThreadState_SetAsyncExc``, and :class:`Stopper` raises :class:`~.awaiting.Interrupted` the same way:
the exception lands at the next bytecode the thread runs, so it stops Python code but not a blocking C
call (``time.sleep`` in one piece, a socket read, a C extension), which only notices once it returns.
That is why the thread executor's limit is called *soft*.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from delayed_core.errors import TaskTimeout

from .awaiting import Interrupted

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)


class _Deadline:
    __slots__ = ("done", "thread_id")

    def __init__(self, thread_id: int) -> None:
        self.thread_id = thread_id
        self.done = False


class Watchdog:
    """One thread that enforces the time limits of many slot threads."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None

    @contextmanager
    def limit(self, seconds: float) -> Iterator[None]:
        """Raise TaskTimeout in the calling thread if the block runs longer than ``seconds``."""
        deadline = _Deadline(threading.get_ident())
        with self._lock:
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._counter), deadline))
            self._ensure_thread()
            self._lock.notify()
        try:
            yield
        finally:
            with self._lock:
                deadline.done = True
                # Cancel an exception the watchdog may have injected a moment before we finished.
                _set_async_exc(deadline.thread_id, ctypes.py_object())

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="delayed-watchdog", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with self._lock:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._lock.wait()
                    continue
                due, _, deadline = self._heap[0]
                remaining = due - time.monotonic()
                if remaining > 0:
                    self._lock.wait(remaining)
                    continue
                heapq.heappop(self._heap)
                if not deadline.done:
                    _set_async_exc(deadline.thread_id, ctypes.py_object(TaskTimeout))


class Stopper:
    """Lets another thread raise :class:`Interrupted` in a slot thread while it runs a guarded block.

    At most one exception per block, and never after it: the block's exit takes the lock and clears an
    exception that was raised but not yet delivered, so it cannot land in the worker's own code.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._guarded: dict[int, _Deadline] = {}  # slot -> the thread in its block (done: already raised)

    def guard(self, slot: int) -> _Guarded:
        """The block :meth:`interrupt` may stop (the synchronous part of a task)."""
        return _Guarded(self, slot)

    def interrupt(self, slot: int) -> bool:
        """Raise Interrupted in the slot's thread if it is inside its block; True if raised."""
        with self._lock:
            entry = self._guarded.get(slot)
            if entry is None or entry.done:
                return False
            entry.done = True
            _set_async_exc(entry.thread_id, ctypes.py_object(Interrupted))
            return True


class _Guarded:
    """One guarded block of :class:`Stopper` (a class, not a generator: it is entered for every task)."""

    __slots__ = ("_entry", "_slot", "_stopper")

    def __init__(self, stopper: Stopper, slot: int) -> None:
        self._stopper = stopper
        self._slot = slot
        self._entry = _Deadline(0)

    def __enter__(self) -> None:
        self._entry.thread_id = threading.get_ident()
        # One dict store is atomic: interrupt() finds the entry or nothing, never half of it.
        self._stopper._guarded[self._slot] = self._entry

    def __exit__(self, *exc_info: object) -> None:
        stopper = self._stopper
        with stopper._lock:
            stopper._guarded.pop(self._slot, None)
            if self._entry.done:  # raised: drop it if it has not landed yet
                _set_async_exc(self._entry.thread_id, ctypes.py_object())
