"""AsyncRedisBroker: enqueue from asyncio code with the same wire effects as RedisBroker."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from delayed_core.interfaces import AsyncBroker

from . import scripts
from .connection import async_client_from_url
from .errors import translate
from .keys import GO_DELAYED, QueueKeys, layout_for
from .producer import push_commands, schedule_args


class AsyncRedisBroker(AsyncBroker):
    """The producer half of the Redis broker for asyncio (redis.asyncio)."""

    def __init__(self, name: str, client: object, layout: str = GO_DELAYED) -> None:
        super().__init__(name)
        self.client = client
        self.keys = QueueKeys.for_queue(name, layout)

    @classmethod
    def from_url(cls, url: str, name: str, shared: dict[str, object]) -> AsyncRedisBroker:
        """A broker with its own asyncio client (asyncio clients are bound to one event loop)."""
        return cls(name, async_client_from_url(url), layout_for(url, shared.get("config")))

    async def enqueue(self, tasks: Sequence[bytes]) -> None:
        """RPUSH the tasks and their notifications in one MULTI/EXEC round trip, as RedisBroker does."""
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                for command in push_commands(self.keys, tasks):
                    pipe.execute_command(*command)
                await pipe.execute()
        except redis.exceptions.RedisError as exc:
            raise translate(exc) from exc

    async def schedule(self, tasks: Sequence[bytes], due: float) -> None:
        """The schedule script, like RedisBroker.schedule: the delay counts from the server's clock."""
        try:
            await scripts.SCHEDULE.call_async(self.client, (self.keys.scheduled,), schedule_args(tasks, due))
        except redis.exceptions.RedisError as exc:
            raise translate(exc) from exc

    async def length(self) -> int:
        """LLEN of the queue."""
        try:
            return int(await self.client.llen(self.keys.queue))
        except redis.exceptions.RedisError as exc:
            raise translate(exc) from exc

    async def close(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()
