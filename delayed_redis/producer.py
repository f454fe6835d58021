"""The producer role of the Redis broker: enqueue, schedule, length."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis

from delayed_core.interfaces import Producer

from . import scripts
from .connection import unavailable_as_broker_error
from .errors import translate
from .keys import QueueKeys
from .replicas import ReplicaWait

#: tasks per RPUSH in a batch: bounds one command's size, not the number of round trips
CHUNK = 5000


def push_commands(keys: QueueKeys, tasks: Sequence[bytes]) -> list[tuple[Any, ...]]:
    """The RPUSH commands that write a batch and one notification per task, ``CHUNK`` tasks a command;
    the caller sends them in one MULTI/EXEC (the sync and the asyncio broker alike)."""
    commands: list[tuple[Any, ...]] = []
    for first in range(0, len(tasks), CHUNK):
        chunk = tasks[first:first + CHUNK]
        commands += [("RPUSH", keys.queue, *chunk), ("RPUSH", keys.notifications, *(b"1",) * len(chunk))]
    return commands


def schedule_args(tasks: Sequence[bytes], due: float) -> tuple[Any, ...]:
    """The schedule script's arguments: the delay by this process's clock (the script adds the server's
    time, so clocks that disagree do not matter), then each task behind a random 16-char prefix (equal
    tasks scheduled at the same time stay two members of the sorted set)."""
    return (scripts.ms(due - time.time()), *(secrets.token_hex(8).encode() + task for task in tasks))


class RedisProducer(Producer):
    """Mixed into :class:`~delayed_redis.broker.RedisBroker`."""

    # Provided by RedisBroker: the pool client, the per-thread hot-path caller, the queue's keys.
    client: redis.Redis
    _call: Callable[..., Any]
    keys: QueueKeys
    replica_wait: ReplicaWait

    def enqueue(self, tasks: Sequence[bytes]) -> None:
        """One round trip: a script call for one task, one MULTI/EXEC for a batch."""
        try:
            if len(tasks) == 1:
                scripts.ENQUEUE(self._call, (self.keys.queue, self.keys.notifications), (tasks[0],))
                if self.replica_wait:
                    self.replica_wait.after(self._call)  # +1 round trip, only with wait_replicas
                return
            if self.replica_wait:
                self.replica_wait.push_batch(self.client, push_commands(self.keys, tasks))
                return
            with self.client.pipeline(transaction=True) as pipe:
                for command in push_commands(self.keys, tasks):
                    pipe.execute_command(*command)
                pipe.execute()
        except redis.exceptions.RedisError as exc:
            raise translate(exc) from exc

    def schedule(self, tasks: Sequence[bytes], due: float) -> None:
        """The schedule script (1 round trip): ZADD at the server's time plus the delay, PUBLISH the due
        time. ``due`` becomes a delay by this process's clock, so clocks that disagree do not matter.
        On the hot-path caller, as enqueue (redis-py's pool checkout made it 3x slower per call). With
        ``wait_replicas``, WAIT is pipelined behind the script on one pool connection: still 1 round trip."""
        keys, args = (self.keys.scheduled,), schedule_args(tasks, due)
        with unavailable_as_broker_error():
            if self.replica_wait:
                self.replica_wait.script(self.client, scripts.SCHEDULE, keys, args)
            else:
                scripts.SCHEDULE(self._call, keys, args)

    def __len__(self) -> int:
        with unavailable_as_broker_error():
            return int(self.client.llen(self.keys.queue))
