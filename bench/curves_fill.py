"""Fast fills for the scaling curves: millions of waiting, scheduled, held or dead tasks in seconds.

Each fill writes exactly what pydelayed's own scripts write, in the same keys, but with pipelined
multi-value commands instead of one script call per task (a 5M-task queue would otherwise take ten
minutes to build):

- a waiting task is one element of the ``N`` list plus one ``"1"`` in ``N_noti`` (enqueue.lua);
- a scheduled task is one ``N_scheduled`` member, 16 hex chars + the task bytes, scored by its due time
  in unix ms (schedule.lua);
- a held task is one ``N_processing`` field, worker id -> task bytes, and a live worker's id is a string
  key with a TTL (claim.lua, keep_alive.lua);
- a dead letter is one JSON entry of ``N_dead``, newest first (dead_letter.lua).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import redis

from delayed_core.deadletter import DeadLetter, Reason
from delayed_redis.keys import QueueKeys

#: values per multi-value command, and commands per pipeline round trip
VALUES_PER_COMMAND = 1000
COMMANDS_PER_TRIP = 20


def _chunks(n: int, size: int = VALUES_PER_COMMAND) -> Iterator[int]:
    """Sizes of successive chunks covering ``n``."""
    for first in range(0, n, size):
        yield min(size, n - first)


def _pipelined(client: redis.Redis, commands: Iterator[tuple[object, ...]]) -> None:
    """Send ``commands`` in pipelines of :data:`COMMANDS_PER_TRIP`."""
    pipe = client.pipeline(transaction=False)
    pending = 0
    for command in commands:
        pipe.execute_command(*command)
        pending += 1
        if pending == COMMANDS_PER_TRIP:
            pipe.execute()
            pending = 0
    if pending:
        pipe.execute()


def fill_waiting(client: redis.Redis, keys: QueueKeys, task: bytes, n: int) -> None:
    """``n`` waiting tasks: RPUSH to ``N`` and a ``"1"`` each to ``N_noti``."""

    def commands() -> Iterator[tuple[object, ...]]:
        for size in _chunks(n):
            yield ("RPUSH", keys.queue, *([task] * size))
            yield ("RPUSH", keys.notifications, *(["1"] * size))

    _pipelined(client, commands())


def scheduled_member(task: bytes) -> bytes:
    """An ``N_scheduled`` member: 16 unique hex chars, then the task bytes."""
    return secrets.token_hex(8).encode() + task


def fill_scheduled(client: redis.Redis, keys: QueueKeys, task: bytes, n: int, due_ms: Callable[[int], int]) -> None:
    """``n`` scheduled tasks; task ``i`` falls due at ``due_ms(i)``."""

    def commands() -> Iterator[tuple[object, ...]]:
        done = 0
        for size in _chunks(n):
            args: list[object] = []
            for i in range(done, done + size):
                args += [due_ms(i), scheduled_member(task)]
            done += size
            yield ("ZADD", keys.scheduled, *args)

    _pipelined(client, commands())


def fill_held(client: redis.Redis, keys: QueueKeys, tasks: list[bytes], prefix: str, ttl: int | None) -> list[str]:
    """``tasks`` held by ids ``<prefix><i>``; each id gets a liveness key with ``ttl`` seconds (a live
    worker) or none (a dead one). Returns the ids."""
    ids = [f"{prefix}{i}" for i in range(len(tasks))]

    def commands() -> Iterator[tuple[object, ...]]:
        for first in range(0, len(ids), VALUES_PER_COMMAND):
            pairs = zip(ids[first:first + VALUES_PER_COMMAND], tasks[first:first + VALUES_PER_COMMAND], strict=True)
            yield ("HSET", keys.processing, *(value for pair in pairs for value in pair))
            if ttl is not None:
                yield from (("SET", worker_id, "1", "EX", ttl) for worker_id in ids[first:first + VALUES_PER_COMMAND])

    _pipelined(client, commands())
    return ids


def dead_letter(task: bytes, i: int) -> bytes:
    """A typical dead letter: a failed task with a short traceback."""
    traceback = ("Traceback (most recent call last):\n  File \"app/tasks.py\", line 42, in charge\n"
                 "    raise ValueError(f\"card declined: {code}\")\nValueError: card declined: 51\n")
    return DeadLetter(task, Reason.FAILED, "ValueError: card declined: 51", traceback, "bench",
                      f"worker-{i % 8}", 3, func="bench.peers.pydelayed_peer:noop").to_json()


def fill_dead(client: redis.Redis, keys: QueueKeys, task: bytes, n: int) -> None:
    """``n`` dead letters in ``N_dead``."""

    def commands() -> Iterator[tuple[object, ...]]:
        done = 0
        for size in _chunks(n):
            yield ("LPUSH", keys.dead, *(dead_letter(task, i) for i in range(done, done + size)))
            done += size

    _pipelined(client, commands())
