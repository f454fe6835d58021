"""A Redis worker serving several queues in strict priority order, at the round trips of one queue.

Mixed into :class:`~delayed_redis.broker.RedisBroker`, over the one-queue methods of ``consumer.py``.
An idle slot sends one BLPOP over every queue's ``N_noti`` (Redis pops the first non-empty list in the
order given) and then the dequeue_first script; a busy slot sends one release_take_first script, which
takes from the highest queue that has work. Each task is held in its own queue's ``N_processing`` under
the slot's id, so the per-queue sweeper recovers it as usual. A worker of one queue goes through the
one-queue methods, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from delayed_core import crashpoints

from . import scripts
from .connection import longest_block, unavailable_as_broker_error
from .consumer import RedisConsumer
from .keys import QueueKeys
from .monitoring import this_minute


@lru_cache(maxsize=64)
def _group_keys(queues: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]], dict[bytes, int]]:
    """Keys of several queues in priority order, as the ``*_first`` scripts take them: (dequeue keys,
    queue -> release keys when that queue's task is released, N_noti name -> 1-based index). Cached: a
    worker asks for the same group per task."""
    all_keys = [QueueKeys.for_queue(name) for name in queues]
    take = tuple(key for k in all_keys for key in (k.queue, k.notifications, k.processing))
    release = tuple(key for k in all_keys for key in (k.queue, k.notifications, k.processing, k.recoveries))
    # The released queue's counters go last (one key more, not one per queue: only one queue counts).
    releasing = {k.queue: (*release, k.throughput) for k in all_keys}
    index = {k.notifications.encode(): i + 1 for i, k in enumerate(all_keys)}
    return take, releasing, index


class SeveralQueues(RedisConsumer):
    """The consumer role with the ``*_first`` methods for Redis (see the module docstring)."""

    serves_several_queues = True

    def dequeue_first(self, worker_id: str, queues: Sequence[str], timeout: float) -> tuple[str, bytes] | None:
        """One BLPOP over every queue's ``N_noti`` (Redis pops the first non-empty one in the order given,
        so priority holds), then the dequeue_first script: 2 round trips, only when every queue was idle."""
        if tuple(queues) == (self.name,):
            return super().dequeue_first(worker_id, queues, timeout)
        group = tuple(queues)
        take_keys, _, index = _group_keys(group)
        with unavailable_as_broker_error():
            self._remember_blocking(worker_id)
            popped = self._call("BLPOP", *take_keys[1::3], min(timeout, longest_block()))
            if popped is None:
                return None
            crashpoints.reached("after_blpop")
            reply = scripts.DEQUEUE_FIRST(self._call, take_keys, (worker_id, index[popped[0]]))
        return None if reply is None else (group[int(reply[0]) - 1], reply[1])

    def release_and_take_first(self, worker_id: str, queue: str, queues: Sequence[str],
                               take_next: bool) -> tuple[str, bytes] | None:
        """The release_take_first script over every queue's keys: 1 round trip."""
        if queue == self.name and tuple(queues) == (queue,):  # one queue: its own script, checks done here
            raw = self.release(worker_id, take_next)
            return None if raw is None else (queue, raw)
        group = tuple(queues)
        _, releasing, _ = _group_keys(group)
        args = (worker_id, group.index(queue) + 1, "1" if take_next else "0", this_minute())
        with unavailable_as_broker_error():
            reply = scripts.RELEASE_TAKE_FIRST(getattr(self._call, "repeated", self._call), releasing[queue], args)
        return None if reply is None else (group[int(reply[0]) - 1], reply[1])

    def held_in(self, worker_id: str, queues: Sequence[str]) -> tuple[str, bytes] | None:
        """HGET the slot's entry in every queue's N_processing, pipelined: 1 round trip."""
        if tuple(queues) == (self.name,):
            return super().held_in(worker_id, queues)
        with unavailable_as_broker_error(), self.client.pipeline(transaction=False) as pipe:
            for name in queues:
                pipe.hget(QueueKeys.for_queue(name).processing, worker_id)
            found = pipe.execute()
        return next(((name, raw) for name, raw in zip(queues, found, strict=True) if raw is not None), None)
