"""The thread executor: the task runs in the slot's own thread.

Fastest (no process hop), and no isolation: a task that segfaults or calls ``os._exit`` takes the whole
worker down. Its task then stays held under the dead worker's id, and the sweeper requeues it once the id
expires (at-least-once). Time limits are soft (see :mod:`.watchdog`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from delayed_core.errors import TaskTimeout
from delayed_core.interfaces import Executor, ExecutorContext
from delayed_core.outcome import Outcome, Status, failure_outcome
from delayed_core.task import PyTask

from .watchdog import Watchdog


class ThreadExecutor(Executor):
    """Runs each task in the calling slot thread."""

    name = "thread"
    isolated = False

    def __init__(self) -> None:
        self._watchdog = Watchdog()

    def start(self, context: ExecutorContext) -> None:
        """Nothing to prepare: tasks run in the slot threads."""

    def execute(self, slot: int, task: PyTask, func: Callable[..., Any], timeout: float | None) -> Outcome:
        """Call the function here; a soft time limit when ``timeout`` is set."""
        started = time.perf_counter()
        try:
            if timeout:
                with self._watchdog.limit(timeout):
                    func(*task.args, **task.kwargs)
            else:
                func(*task.args, **task.kwargs)
        except TaskTimeout:
            return Outcome(Status.TIMEOUT, time.perf_counter() - started, "Timeout",
                           f"ran past its time limit of {timeout:g}s (soft limit: thread executor)")
        except BaseException as exc:  # a task's SystemExit or KeyboardInterrupt is its failure, not ours
            return failure_outcome(exc, time.perf_counter() - started, exc.__traceback__.tb_next is None)
        return Outcome(Status.SUCCEEDED, time.perf_counter() - started)
