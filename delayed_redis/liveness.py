"""The liveness role of the Redis broker: go-delayed's liveness keys plus pydelayed's worker registry.

In the cluster layout each queue has its own liveness key per worker id (``{N}_alive:<id>``, in the
queue's slot): the worker keeps alive the keys of every queue it serves, one call per queue as for the
registries, so the number of round trips is unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis

from delayed_core.interfaces import Liveness

from . import scripts
from .connection import unavailable_as_broker_error
from .keys import QueueKeys


class RedisLiveness(Liveness):
    """Mixed into :class:`~delayed_redis.broker.RedisBroker`."""

    # Provided by RedisBroker.
    client: redis.Redis
    keys: QueueKeys
    _blocking_clients: dict[str, int]

    def claim_worker_id(self, worker_id: str, ttl: float) -> bool:
        """The claim script: go-delayed's liveness key (``id`` = "1" with a TTL), set only if no one holds
        it, plus the registry entry, in one round trip. It works at maxmemory too (see claim.lua).

        Milliseconds keep sub-second and fractional timeouts exact (go-delayed and delayed 1.2 sent
        "1.5" to SETEX, which Redis rejects).
        """
        with unavailable_as_broker_error():
            named = (worker_id,) if self.keys.clustered else ()  # the id, where the key is not the id
            return bool(scripts.CLAIM(self.client.execute_command, (self.keys.liveness(worker_id), self.keys.workers),
                                      (scripts.ms(ttl), scripts.ms(time.time()), *named)))

    def keep_alive(self, worker_ids: Iterable[str], ttl: float) -> None:
        """The keep-alive script: PEXPIRE every id (allowed at maxmemory, unlike SET) and refresh the
        registry, in one round trip."""
        ids = list(worker_ids)
        if not ids:
            return
        with unavailable_as_broker_error():
            named = ids if self.keys.clustered else ()  # the ids, where the keys are not the ids
            scripts.KEEP_ALIVE(self.client.execute_command,
                               (self.keys.workers, *(self.keys.liveness(worker_id) for worker_id in ids)),
                               (scripts.ms(ttl), scripts.ms(time.time()), *named))

    def go_offline(self, worker_ids: Iterable[str]) -> None:
        """Delete the liveness keys, registry entries and announced details (one round trip)."""
        ids = list(worker_ids)
        if not ids:
            return
        for worker_id in ids:
            self._blocking_clients.pop(worker_id, None)
        with unavailable_as_broker_error(), self.client.pipeline(transaction=False) as pipe:
            # DEL by name: a cluster pipeline's delete() takes one key (these share the queue's slot there)
            pipe.execute_command("DEL", *(self.keys.liveness(worker_id) for worker_id in ids))
            pipe.zrem(self.keys.workers, *ids)
            pipe.hdel(self.keys.worker_info, *ids)
            pipe.execute()
