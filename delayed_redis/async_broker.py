"""AsyncRedisBroker: enqueue from asyncio code with the same wire effects as RedisBroker."""

from __future__ import annotations

from collections.abc import Sequence

import redis
import redis.asyncio

from delayed_core.interfaces import AsyncBroker

from . import scripts
from .connection import async_client_from_url
from .errors import translate
from .keys import GO_DELAYED, QueueKeys, layout_for
from .producer import push_commands, schedule_args
from .replicas import ReplicaWait


class AsyncRedisBroker(AsyncBroker):
    """The producer half of the Redis broker for asyncio (redis.asyncio)."""

    def __init__(self, name: str, client: redis.asyncio.Redis, layout: str = GO_DELAYED,
                 replica_wait: ReplicaWait | None = None) -> None:
        super().__init__(name)
        self.client = client
        self.keys = QueueKeys.for_queue(name, layout)
        #: WAIT for replicas after each write, pipelined behind it (off unless wait_replicas asks)
        self.replica_wait = replica_wait or ReplicaWait()

    @classmethod
    def from_url(cls, url: str, name: str, shared: dict[str, object]) -> AsyncRedisBroker:
        """A broker with its own asyncio client (asyncio clients are bound to one event loop)."""
        return cls(name, async_client_from_url(url), layout_for(url, shared.get("config")),
                   ReplicaWait.configured(shared))

    async def enqueue(self, tasks: Sequence[bytes]) -> None:
        """RPUSH the tasks and their notifications in one MULTI/EXEC round trip, as RedisBroker does (with
        ``wait_replicas``, WAIT pipelined behind the EXEC)."""
        try:
            if self.replica_wait:
                await self.replica_wait.push_batch_async(self.client, push_commands(self.keys, tasks))
                return
            async with self.client.pipeline(transaction=True) as pipe:
                for command in push_commands(self.keys, tasks):
                    pipe.execute_command(*command)
                await pipe.execute()
        except redis.exceptions.RedisError as exc:
            raise translate(exc) from exc

    async def schedule(self, tasks: Sequence[bytes], due: float) -> None:
        """The schedule script, like RedisBroker.schedule: the delay counts from the server's clock."""
        keys, args = (self.keys.scheduled,), schedule_args(tasks, due)
        try:
            if self.replica_wait:
                await self.replica_wait.script_async(self.client, scripts.SCHEDULE, keys, args)
            else:
                await scripts.SCHEDULE.call_async(self.client, keys, args)
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
