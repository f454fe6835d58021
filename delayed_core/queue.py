"""Queue: the producer's handle on one queue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from .interfaces import Broker, Serializer
from .notify import Notifier
from .scheduling import due_time
from .task import Task


class Queue:
    """Enqueues tasks on one named queue. Thread-safe; create it with ``app.queue(name)``.

    Every call is one broker round trip: ``enqueue_many`` writes its whole batch at once.
    """

    def __init__(self, name: str, broker: Broker, serializer: Serializer, notifier: Notifier) -> None:
        self.name = name
        self.broker = broker
        self.serializer = serializer
        self._notifier = notifier

    def enqueue(self, task: Task, *, delay: float | None = None, eta: dt.datetime | None = None) -> None:
        """Add one task; with ``delay`` (seconds) or ``eta`` (datetime) it waits until then.

        Raises BrokerUnavailable when the broker cannot be reached: the task was then not enqueued.
        """
        self.enqueue_many((task,), delay=delay, eta=eta)

    def enqueue_many(
        self, tasks: Iterable[Task], *, delay: float | None = None, eta: dt.datetime | None = None
    ) -> None:
        """Add many tasks in one round trip, atomically: the Redis broker writes the whole batch in one
        MULTI/EXEC, so either every task is enqueued or none is."""
        tasks = list(tasks)
        if not tasks:
            return
        dumps = self.serializer.dumps
        data = [dumps(task) for task in tasks]
        due = due_time(delay, eta)
        if due is None:
            self.broker.enqueue(data)
        else:
            self.broker.schedule(data, due)
        if self._notifier.has("delayed_task_enqueued"):
            for task in tasks:
                self._notifier.emit("delayed_task_enqueued", queue=self.name, task=task)

    def __len__(self) -> int:
        """Tasks waiting to be taken (not counting scheduled or running ones)."""
        return len(self.broker)

    def __repr__(self) -> str:
        return f"<Queue {self.name!r}>"
