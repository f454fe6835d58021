"""AsyncRedisBroker: enqueue from asyncio code with the same wire effects as RedisBroker."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from delayed_core.errors import BrokerUnavailable
from delayed_core.interfaces import AsyncBroker

from .connection import UNAVAILABLE, async_client_from_url, describe
from .keys import QueueKeys


class AsyncRedisBroker(AsyncBroker):
    """The producer half of the Redis broker for asyncio (redis.asyncio)."""

    def __init__(self, name: str, client: object) -> None:
        super().__init__(name)
        self.client = client
        self.keys = QueueKeys.for_queue(name)

    @classmethod
    def from_url(cls, url: str, name: str, shared: dict[str, object]) -> AsyncRedisBroker:
        """A broker with its own asyncio client (asyncio clients are bound to one event loop)."""
        return cls(name, async_client_from_url(url))

    async def enqueue(self, tasks: Sequence[bytes]) -> None:
        """RPUSH the tasks and their notifications in one MULTI/EXEC round trip."""
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.rpush(self.keys.queue, *tasks)
                pipe.rpush(self.keys.notifications, *(b"1",) * len(tasks))
                await pipe.execute()
        except UNAVAILABLE as exc:
            raise BrokerUnavailable(describe(exc)) from exc

    async def schedule(self, tasks: Sequence[bytes], due: float) -> None:
        """ZADD into the scheduled set (same member format as RedisBroker.schedule)."""
        score = max(1, int(due * 1000))
        members = {secrets.token_hex(8).encode() + task: score for task in tasks}
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.zadd(self.keys.scheduled, members)
                pipe.publish(self.keys.scheduled, score)
                added, _announced = await pipe.execute(raise_on_error=False)
            if isinstance(added, Exception):  # the announcement is only a hint; the ZADD is not
                raise added
        except UNAVAILABLE as exc:
            raise BrokerUnavailable(describe(exc)) from exc

    async def length(self) -> int:
        """LLEN of the queue."""
        try:
            return int(await self.client.llen(self.keys.queue))
        except UNAVAILABLE as exc:
            raise BrokerUnavailable(describe(exc)) from exc

    async def close(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()
