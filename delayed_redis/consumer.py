"""The consumer role of the Redis broker, for a worker of one queue (several queues: several_queues.py)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any

import redis

from delayed_core import crashpoints
from delayed_core.interfaces import Consumer

from . import scripts
from .connection import longest_block, unavailable_as_broker_error
from .direct import DirectCaller
from .errors import translate
from .keys import QueueKeys
from .monitoring import this_minute


class RedisConsumer(Consumer):
    """Mixed into :class:`~delayed_redis.broker.RedisBroker`."""

    # Provided by RedisBroker: the pool client, the per-thread hot-path caller, the queue's keys and the
    # note of which connection each slot blocks on (for wake).
    client: redis.Redis
    _call: Callable[..., Any]
    keys: QueueKeys
    _blocking_clients: dict[str, int]

    def dequeue(self, worker_id: str, timeout: float) -> bytes | None:
        """BLPOP a notification, then take its task: 2 round trips, only when the queue was idle."""
        k = self.keys
        try:
            self._remember_blocking(worker_id)
            # Capped inside the socket timeout: a longer block would read as a dead server. The slot simply
            # blocks again.
            if self._call("BLPOP", k.notifications, min(timeout, longest_block())) is None:
                return None
            crashpoints.reached("after_blpop")
            return scripts.DEQUEUE(self._call, (k.queue, k.notifications, k.processing), (worker_id,))
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
        k = self.keys
        # The same bytes all minute for a slot: sent through the caller's packed-command cache, if it has one.
        call = getattr(self._call, "repeated", self._call)
        try:
            return scripts.RELEASE_TAKE(call, (k.queue, k.notifications, k.processing, k.recoveries, k.throughput),
                                        (worker_id, "1" if take_next else "0", this_minute()))
        except redis.exceptions.RedisError as exc:
            raise translate(exc) from exc

    def held(self, worker_id: str) -> bytes | None:
        """HGET the slot's entry in N_processing."""
        with unavailable_as_broker_error():
            return self.client.hget(self.keys.processing, worker_id)

    def requeue(self, worker_id: str, task: bytes, delay: float = 0.0, front: bool = False) -> None:
        """Release and put back in one script (delayed 1.2 did it in two calls and could lose the task).
        A delay counts from the server's clock."""
        k = self.keys
        args = (worker_id, task, scripts.ms(delay) if delay > 0 else 0, "1" if front else "0",
                secrets.token_hex(8))
        with unavailable_as_broker_error():
            scripts.REQUEUE(self.client.execute_command, (k.queue, k.notifications, k.processing, k.scheduled),
                            args)

    def dead_letter(self, worker_id: str | None, entry: bytes, keep: int = 10000) -> None:
        """Release and record the entry in one script; the list keeps the newest ``keep`` entries."""
        k = self.keys
        with unavailable_as_broker_error():
            scripts.DEAD_LETTER(self.client.execute_command, (k.processing, k.dead, k.throughput),
                                (worker_id or "", entry, keep, this_minute()))
