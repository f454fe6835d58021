"""The admin role of the Redis broker: info, queue discovery, dead letters, clear."""

from __future__ import annotations

import redis

from delayed_core.interfaces import Admin, QueueInfo

from . import scripts
from .connection import unavailable_as_broker_error
from .keys import QueueKeys

#: keys whose names reveal a queue to ``discover_queues`` (a queue's own list has no suffix to find)
DISCOVERY_SUFFIXES = ("_noti", "_processing", "_dead", "_scheduled")


class RedisAdmin(Admin):
    """Mixed into :class:`~delayed_redis.broker.RedisBroker`."""

    # Provided by RedisBroker.
    name: str
    client: redis.Redis
    keys: QueueKeys

    def info(self) -> QueueInfo:
        """Lengths, held tasks and whether their workers live, registered live workers: 2 round trips."""
        k = self.keys
        with unavailable_as_broker_error():
            with self.client.pipeline(transaction=False) as pipe:
                pipe.llen(k.queue).llen(k.notifications).zcard(k.scheduled).llen(k.dead)
                pipe.hgetall(k.processing).zrange(k.workers, 0, -1).get(k.bound)
                length, notifications, scheduled, dead, processing, registered, bound = pipe.execute()
            holders = [key.decode() for key in processing]
            registered_ids = [member.decode() for member in registered]
            ids = holders + registered_ids
            alive: list[bool] = []
            if ids:
                with self.client.pipeline(transaction=False) as pipe:
                    for worker_id in ids:
                        pipe.exists(k.liveness(worker_id))
                    alive = [bool(flag) for flag in pipe.execute()]
        held = {worker_id: (processing[worker_id.encode()], alive[i]) for i, worker_id in enumerate(holders)}
        live = [worker_id for worker_id, ok in zip(registered_ids, alive[len(holders):], strict=True) if ok]
        return QueueInfo(self.name, int(length), int(scheduled), int(dead), held, live,
                         extra={"notifications": int(notifications)},
                         max_length=None if bound is None else int(bound))

    def discover_queues(self) -> list[str]:
        """Names of the queues on this Redis database, found by SCAN (an admin command, not a hot path)."""
        names = set()
        with unavailable_as_broker_error():
            for suffix in DISCOVERY_SUFFIXES:
                for key in self.client.scan_iter(match=f"*{suffix}", count=1000):
                    names.add(key.decode(errors="replace")[: -len(suffix)])
        return sorted(names)

    def dead_letters(self, start: int = 0, stop: int = -1) -> list[bytes]:
        """LRANGE over the dead-letter list, newest first."""
        with unavailable_as_broker_error():
            return list(self.client.lrange(self.keys.dead, start, stop))

    def remove_dead_letter(self, entry: bytes, requeue_task: bytes | None = None) -> bool:
        """Remove an entry, and enqueue its task with it when asked, atomically."""
        keys = (self.keys.dead, self.keys.queue, self.keys.notifications)
        with unavailable_as_broker_error():
            return bool(scripts.REVIVE(self.client.execute_command, keys, (entry, requeue_task or b"")))

    def purge_dead_letters(self) -> int:
        """Delete the dead-letter list; return how many entries it had."""
        with unavailable_as_broker_error(), self.client.pipeline(transaction=True) as pipe:
            # DEL by name: a cluster pipeline's delete() neither chains nor takes several keys
            pipe.llen(self.keys.dead)
            pipe.execute_command("DEL", self.keys.dead)
            count, _ = pipe.execute()
        return int(count)

    def clear(self) -> None:
        """Delete every key of this queue."""
        with unavailable_as_broker_error():
            self.client.delete(*self.keys.all())
