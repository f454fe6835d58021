"""The asyncio executor: every slot's coroutine runs on one event loop, in a thread of its own.

Slots stay what they are everywhere else (a thread with its own worker id that takes, runs and releases
one task at a time), so up to ``slots`` coroutines run at once on the shared loop while each slot waits
for its own. Because waiting costs a slot nothing but a blocked thread, a worker with ``--slots 100``
keeps a hundred I/O-bound coroutines in flight.

Time limits cancel the coroutine (its ``finally`` blocks run); a coroutine that ignores the cancellation
is left behind after a grace period so its slot can serve on (see :mod:`.awaiting`).

A plain (non-async) function runs in the calling slot's thread, as under the thread executor, with the
same soft limit and the same stop on cancel: running it on the loop would stall every other slot's
coroutine, and the slot thread is idle anyway. docs/executors.md gives the reasoning.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from delayed_core.errors import TaskTimeout
from delayed_core.interfaces import Executor, ExecutorContext
from delayed_core.outcome import Outcome
from delayed_core.task import PyTask

from .awaiting import CANCEL_GRACE, Interrupted, shut_down_loop, until_deadline
from .calling import call_task
from .watchdog import Stopper, Watchdog

#: Seconds ``stop`` waits for the loop thread to finish.
STOP_WAIT = 5.0


class AsyncioExecutor(Executor):
    """Runs coroutines on one shared event loop; plain functions in the slot threads."""

    name = "asyncio"

    def __init__(self) -> None:
        self._watchdog = Watchdog()
        self._stopper = Stopper()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._running: dict[int, concurrent.futures.Future[Any]] = {}
        self._interrupted: set[int] = set()
        self._resolve: Callable[[str], Callable[..., Any]] | None = None

    def start(self, context: ExecutorContext) -> None:
        """Start the event loop in its thread."""
        self._resolve = context.resolve
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="delayed-asyncio", daemon=True)
        self._thread.start()

    def execute(self, slot: int, task: PyTask, timeout: float | None) -> Outcome:
        """Resolve and call the function in this slot thread; await a coroutine it returns on the shared loop."""
        if self._loop is None or self._resolve is None:
            raise RuntimeError("AsyncioExecutor.execute called before start")
        return call_task(self._resolve, task.func_path, task.args, task.kwargs,
                         run_awaitable=lambda awaitable, remaining: self._await(slot, awaitable, remaining),
                         executor=self.name, timeout=timeout, limit=self._watchdog.limit,
                         guard=functools.partial(self._stopper.guard, slot))

    def _await(self, slot: int, awaitable: Awaitable[Any], timeout: float | None) -> Any:
        assert self._loop is not None
        self._interrupted.discard(slot)
        future = asyncio.run_coroutine_threadsafe(until_deadline(awaitable, timeout), self._loop)
        self._running[slot] = future
        try:
            # until_deadline itself gives up CANCEL_GRACE after the deadline; the extra wait only covers a
            # loop so blocked (a coroutine calling time.sleep) that it cannot even do that.
            return future.result(None if timeout is None else timeout + 2 * CANCEL_GRACE)
        except concurrent.futures.TimeoutError:
            if future.done():  # the coroutine raised TimeoutError itself, just now
                raise
            future.cancel()
            raise TaskTimeout from None
        except concurrent.futures.CancelledError:
            if slot in self._interrupted:
                raise Interrupted("the task was interrupted at shutdown") from None
            raise
        finally:
            self._running.pop(slot, None)

    def interrupt(self, slot: int) -> None:
        """Cancel the slot's coroutine, or raise into the plain function it runs in the slot thread."""
        if self._stopper.interrupt(slot):
            return
        future = self._running.get(slot)
        if future is not None:
            self._interrupted.add(slot)
            future.cancel()

    def stop(self) -> None:
        """Stop the loop, cancel what is left on it and close it."""
        loop, thread, self._loop = self._loop, self._thread, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_WAIT)
        if not thread.is_alive():
            shut_down_loop(loop)
