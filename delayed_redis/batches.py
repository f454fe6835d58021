"""Prefetch on Redis: the :class:`~delayed_core.interfaces.batches.Batches` role, one script call a batch.

Mixed into :class:`~delayed_redis.broker.RedisBroker`. A prefetching slot settles the tasks it ran, hands
back unstarted ones at a stop, and takes up to K new ones in one ``release_take_batch`` call (see the
script's header); each task is held under its own worker id in its own queue's ``N_processing``, so the
go-delayed layout and the per-queue sweep are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import redis

from delayed_core.interfaces.batches import Batches, Held

from . import scripts
from .connection import unavailable_as_broker_error
from .keys import QueueKeys
from .monitoring import this_minute

RELEASE_TAKE_BATCH = scripts.load_script("release_take_batch")


@lru_cache(maxsize=64)
def _batch_keys(queues: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the script's KEYS for ``queues``, each queue's N_processing), built once per group."""
    all_keys = [QueueKeys.for_queue(name) for name in queues]
    keys = tuple(key for k in all_keys for key in (k.queue, k.notifications, k.processing, k.recoveries,
                                                     k.throughput))
    return keys, tuple(k.processing for k in all_keys)


class RedisBatches(Batches):
    """:class:`Batches` for Redis (see the module docstring)."""

    # Provided by RedisBroker.
    client: redis.Redis
    _call: Callable[..., Any]

    def release_take_batch(self, done: Sequence[Held], unstarted: Sequence[Held], take_ids: Sequence[str],
                           queues: Sequence[str]) -> list[Held]:
        """The release_take_batch script: 1 round trip for the whole batch."""
        group = tuple(queues)
        keys, _ = _batch_keys(group)
        args: list[Any] = [this_minute()]
        for settled in (done, unstarted):
            args.append(len(settled))
            for held in settled:
                args += (held.worker_id, group.index(held.queue) + 1)
        args += (len(take_ids), *take_ids)
        with unavailable_as_broker_error():
            reply = RELEASE_TAKE_BATCH(self._call, keys, tuple(args))
        return [Held(take_ids[int(reply[n]) - 1], group[int(reply[n + 1]) - 1], reply[n + 2])
                for n in range(0, len(reply), 3)]

    def held_by(self, worker_ids: Sequence[str], queues: Sequence[str]) -> list[Held]:
        """One HMGET per queue, pipelined: 1 round trip."""
        _, processing = _batch_keys(tuple(queues))
        with unavailable_as_broker_error(), self.client.pipeline(transaction=False) as pipe:
            for key in processing:
                pipe.hmget(key, list(worker_ids))
            found = pipe.execute()
        held: list[Held] = []
        for index, worker_id in enumerate(worker_ids):
            for queue, values in zip(queues, found, strict=True):
                if values[index] is not None:
                    held.append(Held(worker_id, queue, values[index]))
                    break
        return held
