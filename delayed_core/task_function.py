"""The ``@app.task`` decorator's product: a function you can call now or enqueue for later."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, ParamSpec, TypeVar

from .errors import DelayedError
from .handles import RESULT_TTL, TaskHandle
from .results import tracker_for
from .task import PATH_SEPARATOR, PyTask

if TYPE_CHECKING:
    from .app import Delayed
    from .queue import Queue

P = ParamSpec("P")
R = TypeVar("R")

#: the module part of a path no worker can import (a function defined in an interactive session)
UNIMPORTABLE_MODULE = "__main__"


class TaskFunction(Generic[P, R]):
    """A registered task function. ``f(1, 2)`` calls it now; ``f.delay(1, 2)`` enqueues it.

    It keeps the function's parameters for type checkers: ``f.delay("x")`` is an error for
    ``def f(n: int)``, as ``f("x")`` is.

    :param app: the app whose queues it enqueues on.
    :param func: the wrapped function.
    :param path: its ``"module:qualname"`` path, the name workers resolve.
    :param queue: the queue ``delay`` uses.
    :param retry: retries after a failure (the delayed 1.2 ``retry`` field; negative = forever).
    """

    def __init__(self, app: Delayed, func: Callable[P, R], path: str, queue: str, retry: int,
                 result_ttl: int | None = None, unique_for: float = 0) -> None:
        functools.update_wrapper(self, func)
        self.app = app
        self.func = func
        self.path = path
        self.queue = queue
        self.retry = retry
        self.result_ttl = result_ttl
        self.unique_for = unique_for
        # The queue handle ``delay`` writes through and whether its broker keeps records, kept while the
        # app hands out the same broker: building them per call cost a producer more than the rest of it.
        self._target: tuple[Queue, bool] | None = None

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def task(self, *args: P.args, **kwargs: P.kwargs) -> PyTask:
        """Build the task for this call without enqueueing it (for ``queue.enqueue_many``).

        Raises DelayedError when no worker could import the function (see :meth:`check_importable`).
        """
        self.check_importable()
        return PyTask(self.path, args, kwargs, self.retry)

    def check_importable(self) -> None:
        """Refuse a function that no worker can import, rather than enqueue a task that can never run."""
        if self.path.partition(PATH_SEPARATOR)[0] == UNIMPORTABLE_MODULE:
            raise DelayedError(
                f"cannot enqueue {self.func.__qualname__}: it is defined in __main__ of an interactive session "
                "or 'python -c', which no worker can import; define it in a module (e.g. tasks.py), import "
                "it from there and start the worker with --import <module>"
            )

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle | None:
        """Enqueue a call of this function; return its :class:`~delayed_core.handles.TaskHandle` (None when
        tracking is off: ``result_ttl = 0``). A ``task_id="..."`` keyword is the caller's id, not an
        argument: while a task with that id is pending, the existing task's handle comes back."""
        return self._enqueue(args, kwargs, None, None)

    def delay_in(self, seconds: float, *args: P.args, **kwargs: P.kwargs) -> TaskHandle | None:
        """Enqueue a call that becomes due after ``seconds`` (as :meth:`delay`)."""
        return self._enqueue(args, kwargs, seconds, None)

    def delay_at(self, eta: dt.datetime, *args: P.args, **kwargs: P.kwargs) -> TaskHandle | None:
        """Enqueue a call that becomes due at ``eta`` (as :meth:`delay`)."""
        return self._enqueue(args, kwargs, None, eta)

    async def delay_async(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle | None:
        """:meth:`delay` from asyncio code: the write goes through the running event loop's own
        connection (one round trip, as :meth:`delay`), so the loop is never blocked."""
        return await self._enqueue_async(args, kwargs, None, None)

    async def delay_in_async(self, seconds: float, *args: P.args, **kwargs: P.kwargs) -> TaskHandle | None:
        """:meth:`delay_in` from asyncio code (see :meth:`delay_async`)."""
        return await self._enqueue_async(args, kwargs, seconds, None)

    async def delay_at_async(self, eta: dt.datetime, *args: P.args, **kwargs: P.kwargs) -> TaskHandle | None:
        """:meth:`delay_at` from asyncio code (see :meth:`delay_async`)."""
        return await self._enqueue_async(args, kwargs, None, eta)

    def _enqueue(self, args: tuple[object, ...], kwargs: dict[str, object], delay: float | None,
                 eta: dt.datetime | None) -> TaskHandle | None:
        queue, trackable = self._queue()
        task, task_id, track = self._call_of(args, kwargs, trackable)
        if not track:
            queue.enqueue(task, delay=delay, eta=eta)
            return None
        # Only a per-function retention travels with the task; otherwise the worker's setting applies.
        return queue.enqueue(task, delay=delay, eta=eta, track=True, task_id=task_id, unique_for=self.unique_for,
                             result_ttl=self.result_ttl)

    async def _enqueue_async(self, args: tuple[object, ...], kwargs: dict[str, object], delay: float | None,
                             eta: dt.datetime | None) -> TaskHandle | None:
        queue = self.app._loop_queue(self.queue)
        task, task_id, track = self._call_of(args, kwargs, queue.tracks)
        if not track:
            await queue.enqueue(task, delay=delay, eta=eta)
            return None
        return await queue.enqueue(task, delay=delay, eta=eta, track=True, task_id=task_id,
                                   unique_for=self.unique_for, result_ttl=self.result_ttl)

    def _call_of(self, args: tuple[object, ...], kwargs: dict[str, object],
                 trackable: bool) -> tuple[PyTask, str | None, bool]:
        """The task for this call, the caller's ``task_id`` (taken out of ``kwargs``), and whether it is
        tracked (``result_ttl`` above 0 on a broker that keeps records)."""
        task_id = kwargs.pop("task_id", None)
        if task_id is not None and not isinstance(task_id, str):
            raise TypeError(f"task_id must be a str, not {type(task_id).__name__}")
        ttl = self.result_ttl if self.result_ttl is not None else self.app.config.get(RESULT_TTL)
        return self.task(*args, **kwargs), task_id, ttl > 0 and trackable  # type: ignore[arg-type]

    def _queue(self) -> tuple[Queue, bool]:
        """The queue this function enqueues on, and True when its broker can track tasks."""
        broker = self.app.broker(self.queue)
        target = self._target
        if target is None or target[0].broker is not broker:  # first call, or the app made a new broker
            queue = self.app.queue(self.queue)
            target = self._target = (queue, tracker_for(queue.broker) is not None)
        return target

    def __repr__(self) -> str:
        return f"<TaskFunction {self.path} queue={self.queue!r}>"
