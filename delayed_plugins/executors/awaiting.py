"""Awaiting what a task function returned: ``async def`` tasks and functions that return an awaitable.

Two ways to wait, one rule for time limits:

- :class:`LoopRunner` owns a private event loop, made on first use and reused for every later task of
  its owner (a thread-executor slot, a subprocess child), so objects a task caches on the loop (a
  connection pool, a client session) stay usable by the next task. It runs one awaitable at a time.
- The asyncio executor submits :func:`until_deadline` to its shared loop instead (see :mod:`.asyncio`).

Either way the limit is enforced by cancelling the task at the deadline, which raises
:class:`~delayed_core.errors.TaskTimeout` from :func:`until_deadline`: the coroutine's ``finally``
blocks and ``async with`` exits run, unlike the watchdog's injected exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable
from typing import Any

from delayed_core.errors import TaskTimeout

logger = logging.getLogger("delayed.executor")

#: Seconds a coroutine cancelled at its time limit may take to unwind before its slot stops waiting.
CANCEL_GRACE = 0.5


class Interrupted(BaseException):
    """The worker interrupted the task (cancelled, or shutdown past its timeout).

    A BaseException, like asyncio's CancelledError: a task's ``except Exception`` must not swallow the
    stop the thread executor raises into it (see :class:`~.watchdog.Stopper`)."""


async def until_deadline(awaitable: Awaitable[Any], timeout: float | None) -> Any:
    """Await ``awaitable``; at ``timeout`` seconds cancel it and raise TaskTimeout.

    A coroutine that swallows the cancellation is given :data:`CANCEL_GRACE` seconds, then left behind
    on the loop (logged) so that its slot can serve on; it is reported as a timeout either way.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if task in done:
            return task.result()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=CANCEL_GRACE)
    except asyncio.CancelledError:  # we were cancelled (interrupt): take the task down with us
        task.cancel()
        raise
    if task not in done:
        logger.warning("a task ignored its cancellation at its time limit; it is left running on the loop")
    elif not task.cancelled() and task.exception() is not None:
        logger.debug("a task raised while being cancelled at its time limit", exc_info=task.exception())
    raise TaskTimeout


def shut_down_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on a loop that is not running, let it unwind, then close the loop.

    A loop still running (its slot thread is stuck in a task that ignored every stop) is left alone: only
    its own thread may touch it, and the worker's exit ends it.
    """
    if loop.is_closed() or loop.is_running():
        return
    try:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
        loop.run_until_complete(loop.shutdown_asyncgens())
    except Exception:  # a task that misbehaves while cancelled must not stop the worker's shutdown
        logger.exception("error while closing an event loop")
    finally:
        loop.close()


class LoopRunner:
    """Runs awaitables to completion, one at a time, on a private event loop that is reused."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._current: asyncio.Future[Any] | None = None
        self._interrupted = False
        self._lock = threading.Lock()

    def run(self, awaitable: Awaitable[Any], timeout: float | None) -> Any:
        """Await ``awaitable`` on the loop; raises what it raises, TaskTimeout, or Interrupted."""
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        loop = self._loop
        with self._lock:
            self._interrupted = False
            self._current = loop.create_task(until_deadline(awaitable, timeout))
        try:
            return loop.run_until_complete(self._current)
        except BaseException as exc:
            if not self._current.done():  # the watchdog's exception landed in the loop itself: drop it
                self.discard()
            if isinstance(exc, asyncio.CancelledError) and self._interrupted:
                raise Interrupted("the task was interrupted at shutdown") from None
            raise
        finally:
            with self._lock:
                self._current = None

    def interrupt(self) -> None:
        """Cancel the awaitable being run, from any thread (no-op when idle)."""
        with self._lock:
            current, loop = self._current, self._loop
            if current is None or loop is None:
                return
            self._interrupted = True
        with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
            loop.call_soon_threadsafe(current.cancel)

    def discard(self) -> None:
        """Forget the loop without running it again (it may be in an inconsistent state)."""
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_running():
            with contextlib.suppress(Exception):
                loop.close()

    def close(self) -> None:
        """Cancel leftovers (tasks a task spawned and left behind) and close the loop."""
        loop, self._loop = self._loop, None
        if loop is not None:
            shut_down_loop(loop)
