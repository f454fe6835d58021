"""``wait_replicas``: an enqueue is acknowledged only once N replicas have it (Redis ``WAIT``).

Redis replicates asynchronously: a master that dies right after answering an enqueue can take the task
with it, and the replica the sentinels promote never saw it. ``WAIT numreplicas timeout`` blocks until
that many replicas acknowledged every write the *same connection* made, so it is sent on the connection
that enqueued: the per-thread direct connection for one task, the pipeline's connection for a batch or a
scheduled task (the schedule script and WAIT pipelined), likewise for the asyncio broker.
Fewer acknowledgements than asked within the timeout raise :class:`ReplicasBehind`: the task is on the
master but may not survive a failover, so the producer must not take the enqueue as done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis
import redis.asyncio

from delayed_core.errors import BrokerUnavailable
from delayed_core.settings import Setting, not_negative, positive

from .scripts import Script

#: settings of the Redis plugin (declared in ``delayed_redis.plugin``)
WAIT_REPLICAS: Setting[int] = Setting(
    "wait_replicas", int, 0, "replicas that must acknowledge an enqueue (Redis WAIT); 0 = off", not_negative)
REPLICA_WAIT_TIMEOUT: Setting[float] = Setting(
    "replica_wait_timeout", float, 1.0, "seconds an enqueue waits for its replicas", positive)


class ReplicasBehind(BrokerUnavailable):
    """Fewer replicas than ``wait_replicas`` acknowledged an enqueue in time."""


class ReplicaWait:
    """How many replicas must acknowledge, and for how long to wait (0 replicas: off, no round trip)."""

    def __init__(self, replicas: int = 0, timeout: float = 1.0) -> None:
        self.replicas = replicas
        self.timeout_ms = max(1, int(timeout * 1000))

    def __bool__(self) -> bool:
        return self.replicas > 0

    def check(self, acknowledged: Any) -> None:
        """Raise unless ``acknowledged`` (WAIT's reply) reaches the number asked for."""
        if int(acknowledged) < self.replicas:
            raise ReplicasBehind(
                f"the enqueue reached the master but only {int(acknowledged)} of {self.replicas} replica(s) "
                f"acknowledged it within {self.timeout_ms} ms: it may be lost in a failover")

    @classmethod
    def configured(cls, shared: dict[str, object]) -> ReplicaWait:
        """The wait the app's config asks for (``shared["config"]``, as brokers get it); off without one."""
        config: Any = shared.get("config")
        return cls() if config is None else cls(config.get(WAIT_REPLICAS), config.get(REPLICA_WAIT_TIMEOUT))

    def after(self, call: Callable[..., Any]) -> None:
        """One more round trip on the connection ``call`` just wrote with: WAIT, then :meth:`check`."""
        self.check(call("WAIT", self.replicas, self.timeout_ms))

    def settle(self, replies: list[Any]) -> Any:
        """The reply of the command sent just before WAIT, once WAIT's (the last reply) says enough
        replicas have it; an error reply of either is raised."""
        reply, acknowledged = replies[-2:]
        # EXEC's reply holds the error of each command that failed inside the transaction.
        for item in (reply, *(reply if isinstance(reply, list) else ()), acknowledged):
            if isinstance(item, Exception):
                raise item
        self.check(acknowledged)
        return reply

    # A transactional redis-py pipeline cannot carry a WAIT after its EXEC, so batches send MULTI and EXEC
    # as plain commands of a non-transactional pipeline (same atomicity, same single round trip).

    def _send(self, client: redis.Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        with client.pipeline(transaction=False) as pipe:
            for command in (*commands, ("WAIT", self.replicas, self.timeout_ms)):
                pipe.execute_command(*command)
            return pipe.execute(raise_on_error=False)

    def push_batch(self, client: redis.Redis, commands: Sequence[tuple[Any, ...]]) -> None:
        """Run ``commands`` in MULTI/EXEC followed by WAIT, in one round trip on one connection."""
        self.settle(self._send(client, [("MULTI",), *commands, ("EXEC",)]))

    def script(self, client: redis.Redis, script: Script, keys: tuple[str, ...], args: tuple[Any, ...]) -> Any:
        """``script`` then WAIT, pipelined on one connection: one round trip (one more to load the script
        into a server that lost it); returns the script's reply."""
        replies = self._send(client, [script.command(keys, args)])
        if isinstance(replies[0], redis.exceptions.NoScriptError):
            client.script_load(script.source)
            replies = self._send(client, [script.command(keys, args)])
        return self.settle(replies)

    # The same for redis.asyncio clients.

    async def _send_async(self, client: redis.asyncio.Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        async with client.pipeline(transaction=False) as pipe:
            for command in (*commands, ("WAIT", self.replicas, self.timeout_ms)):
                pipe.execute_command(*command)
            return await pipe.execute(raise_on_error=False)

    async def push_batch_async(self, client: redis.asyncio.Redis, commands: Sequence[tuple[Any, ...]]) -> None:
        """:meth:`push_batch` with an asyncio client."""
        self.settle(await self._send_async(client, [("MULTI",), *commands, ("EXEC",)]))

    async def script_async(self, client: redis.asyncio.Redis, script: Script, keys: tuple[str, ...],
                           args: tuple[Any, ...]) -> Any:
        """:meth:`script` with an asyncio client."""
        replies = await self._send_async(client, [script.command(keys, args)])
        if isinstance(replies[0], redis.exceptions.NoScriptError):
            await client.script_load(script.source)
            replies = await self._send_async(client, [script.command(keys, args)])
        return self.settle(replies)
