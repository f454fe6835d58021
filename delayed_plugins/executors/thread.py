"""The thread executor: the task runs in the slot's own thread.

Fastest (no process hop), and no isolation: a task that segfaults or calls ``os._exit`` takes the whole
worker down. Its task then stays held under the dead worker's id, and the sweeper requeues it once the id
expires (at-least-once). Time limits are soft (see :mod:`.watchdog`).

An ``async def`` task runs on an event loop owned by its slot, made on first use and reused by the slot's
later tasks; its time limit cancels it (see :mod:`.awaiting`).

Cancelling a running task (``handle.cancel()``) cancels its coroutine, or raises
:class:`~.awaiting.Interrupted` into a plain function, as the soft time limit does (see :mod:`.watchdog`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from delayed_core.interfaces import Executor, ExecutorContext
from delayed_core.outcome import Outcome
from delayed_core.task import PyTask

from .awaiting import LoopRunner
from .calling import call_task
from .watchdog import Stopper, Watchdog


class ThreadExecutor(Executor):
    """Runs each task in the calling slot thread."""

    name = "thread"

    def __init__(self) -> None:
        self._watchdog = Watchdog()
        self._stopper = Stopper()
        self._loops: dict[int, LoopRunner] = {}
        self._lock = threading.Lock()
        self._resolve: Callable[[str], Callable[..., Any]] | None = None

    def start(self, context: ExecutorContext) -> None:
        """Keep the resolver: tasks run in the slot threads, loops are made when first needed."""
        self._resolve = context.resolve

    def execute(self, slot: int, task: PyTask, timeout: float | None) -> Outcome:
        """Resolve and call the function here (awaiting it on the slot's loop if async); a soft time limit."""
        if self._resolve is None:
            raise RuntimeError("ThreadExecutor.execute called before start")
        return call_task(self._resolve, task.func_path, task.args, task.kwargs, run_awaitable=self._runner(slot).run,
                         executor=self.name, timeout=timeout, limit=self._watchdog.limit,
                         guard=functools.partial(self._stopper.guard, slot))

    def interrupt(self, slot: int) -> None:
        """Raise into the slot's plain function, or cancel its coroutine (whichever it is running)."""
        if self._stopper.interrupt(slot):
            return
        runner = self._loops.get(slot)
        if runner is not None:
            runner.interrupt()

    def stop(self) -> None:
        """Close the slots' event loops (cancelling what tasks left running on them)."""
        with self._lock:
            runners, self._loops = list(self._loops.values()), {}
        for runner in runners:
            runner.close()

    def _runner(self, slot: int) -> LoopRunner:
        runner = self._loops.get(slot)
        if runner is None:
            with self._lock:
                runner = self._loops.setdefault(slot, LoopRunner())
        return runner
