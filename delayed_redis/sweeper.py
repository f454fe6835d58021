"""The Sweeper role of the Redis broker: the sweep and bury scripts, promotion of due tasks."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import redis

from delayed_core.interfaces import Poisoned, Sweeper, SweepReport

from . import scripts
from .connection import unavailable_as_broker_error
from .expiry_events import RedisExpiryWatcher
from .keys import QueueKeys
from .schedule_watcher import RedisScheduleWatcher

#: scheduled tasks moved per promote call: well under 1 ms of Redis time, however large the sorted set
#: (docs/benchmarks.md, scheduled backlog)
PROMOTE_LIMIT = 200
#: forget worker registry entries silent for this long (seconds)
WORKER_REGISTRY_TTL = 3600
#: poison tasks one sweep returns at most (the next sweep returns the rest)
POISON_BATCH = 1000
#: held entries one sweep call looks at, at most: under 1 ms of Redis time per call, so that no call
#: blocks Redis for long however many workers hold tasks (docs/benchmarks.md)
SWEEP_BUDGET = 50
#: held entries one HSCAN step of a sweep reads (cut into calls of SWEEP_BUDGET): fewer round trips
HSCAN_COUNT = 10 * SWEEP_BUDGET
#: notifications one sweep call adds or removes at most (about 1 ms too: they are pushed 1000 a command)
FIX_BUDGET = 10000

logger = logging.getLogger("delayed.sweeper")


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def unpack_poisoned(entry: bytes) -> Poisoned:
    """Read an ``N_poison`` entry, ``b"<length of worker id> <times lost> <worker id><task>"``."""
    size, attempts, rest = entry.split(b" ", 2)
    cut = int(size)
    return Poisoned(rest[cut:], rest[:cut].decode(errors="replace"), int(attempts), entry)


class _Tally:
    """The sum of a sweep's script calls."""

    def __init__(self) -> None:
        self.requeued = self.poisoned = self.notifications = 0
        self.skipped: list[bytes] = []
        self.poison: list[bytes] = []
        self.more = False

    def add(self, reply: list, last: bool) -> None:  # type: ignore[type-arg]
        """Count one call's reply: {requeued, poisoned, notifications, skipped ids, more, poison}; the
        poison list is the one of the ``last`` calls (the others return none)."""
        requeued, poisoned, notifications, skipped, more, poison = reply
        self.requeued += int(requeued)
        self.poisoned += int(poisoned)
        self.notifications += int(notifications)
        self.skipped += skipped
        self.more = bool(more)
        if last:
            self.poison = poison


class RedisSweeper(Sweeper):
    """Mixed into :class:`~delayed_redis.broker.RedisBroker`."""

    # Provided by RedisBroker.
    name: str
    client: redis.Redis
    keys: QueueKeys
    clock_offset: float

    def sweep(self, max_recoveries: int = 0) -> SweepReport:
        """Requeue dead workers' tasks, set poison ones aside in ``N_poison`` (returned, with any left there
        before), fix notifications: see sweep.lua. In bounded steps, so that no step blocks Redis for long
        however many workers hold tasks: one HSCAN step of ``N_processing`` per :data:`HSCAN_COUNT` held
        entries and one script call per :data:`SWEEP_BUDGET` (a queue held by fewer workers: 2 round trips)."""
        k = self.keys
        keys = (k.queue, k.notifications, k.processing, k.poison, k.recoveries, k.workers, k.dead)
        args = (max_recoveries, scripts.ms(time.time() - WORKER_REGISTRY_TTL), POISON_BATCH, FIX_BUDGET)
        tally = _Tally()
        with unavailable_as_broker_error():
            cursor = 0
            while True:
                cursor, held = self.client.hscan(k.processing, cursor, count=HSCAN_COUNT)
                ids = list(held)
                for first in range(0, max(len(ids), 1), SWEEP_BUDGET):
                    last = cursor == 0 and first + SWEEP_BUDGET >= len(ids)
                    chunk = ids[first:first + SWEEP_BUDGET]
                    # The cluster layout declares every key a script touches: the chunk's liveness keys too.
                    liveness = tuple(k.liveness(_text(worker_id)) for worker_id in chunk) if k.clustered else ()
                    tally.add(scripts.SWEEP(self.client.execute_command, (*keys, *liveness),
                                            (*args, "last" if last else "", *chunk)), last)
                if cursor == 0:
                    break
            while tally.more:  # a notification gap or a stale registry larger than one call's budget
                tally.add(scripts.SWEEP(self.client.execute_command, keys, (*args, "last")), True)
        if tally.skipped:  # once per sweep, one line; they stay held until someone removes the foreign keys
            names = ", ".join(sorted({worker_id.decode(errors="replace") for worker_id in tally.skipped}))
            logger.warning("queue %s: skipped %d entr%s of %s whose worker id names a key that is not a string "
                           "(another program's key?): %s", self.name, len(tally.skipped),
                           "y" if len(tally.skipped) == 1 else "ies", k.processing, names)
        return SweepReport(self.name, tally.requeued, tally.poisoned, extra={"notifications": tally.notifications},
                           poison=tuple(unpack_poisoned(entry) for entry in tally.poison))

    def bury(self, poisoned: Poisoned, entry: bytes, keep: int = 10000) -> bool:
        """The bury script (1 round trip per poison task, which is rare): store the entry and take the task
        out of ``N_poison`` at once."""
        with unavailable_as_broker_error():
            return bool(scripts.BURY(self.client.execute_command, (self.keys.poison, self.keys.dead),
                                     (poisoned.handle, entry, keep)))

    def promote_and_peek(self, now: float | None = None) -> tuple[int, float | None]:
        """Move due scheduled tasks (PROMOTE_LIMIT per script call); also return when the next one falls due, in
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

    def watch_schedule(self, also: Sequence[str] = ()) -> RedisScheduleWatcher:
        """A pub/sub watcher on the announcements of scheduled tasks of this queue and the queues ``also``
        named, on one connection (due times in the server's clock, read in ours with the offset the last
        promotion saw: the queues share this broker's server)."""
        channels = [self.keys.scheduled, *(QueueKeys.for_queue(name, self.keys.layout).scheduled for name in also)]
        return RedisScheduleWatcher(self.client, channels, lambda: self.clock_offset)

    def watch_lost_workers(self, enable: bool = True) -> RedisExpiryWatcher:
        """Keyspace expiry events of this database (delayed_redis/expiry_events.py)."""
        return RedisExpiryWatcher(self.client, enable)
