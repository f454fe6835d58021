"""The Sweeper role of the Redis broker: the sweep and bury scripts, promotion of due tasks."""

from __future__ import annotations

import logging
import time

import redis

from delayed_core.interfaces import Poisoned, Sweeper, SweepReport

from . import scripts
from .connection import unavailable_as_broker_error
from .expiry_events import RedisExpiryWatcher
from .keys import QueueKeys
from .schedule_watcher import RedisScheduleWatcher

#: scheduled tasks moved per promote call
PROMOTE_LIMIT = 1000
#: forget worker registry entries silent for this long (seconds)
WORKER_REGISTRY_TTL = 3600
#: poison tasks one sweep returns at most (the next sweep returns the rest)
POISON_BATCH = 1000

logger = logging.getLogger("delayed.sweeper")


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def unpack_poisoned(entry: bytes) -> Poisoned:
    """Read an ``N_poison`` entry, ``b"<length of worker id> <times lost> <worker id><task>"``."""
    size, attempts, rest = entry.split(b" ", 2)
    cut = int(size)
    return Poisoned(rest[cut:], rest[:cut].decode(errors="replace"), int(attempts), entry)


class RedisSweeper(Sweeper):
    """Mixed into :class:`~delayed_redis.broker.RedisBroker`."""

    # Provided by RedisBroker.
    name: str
    client: redis.Redis
    keys: QueueKeys
    clock_offset: float

    def sweep(self, max_recoveries: int = 0) -> SweepReport:
        """The sweep script (1 round trip): requeue dead workers' tasks, set poison ones aside in
        ``N_poison`` (returned, with any left there before), fix notifications. See sweep.lua."""
        k = self.keys
        keys: tuple[str, ...] = (k.queue, k.notifications, k.processing, k.poison, k.recoveries, k.workers, k.dead)
        args: tuple[object, ...] = (max_recoveries, scripts.ms(time.time() - WORKER_REGISTRY_TTL), POISON_BATCH)
        with unavailable_as_broker_error():
            if k.clustered:
                # Every key a script touches must be declared: read who holds tasks first (1 round trip
                # more), then name their liveness keys. Entries taken in between wait for the next sweep.
                holders = [_text(worker_id) for worker_id in self.client.hkeys(k.processing)]
                keys += tuple(k.liveness(worker_id) for worker_id in holders)
                args += ("listed", *holders)
            requeued, poisoned, notifications, skipped, poison = scripts.SWEEP(
                self.client.execute_command, keys, args)
        if skipped:  # once per sweep, one line; they stay held until someone removes the foreign keys
            ids = ", ".join(worker_id.decode(errors="replace") for worker_id in skipped)
            logger.warning("queue %s: skipped %d entr%s of %s whose worker id names a key that is not a string "
                           "(another program's key?): %s", self.name, len(skipped),
                           "y" if len(skipped) == 1 else "ies", k.processing, ids)
        return SweepReport(self.name, int(requeued), int(poisoned), extra={"notifications": int(notifications)},
                           poison=tuple(unpack_poisoned(entry) for entry in poison))

    def bury(self, poisoned: Poisoned, entry: bytes, keep: int = 10000) -> bool:
        """The bury script (1 round trip per poison task, which is rare): store the entry and take the task
        out of ``N_poison`` at once."""
        with unavailable_as_broker_error():
            return bool(scripts.BURY(self.client.execute_command, (self.keys.poison, self.keys.dead),
                                     (poisoned.handle, entry, keep)))

    def promote_and_peek(self, now: float | None = None) -> tuple[int, float | None]:
        """Move due scheduled tasks (1000 per script call); also return when the next one falls due, in
        this process's clock. Due times follow the server's clock unless ``now`` is given (tests)."""
        keys = (self.keys.queue, self.keys.notifications, self.keys.scheduled)
        now_arg = "" if now is None else scripts.ms(now)
        moved = 0
        with unavailable_as_broker_error():
            while True:
                count, wait_ms, server_ms = scripts.PROMOTE(self.client.execute_command, keys,
                                                            (now_arg, PROMOTE_LIMIT))
                local = time.time()
                if now is None:
                    self.clock_offset = int(server_ms) / 1000 - local
                moved += int(count)
                if int(count) < PROMOTE_LIMIT:
                    return moved, (local + int(wait_ms) / 1000 if int(wait_ms) >= 0 else None)

    def watch_schedule(self) -> RedisScheduleWatcher:
        """A pub/sub watcher on this queue's announcements of scheduled tasks (due times in the server's
        clock, read in ours with the offset the last promotion saw)."""
        return RedisScheduleWatcher(self.client, self.keys.scheduled, lambda: self.clock_offset)

    def watch_lost_workers(self, enable: bool = True) -> RedisExpiryWatcher:
        """Keyspace expiry events of this database (delayed_redis/expiry_events.py)."""
        return RedisExpiryWatcher(self.client, enable)
