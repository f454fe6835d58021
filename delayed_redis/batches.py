"""Prefetch on Redis: the :class:`~delayed_core.interfaces.batches.Batches` role, one script call a batch.

Mixed into :class:`~delayed_redis.broker.RedisBroker`. A prefetching slot settles the tasks it ran, hands
back unstarted ones at a stop, and takes up to K new ones in one ``release_take_batch`` call (see the
script's header), which also writes the records of the tracked tasks it releases. Each task is held under
its own worker id in its own queue's ``N_processing``, so the go-delayed layout and the per-queue sweep
are unchanged. In the cluster layout a batch serves one queue (ClusterBroker.batch_spans_queues).

A slot sends its next batch call before it runs the last tasks it holds and reads the reply after
(:meth:`RedisBatches.start_release_take_batch`), on a connection of its thread kept for that call alone:
one more connection per prefetching slot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import redis

from delayed_core.interfaces.batches import Batches, Finished, Held

from . import scripts
from .connection import unavailable_as_broker_error
from .direct import DirectCaller
from .keys import QueueKeys
from .monitoring import this_minute
from .split_call import SplitCaller
from .tracking import settle_args

RELEASE_TAKE_BATCH = scripts.load_script("release_take_batch", helpers=("_settle",))
_MAKING = threading.Lock()


@lru_cache(maxsize=64)
def _batch_keys(queues: tuple[str, ...], layout: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the script's KEYS for ``queues``, each queue's N_processing), built once per group."""
    all_keys = [QueueKeys.for_queue(name, layout) for name in queues]
    keys = tuple(key for k in all_keys for key in (k.queue, k.notifications, k.processing, k.recoveries,
                                                     k.throughput))
    return keys, tuple(k.processing for k in all_keys)


@lru_cache(maxsize=64)
def _queue_keys(queue: str, layout: str) -> QueueKeys:
    """A queue's keys, for its records' names (in its slot in the cluster layout), built once."""
    return QueueKeys.for_queue(queue, layout)


def _batch_call(done: Sequence[Finished], unstarted: Sequence[Held], take_ids: Sequence[str],
                queues: Sequence[str], layout: str) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """The KEYS and ARGV of one release_take_batch call (see the script's header)."""
    group = tuple(queues)
    queue_keys, _ = _batch_keys(group, layout)
    records: list[str] = []
    args: list[Any] = [this_minute(), len(group), len(done)]
    for finished in done:
        held, finish = finished.held, finished.finish
        args += (held.worker_id, group.index(held.queue) + 1)
        if finish is None:
            args.append(0)
            continue
        records.append(_queue_keys(held.queue, layout).record(finish.task_id))
        args += (len(records), *settle_args(finish))
    args.append(len(unstarted))
    for held in unstarted:
        args += (held.worker_id, group.index(held.queue) + 1)
    args += (len(take_ids), *take_ids)
    return (*queue_keys, *records), tuple(args)


def _taken(reply: list[Any], take_ids: Sequence[str], queues: Sequence[str]) -> list[Held]:
    """The tasks a release_take_batch reply says were taken: {i, j, task} triples."""
    return [Held(take_ids[int(reply[n]) - 1], queues[int(reply[n + 1]) - 1], reply[n + 2])
            for n in range(0, len(reply), 3)]


class RedisBatches(Batches):
    """:class:`Batches` for Redis (see the module docstring)."""

    # Provided by RedisBroker.
    client: redis.Redis
    keys: QueueKeys
    _call: Callable[..., Any]
    _batch_caller: SplitCaller  # made at the first start_release_take_batch (_split_caller)

    def release_take_batch(self, done: Sequence[Finished], unstarted: Sequence[Held], take_ids: Sequence[str],
                           queues: Sequence[str]) -> list[Held]:
        """The release_take_batch script, tracked tasks' records included: 1 round trip for the batch."""
        keys, args = _batch_call(done, unstarted, take_ids, queues, self.keys.layout)
        with unavailable_as_broker_error():
            reply = RELEASE_TAKE_BATCH(self._call, keys, args)
        return _taken(reply, take_ids, queues)

    def start_release_take_batch(self, done: Sequence[Finished], unstarted: Sequence[Held],
                                 take_ids: Sequence[str], queues: Sequence[str]) -> Callable[[], list[Held]]:
        """The same script, sent now on the thread's own batch connection (split_call.py) and its reply
        read when the returned function is called: Redis runs it while the slot runs tasks."""
        caller = self._split_caller()
        if caller is None:  # a cluster client has no one connection to send on
            return super().start_release_take_batch(done, unstarted, take_ids, queues)
        keys, args = _batch_call(done, unstarted, take_ids, queues, self.keys.layout)
        with unavailable_as_broker_error():
            caller.send(*RELEASE_TAKE_BATCH.command(keys, args))

        def result() -> list[Held]:
            with unavailable_as_broker_error():
                try:
                    reply = caller.receive()
                except redis.exceptions.NoScriptError:  # the call did not run: load the script, call again
                    reply = RELEASE_TAKE_BATCH(caller, keys, args)
            return _taken(reply, take_ids, queues)

        return result

    def _split_caller(self) -> SplitCaller | None:
        """This broker's :class:`SplitCaller`, made at its first use; None when it sends through the pool."""
        caller: SplitCaller | None = getattr(self, "_batch_caller", None)
        if caller is None and isinstance(self._call, DirectCaller):
            with _MAKING:  # two slots' first calls: one caller, so each thread reads where it sent
                caller = getattr(self, "_batch_caller", None)
                if caller is None:
                    caller = self._batch_caller = SplitCaller(self.client.connection_pool)
        return caller

    def held_by(self, worker_ids: Sequence[str], queues: Sequence[str]) -> list[Held]:
        """One HMGET per queue, pipelined: 1 round trip."""
        _, processing = _batch_keys(tuple(queues), self.keys.layout)
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
