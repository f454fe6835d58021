"""Queue: the producer's handle on one queue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .interfaces import Broker, Serializer
from .notify import Notifier
from .scheduling import due_time
from .task import PyTask, Task

if TYPE_CHECKING:
    from .handles import TaskHandle


class Queue:
    """Enqueues tasks on one named queue. Thread-safe; create it with ``app.queue(name)``.

    Every call is one broker round trip: ``enqueue_many`` writes its whole batch at once.
    """

    def __init__(self, name: str, broker: Broker, serializer: Serializer, notifier: Notifier) -> None:
        self.name = name
        self.broker = broker
        self.serializer = serializer
        self._notifier = notifier

    def enqueue(self, task: Task, *, delay: float | None = None, eta: dt.datetime | None = None,
                track: bool = False, task_id: str | None = None, unique_for: float = 0,
                result_ttl: int | None = None) -> TaskHandle | None:
        """Add one task; with ``delay`` (seconds) or ``eta`` (datetime) it waits until then.

        With ``track`` (or a ``task_id``) a PyTask is tracked and a :class:`~delayed_core.handles.TaskHandle`
        is returned (see docs/results.md); otherwise its bytes are exactly delayed 1.2's and None is
        returned. Raises BrokerUnavailable when the broker cannot be reached: the task was then not enqueued.
        """
        if isinstance(task, PyTask) and (track or task_id is not None or unique_for):
            return submit_tracked(self, task, due_time(delay, eta), task_id, unique_for, result_ttl)
        self.enqueue_many((task,), delay=delay, eta=eta)
        return None

    def enqueue_many(
        self, tasks: Iterable[Task], *, delay: float | None = None, eta: dt.datetime | None = None
    ) -> None:
        """Add many tasks in one round trip, atomically: the default plugin (Redis) writes the whole batch
        in one MULTI/EXEC, so either every task is enqueued or none is."""
        tasks = with_plugin_meta(self._notifier, self.name, tasks)
        if not tasks:
            return
        dumps = self.serializer.dumps
        try:
            data = [dumps(task) for task in tasks]
            due = due_time(delay, eta)
            if due is None:
                self.broker.enqueue(data)
            else:
                self.broker.schedule(data, due)
        except Exception as exc:
            report_failure(self._notifier, self.name, tasks, exc)
            raise
        if self._notifier.has("delayed_task_enqueued"):
            for task in tasks:
                self._notifier.emit("delayed_task_enqueued", queue=self.name, task=task)

    def __len__(self) -> int:
        """Tasks waiting to be taken (not counting scheduled or running ones)."""
        return len(self.broker)

    def __repr__(self) -> str:
        return f"<Queue {self.name!r}>"


def with_plugin_meta(notifier: Notifier, queue: str, tasks: Iterable[Task]) -> list[Task]:
    """The tasks to write: each PyTask carries the ``meta`` fields plugins add (``delayed_task_enqueuing``).

    Tasks get copies, never edits: a caller enqueueing one PyTask object twice gets fresh fields each time.
    """
    tasks = list(tasks)
    if not notifier.has("delayed_task_enqueuing"):
        return tasks
    result: list[Task] = []
    for task in tasks:
        if isinstance(task, PyTask):
            added: dict[str, object] = {}
            for answer in notifier.collect("delayed_task_enqueuing", queue=queue, task=task):
                added.update(answer)
            if added:
                task = PyTask(task.func_path, task.args, task.kwargs, task.retry, {**task.meta, **added})
        result.append(task)
    return result


def report_failure(notifier: Notifier, queue: str, tasks: list[Task], error: Exception) -> None:
    """Fire ``delayed_task_enqueue_failed`` for every task of a write that failed."""
    if notifier.has("delayed_task_enqueue_failed"):
        for task in tasks:
            notifier.emit("delayed_task_enqueue_failed", queue=queue, task=task, error=error)


def submit_tracked(queue: Queue, task: PyTask, due: float | None, task_id: str | None, unique_for: float,
                   result_ttl: int | None) -> TaskHandle:
    """Enqueue ``task`` tracked (see :mod:`delayed_core.submit`)."""
    from .submit import submit

    return submit(queue, task, due, task_id, unique_for, result_ttl)
