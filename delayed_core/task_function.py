"""The ``@app.task`` decorator's product: a function you can call now or enqueue for later."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from .task import PyTask

if TYPE_CHECKING:
    from .app import Delayed

P = ParamSpec("P")
R = TypeVar("R")


class TaskFunction(Generic[P, R]):
    """A registered task function. ``f(1, 2)`` calls it now; ``f.delay(1, 2)`` enqueues it.

    :param app: the app whose queues it enqueues on.
    :param func: the wrapped function.
    :param path: its ``"module:qualname"`` path, the name workers resolve.
    :param queue: the queue ``delay`` uses.
    :param retry: retries after a failure (the delayed 1.2 ``retry`` field; negative = forever).
    """

    def __init__(self, app: Delayed, func: Callable[P, R], path: str, queue: str, retry: int) -> None:
        functools.update_wrapper(self, func)
        self.app = app
        self.func = func
        self.path = path
        self.queue = queue
        self.retry = retry

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def task(self, *args: Any, **kwargs: Any) -> PyTask:
        """Build the task for this call without enqueueing it (for ``queue.enqueue_many``)."""
        return PyTask(self.path, args, kwargs, self.retry)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Enqueue a call of this function."""
        self.app.queue(self.queue).enqueue(self.task(*args, **kwargs))

    def delay_in(self, seconds: float, *args: Any, **kwargs: Any) -> None:
        """Enqueue a call that becomes due after ``seconds``."""
        self.app.queue(self.queue).enqueue(self.task(*args, **kwargs), delay=seconds)

    def delay_at(self, eta: dt.datetime, *args: Any, **kwargs: Any) -> None:
        """Enqueue a call that becomes due at ``eta``."""
        self.app.queue(self.queue).enqueue(self.task(*args, **kwargs), eta=eta)

    def __repr__(self) -> str:
        return f"<TaskFunction {self.path} queue={self.queue!r}>"
