"""``wait_replicas``: an enqueue is acknowledged only once N replicas have it (Redis ``WAIT``).

Redis replicates asynchronously: a master that dies right after answering an enqueue can take the task
with it, and the replica the sentinels promote never saw it. ``WAIT numreplicas timeout`` blocks until
that many replicas acknowledged every write the *same connection* made, so it is sent on the connection
that enqueued: the per-thread direct connection for one task, the pipeline's connection for a batch.
Fewer acknowledgements than asked within the timeout raise :class:`ReplicasBehind`: the task is on the
master but may not survive a failover, so the producer must not take the enqueue as done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis

from delayed_core.errors import BrokerUnavailable
from delayed_core.settings import Setting, not_negative, positive

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

    def after(self, call: Callable[..., Any]) -> None:
        """One more round trip on the connection ``call`` just wrote with: WAIT, then :meth:`check`."""
        self.check(call("WAIT", self.replicas, self.timeout_ms))

    def push_batch(self, client: redis.Redis, commands: Sequence[tuple[Any, ...]]) -> None:
        """Run ``commands`` in MULTI/EXEC followed by WAIT, in one round trip on one connection.

        A transactional redis-py pipeline cannot carry a WAIT after its EXEC, so this sends MULTI and
        EXEC as plain commands of a non-transactional pipeline (same atomicity, same single round trip).
        """
        with client.pipeline(transaction=False) as pipe:
            pipe.execute_command("MULTI")
            for command in commands:
                pipe.execute_command(*command)
            pipe.execute_command("EXEC")
            pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
            replies = pipe.execute()
        self.check(replies[-1])
