"""AsyncQueue: enqueue from asyncio code (web handlers) without blocking the event loop."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from .interfaces import AsyncBroker, Serializer
from .notify import Notifier
from .queue import report_failure, with_plugin_meta
from .scheduling import due_time
from .task import Task


class AsyncQueue:
    """The asyncio twin of :class:`~delayed_core.queue.Queue`; create it with ``app.async_queue(name)``."""

    def __init__(self, name: str, broker: AsyncBroker, serializer: Serializer, notifier: Notifier) -> None:
        self.name = name
        self.broker = broker
        self.serializer = serializer
        self._notifier = notifier

    async def enqueue(self, task: Task, *, delay: float | None = None, eta: dt.datetime | None = None) -> None:
        """Add one task (see :meth:`Queue.enqueue`)."""
        await self.enqueue_many((task,), delay=delay, eta=eta)

    async def enqueue_many(
        self, tasks: Iterable[Task], *, delay: float | None = None, eta: dt.datetime | None = None
    ) -> None:
        """Add many tasks in one round trip."""
        tasks = with_plugin_meta(self._notifier, self.name, tasks)
        if not tasks:
            return
        try:
            data = [self.serializer.dumps(task) for task in tasks]
            due = due_time(delay, eta)
            if due is None:
                await self.broker.enqueue(data)
            else:
                await self.broker.schedule(data, due)
        except Exception as exc:
            report_failure(self._notifier, self.name, tasks, exc)
            raise
        for task in tasks:
            self._notifier.emit("delayed_task_enqueued", queue=self.name, task=task)

    async def length(self) -> int:
        """Tasks waiting to be taken."""
        return await self.broker.length()

    async def close(self) -> None:
        """Close the connections of this queue's broker."""
        await self.broker.close()
