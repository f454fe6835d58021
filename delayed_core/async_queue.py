"""AsyncQueue: enqueue from asyncio code (web handlers) without blocking the event loop."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .interfaces import AsyncBroker, Serializer
from .interfaces.tracking import TaskTracker
from .notify import Notifier
from .queue import Batch
from .scheduling import due_time
from .task import PyTask, Task

if TYPE_CHECKING:
    from .handles import TaskHandle


class AsyncQueue:
    """The asyncio twin of :class:`~delayed_core.queue.Queue`; create it with ``app.async_queue(name)``.

    :param tracker: the task records of the queue's broker (tracked enqueues, handles), if it keeps any.
    """

    def __init__(self, name: str, broker: AsyncBroker, serializer: Serializer, notifier: Notifier,
                 tracker: TaskTracker | None = None) -> None:
        self.name = name
        self.broker = broker
        self.serializer = serializer
        self._notifier = notifier
        self._tracker = tracker

    @property
    def tracks(self) -> bool:
        """True when the queue's broker keeps task records (a tracked enqueue returns a handle)."""
        return self._tracker is not None

    async def enqueue(self, task: Task, *, delay: float | None = None, eta: dt.datetime | None = None,
                      track: bool = False, task_id: str | None = None, unique_for: float = 0,
                      result_ttl: int | None = None) -> TaskHandle | None:
        """Add one task (see :meth:`Queue.enqueue`); tracked, it returns the task's handle."""
        if isinstance(task, PyTask) and (track or task_id is not None or unique_for):
            handles = await self.enqueue_many((task,), delay=delay, eta=eta, track=True,
                                              task_ids=None if task_id is None else [task_id],
                                              unique_for=unique_for, result_ttl=result_ttl)
            assert handles is not None
            return handles[0]
        await self.enqueue_many((task,), delay=delay, eta=eta)
        return None

    async def enqueue_many(
        self, tasks: Iterable[Task], *, delay: float | None = None, eta: dt.datetime | None = None,
        track: bool = False, task_ids: Sequence[str | None] | None = None, unique_for: float = 0,
        result_ttl: int | None = None,
    ) -> list[TaskHandle] | None:
        """Add many tasks in one round trip (the same steps and hooks as :meth:`Queue.enqueue_many`);
        tracked, the handles of the tasks, in order."""
        if track or task_ids is not None or unique_for:
            from .submit import Tracked, only_py_tasks  # handles: a plugin-like layer over the queue

            listed = only_py_tasks(list(tasks))
            if not listed:
                return []
            tracked = Tracked(self._tracker_or_error(), self._notifier, self.name, self.serializer, listed,
                              due_time(delay, eta), task_ids, unique_for, result_ttl)
            return await tracked.write_async()
        batch = Batch(self._notifier, self.name, self.serializer, tasks, delay, eta)
        if batch.tasks:
            with batch.reported():
                await batch.send(self.broker)
        return None

    def _tracker_or_error(self) -> TaskTracker:
        if self._tracker is None:
            from .errors import DelayedError

            raise DelayedError(f"the {type(self.broker).__name__} broker keeps no task records; tasks on it "
                               "cannot be tracked")
        return self._tracker

    async def length(self) -> int:
        """Tasks waiting to be taken."""
        return await self.broker.length()

    async def close(self) -> None:
        """Close the connections of this queue's broker."""
        await self.broker.close()
