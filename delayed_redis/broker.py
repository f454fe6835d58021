"""RedisBroker: go-delayed's queue protocol on Redis, one method per atomic operation.

Round trips per operation (the hot paths):

- ``enqueue``: 1 (one EVALSHA, or one MULTI/EXEC pipeline for a batch);
- ``dequeue`` on an idle queue: BLPOP, then the dequeue script: 2;
- ``release(take_next=True)`` while busy: 1, and it returns the next task, so a busy slot spends one
  round trip per task;
- a worker serving several queues: the same counts (one BLPOP over every queue's ``N_noti``, one
  release-and-take script over every queue's keys);
- ``keep_alive``: 1 for all the slots of a process.

Every redis-py error leaves as a pydelayed error of one line (see ``errors.py``). Due times of scheduled
tasks follow the Redis server's clock; workers read announced ones with the offset seen at promotion.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable, Sequence

import redis

from delayed_core import crashpoints
from delayed_core.interfaces import Broker, QueueInfo, SweepReport

from . import scripts
from .async_broker import AsyncRedisBroker
from .connection import client_from_url, longest_block, unavailable_as_broker_error
from .direct import DirectCaller
from .errors import translate
from .keys import QueueKeys
from .replicas import REPLICA_WAIT_TIMEOUT, WAIT_REPLICAS, ReplicaWait
from .schedule_watcher import RedisScheduleWatcher
from .several_queues import SeveralQueues
from .tracking import RedisTracker

#: tasks per RPUSH in a batch: bounds one command's size, not the number of round trips
CHUNK = 5000
#: scheduled tasks moved per promote call
PROMOTE_LIMIT = 1000
#: forget worker registry entries silent for this long (seconds)
WORKER_REGISTRY_TTL = 3600

logger = logging.getLogger("delayed.sweeper")


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisBroker(SeveralQueues, Broker):
    """One queue on Redis. Brokers built by one app for one URL share a connection pool."""

    async_broker = AsyncRedisBroker
    #: task records for handles (delayed_core/handles.py)
    tracker_class = RedisTracker

    def __init__(self, name: str, client: redis.Redis, direct: bool = True) -> None:
        super().__init__(name)
        self.client = client
        # Hot paths go through a per-thread connection (see direct.py); the rest through the pool.
        self._call = DirectCaller(client.connection_pool) if direct else client.execute_command
        # worker id -> Redis client id of the connection its slot blocks on, for wake()
        self._blocking_clients: dict[str, int] = {}
        self.keys = QueueKeys.for_queue(name)
        k = self.keys
        self._take_keys = (k.queue, k.notifications, k.processing)
        self._release_keys = (k.queue, k.notifications, k.processing, k.recoveries)
        self._requeue_keys = (k.queue, k.notifications, k.processing, k.scheduled)
        # The server's clock minus ours, in seconds, as last seen by a promotion (see promote_and_peek).
        self.clock_offset = 0.0
        #: WAIT for this many replicas after an enqueue (off unless the wait_replicas setting asks)
        self.replica_wait = ReplicaWait()

    @classmethod
    def from_url(cls, url: str, name: str, shared: dict[str, object]) -> RedisBroker:
        """Build the broker, reusing the client other queues of the same app opened for ``url``."""
        key = f"redis-client:{url}"
        client = shared.get(key)
        if client is None:
            client = shared[key] = client_from_url(url)
        assert isinstance(client, redis.Redis)
        broker = cls(name, client)
        config = shared.get("config")
        if config is not None:
            broker.replica_wait = ReplicaWait(config.get(WAIT_REPLICAS), config.get(REPLICA_WAIT_TIMEOUT))
        return broker

    # -- producers -------------------------------------------------------------------------------
    def enqueue(self, tasks: Sequence[bytes]) -> None:
        """One round trip: a script call for one task, one MULTI/EXEC for a batch."""
        try:
            if len(tasks) == 1:
                scripts.ENQUEUE(self._call, self._take_keys[:2], (tasks[0],))
                if self.replica_wait:
                    self.replica_wait.after(self._call)  # +1 round trip, only with wait_replicas
                return
            if self.replica_wait:
                self.replica_wait.push_batch(self.client, [
                    command for first in range(0, len(tasks), CHUNK) for command in (
                        ("RPUSH", self.keys.queue, *tasks[first:first + CHUNK]),
                        ("RPUSH", self.keys.notifications, *(b"1",) * len(tasks[first:first + CHUNK])))])
                return
            with self.client.pipeline(transaction=True) as pipe:
                for first in range(0, len(tasks), CHUNK):
                    chunk = tasks[first:first + CHUNK]
                    pipe.rpush(self.keys.queue, *chunk)
                    pipe.rpush(self.keys.notifications, *(b"1",) * len(chunk))
                pipe.execute()
        except redis.exceptions.RedisError as exc:
            raise translate(exc) from exc

    def schedule(self, tasks: Sequence[bytes], due: float) -> None:
        """The schedule script (1 round trip): ZADD at the server's time plus the delay, PUBLISH the due
        time. ``due`` becomes a delay by this process's clock, so clocks that disagree do not matter."""
        delay = _ms(due - time.time())
        members = [secrets.token_hex(8).encode() + task for task in tasks]
        with unavailable_as_broker_error():
            scripts.SCHEDULE(self.client.execute_command, (self.keys.scheduled,), (delay, *members))

    # -- workers ---------------------------------------------------------------------------------
    def dequeue(self, worker_id: str, timeout: float) -> bytes | None:
        """BLPOP a notification, then take its task: 2 round trips, only when the queue was idle."""
        try:
            self._remember_blocking(worker_id)
            # Capped inside the socket timeout: a longer block would read as a dead server. The slot simply
            # blocks again.
            if self._call("BLPOP", self.keys.notifications, min(timeout, longest_block())) is None:
                return None
            crashpoints.reached("after_blpop")
            return scripts.DEQUEUE(self._call, self._take_keys, (worker_id,))
        except redis.exceptions.RedisError as exc:
            raise translate(exc) from exc

    def _remember_blocking(self, worker_id: str) -> None:
        """Note which connection ``worker_id``'s BLPOP waits on, for :meth:`wake`."""
        if isinstance(self._call, DirectCaller):
            # Cached per connection: a round trip only when the thread (re)connects.
            client_id = self._call.client_id()
            if client_id is not None:
                self._blocking_clients[worker_id] = client_id

    def wake(self, worker_ids: Iterable[str]) -> None:
        """``CLIENT UNBLOCK`` the connections the slots' BLPOPs wait on (a no-op for a slot not blocked)."""
        with unavailable_as_broker_error():
            for worker_id in worker_ids:
                client_id = self._blocking_clients.get(worker_id)
                if client_id is not None:
                    try:
                        self.client.execute_command("CLIENT", "UNBLOCK", client_id)
                    except redis.exceptions.ResponseError:
                        return  # not allowed by an ACL: slots then notice the stop at their next timeout

    def release(self, worker_id: str, take_next: bool = False) -> bytes | None:
        """The release-and-take script, taking the next task only with ``take_next`` (1 round trip either
        way; a script rather than HDEL so that releasing also forgets the task's poison count)."""
        try:
            return scripts.RELEASE_TAKE(self._call, self._release_keys, (worker_id, "1" if take_next else "0"))
        except redis.exceptions.RedisError as exc:
            raise translate(exc) from exc

    def held(self, worker_id: str) -> bytes | None:
        """HGET the slot's entry in N_processing."""
        with unavailable_as_broker_error():
            return self.client.hget(self.keys.processing, worker_id)

    def requeue(self, worker_id: str, task: bytes, delay: float = 0.0, front: bool = False) -> None:
        """Release and put back in one script (delayed 1.2 did it in two calls and could lose the task).
        A delay counts from the server's clock."""
        args = (worker_id, task, _ms(delay) if delay > 0 else 0, "1" if front else "0", secrets.token_hex(8))
        with unavailable_as_broker_error():
            scripts.REQUEUE(self.client.execute_command, self._requeue_keys, args)

    def dead_letter(self, worker_id: str | None, entry: bytes, keep: int = 10000) -> None:
        """Release and record the entry in one script; the list keeps the newest ``keep`` entries."""
        with unavailable_as_broker_error():
            scripts.DEAD_LETTER(self.client.execute_command, (self.keys.processing, self.keys.dead),
                                (worker_id or "", entry, keep))

    # -- liveness --------------------------------------------------------------------------------
    def claim_worker_id(self, worker_id: str, ttl: float) -> bool:
        """The claim script: go-delayed's liveness key (``id`` = "1" with a TTL), set only if no one holds
        it, plus the registry entry, in one round trip. It works at maxmemory too (see claim.lua).

        Milliseconds keep sub-second and fractional timeouts exact (go-delayed and delayed 1.2 sent
        "1.5" to SETEX, which Redis rejects).
        """
        with unavailable_as_broker_error():
            return bool(scripts.CLAIM(self.client.execute_command, (worker_id, self.keys.workers),
                                      (_ms(ttl), _ms(time.time()))))

    def keep_alive(self, worker_ids: Iterable[str], ttl: float) -> None:
        """The keep-alive script: PEXPIRE every id (allowed at maxmemory, unlike SET) and refresh the
        registry, in one round trip."""
        ids = list(worker_ids)
        if not ids:
            return
        with unavailable_as_broker_error():
            scripts.KEEP_ALIVE(self.client.execute_command, (self.keys.workers, *ids),
                               (_ms(ttl), _ms(time.time())))

    def go_offline(self, worker_ids: Iterable[str]) -> None:
        """Delete the liveness keys and registry entries (one round trip)."""
        ids = list(worker_ids)
        if not ids:
            return
        for worker_id in ids:
            self._blocking_clients.pop(worker_id, None)
        with unavailable_as_broker_error(), self.client.pipeline(transaction=False) as pipe:
            pipe.delete(*ids)
            pipe.zrem(self.keys.workers, *ids)
            pipe.execute()

    # -- maintenance -----------------------------------------------------------------------------
    def requeue_lost(self, max_recoveries: int = 0, dead_keep: int = 10000) -> SweepReport:
        """Run the sweep script (requeue dead workers' tasks, cap poison tasks, fix notifications)."""
        k = self.keys
        now = time.time()
        args = (max_recoveries, f"{now:.3f}", dead_keep, self.name, _ms(now - WORKER_REGISTRY_TTL))
        with unavailable_as_broker_error():
            requeued, poisoned, notifications, skipped = scripts.SWEEP(
                self.client.execute_command,
                (k.queue, k.notifications, k.processing, k.dead, k.recoveries, k.workers), args)
        if skipped:  # once per sweep, one line; they stay held until someone removes the foreign keys
            ids = ", ".join(worker_id.decode(errors="replace") for worker_id in skipped)
            logger.warning("queue %s: skipped %d entr%s of %s whose worker id names a key that is not a string "
                           "(another program's key?): %s", self.name, len(skipped),
                           "y" if len(skipped) == 1 else "ies", k.processing, ids)
        return SweepReport(self.name, int(requeued), int(poisoned), int(notifications))

    def promote_due(self, now: float | None = None) -> int:
        """Move due scheduled tasks into the queue, 1000 per script call."""
        return self.promote_and_peek(now)[0]

    def promote_and_peek(self, now: float | None = None) -> tuple[int, float | None]:
        """Move due scheduled tasks (1000 per script call); also return when the next one falls due, in
        this process's clock. Due times follow the server's clock unless ``now`` is given (tests)."""
        keys = (self.keys.queue, self.keys.notifications, self.keys.scheduled)
        now_arg = "" if now is None else _ms(now)
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

    # -- inspection ------------------------------------------------------------------------------
    def __len__(self) -> int:
        with unavailable_as_broker_error():
            return int(self.client.llen(self.keys.queue))

    def info(self) -> QueueInfo:
        """Lengths, held tasks and whether their workers live, registered live workers: 2 round trips."""
        k = self.keys
        with unavailable_as_broker_error():
            with self.client.pipeline(transaction=False) as pipe:
                pipe.llen(k.queue).llen(k.notifications).zcard(k.scheduled).llen(k.dead)
                pipe.hgetall(k.processing).zrange(k.workers, 0, -1)
                length, notifications, scheduled, dead, processing, registered = pipe.execute()
            holders = [key.decode() for key in processing]
            registered_ids = [member.decode() for member in registered]
            ids = holders + registered_ids
            alive: list[bool] = []
            if ids:
                with self.client.pipeline(transaction=False) as pipe:
                    for worker_id in ids:
                        pipe.exists(worker_id)
                    alive = [bool(flag) for flag in pipe.execute()]
        held = {worker_id: (processing[worker_id.encode()], alive[i]) for i, worker_id in enumerate(holders)}
        live = [worker_id for worker_id, ok in zip(registered_ids, alive[len(holders):], strict=True) if ok]
        return QueueInfo(self.name, int(length), int(notifications), int(scheduled), int(dead), held, live)

    def discover_queues(self) -> list[str]:
        """Names of the queues on this Redis database, found by SCAN (an admin command, not a hot path)."""
        names = set()
        with unavailable_as_broker_error():
            for suffix in ("_noti", "_processing", "_dead", "_scheduled"):
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
            count, _ = pipe.llen(self.keys.dead).delete(self.keys.dead).execute()
        return int(count)

    def clear(self) -> None:
        """Delete every key of this queue."""
        with unavailable_as_broker_error():
            self.client.delete(*self.keys.all())

    def close(self) -> None:
        """Disconnect the shared pool and this thread's direct connection (both reconnect on next use)."""
        if isinstance(self._call, DirectCaller):
            self._call.close()
        self.client.connection_pool.disconnect()
