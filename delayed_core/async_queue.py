"""AsyncQueue: enqueue from asyncio code (web handlers) without blocking the event loop."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from .interfaces import AsyncBroker, Serializer
from .notify import Notifier
from .queue import Batch
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
        """Add many tasks in one round trip (the same steps and hooks as :meth:`Queue.enqueue_many`)."""
        batch = Batch(self._notifier, self.name, self.serializer, tasks, delay, eta)
        if batch.tasks:
            with batch.reported():
                await batch.send(self.broker)

    async def length(self) -> int:
        """Tasks waiting to be taken."""
        return await self.broker.length()

    async def close(self) -> None:
        """Close the connections of this queue's broker."""
        await self.broker.close()
