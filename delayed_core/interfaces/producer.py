"""The producer role of a broker: add tasks to one queue, now or later, and count what waits."""

from __future__ import annotations

import abc
from collections.abc import Sequence


class Producer(abc.ABC):
    """Adds serialized tasks to one queue. Producers (web apps, scripts) need nothing else."""

    #: the queue name
    name: str

    @abc.abstractmethod
    def enqueue(self, tasks: Sequence[bytes]) -> None:
        """Append tasks to the queue, atomically for each batch, in as few round trips as possible."""

    @abc.abstractmethod
    def schedule(self, tasks: Sequence[bytes], due: float) -> None:
        """Keep tasks aside until unix time ``due``, then make them available (see
        :meth:`~delayed_core.interfaces.Sweeper.promote_and_peek`)."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of tasks waiting in the queue (not counting scheduled or held ones)."""


class AsyncBroker(abc.ABC):
    """The producer role for asyncio code: enqueue, schedule, length."""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str, name: str, shared: dict[str, object]) -> AsyncBroker:
        """Build the async broker for queue ``name`` at ``url``.

        :param shared: ``{"config": the app's Config}`` for broker-level settings; asyncio brokers share
            no connections (asyncio clients are bound to one event loop).
        """

    @abc.abstractmethod
    async def enqueue(self, tasks: Sequence[bytes]) -> None:
        """Append tasks atomically, in one round trip."""

    @abc.abstractmethod
    async def schedule(self, tasks: Sequence[bytes], due: float) -> None:
        """Keep tasks aside until unix time ``due``."""

    @abc.abstractmethod
    async def length(self) -> int:
        """Number of tasks waiting in the queue."""

    async def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""
