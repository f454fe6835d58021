"""RedisScheduleWatcher: learn about newly scheduled tasks from pub/sub instead of polling for them.

Producers (and retries) PUBLISH the due time, in unix ms, on the channel named like the queue's
``N_scheduled`` sorted set. A worker's keep-alive thread waits on one subscription to the channel of
every queue it serves (one connection, whatever the number of queues): an idle worker then
sends no command for scheduled tasks at all between keep-alives, and still promotes each one at its due
time. Announcements missed while disconnected are caught by the poll every keep-alive interval.

Announced due times are in the Redis server's clock; the watcher turns them into this process's clock
with the offset its broker last measured, so a worker whose clock is off still wakes up on time.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence

import redis

from delayed_core.interfaces import ScheduleWatcher

from .errors import UNAVAILABLE, translate
from .pubsub_wake import Waker, next_message

logger = logging.getLogger("delayed.worker")


class RedisScheduleWatcher(ScheduleWatcher):
    """Waits on the ``N_scheduled`` channels of one or more queues (of one server, so one clock offset);
    the subscription is made by :meth:`start`, or lazily on the first wait."""

    def __init__(self, client: redis.Redis, channels: Sequence[str],
                 clock_offset: Callable[[], float] = lambda: 0.0) -> None:
        super().__init__()
        self._client = client
        self._channels = list(channels)
        self._clock_offset = clock_offset
        self._pubsub: redis.client.PubSub | None = None
        self._polling = False  # SUBSCRIBE refused (an ACL): fall back to the base class's polling
        self._waker = Waker()

    def start(self, timeout: float = 1.0) -> None:
        """Subscribe now and wait for Redis to confirm: a subscription made lazily, on the first wait,
        could miss the announcement of a retry that a slot started at the same moment schedules. Any
        failure is left to :meth:`wait`, which reports it once and falls back to polling."""
        if self._polling or self._pubsub is not None:
            return
        pubsub = self._client.pubsub()
        deadline = time.monotonic() + timeout
        confirmed = 0
        try:
            pubsub.subscribe(*self._channels)
            while confirmed < len(self._channels) and time.monotonic() < deadline:
                message = pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
                if message is not None and message["type"] == "subscribe":
                    confirmed += 1
        except redis.exceptions.RedisError:
            with contextlib.suppress(redis.exceptions.RedisError):
                pubsub.close()
            return
        pubsub.ignore_subscribe_messages = True
        self._pubsub = pubsub

    def wait(self, timeout: float) -> float | None:
        """Block up to ``timeout`` for an announcement; return its due time (unix seconds) or None."""
        if self._polling:
            return super().wait(timeout)
        try:
            if self._pubsub is None:
                self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(*self._channels)
            message = next_message(self._pubsub, timeout, self._waker)
        except redis.exceptions.ResponseError as exc:
            # SUBSCRIBE refused (an ACL without pub/sub rights; the error reply arrives with the next
            # read): poll like the base class instead, and say so once.
            logger.warning("cannot subscribe to %s (%s); polling for scheduled tasks every second instead",
                           ", ".join(self._channels), " ".join(str(exc).split()))
            self.close()
            self._polling = True
            return super().wait(timeout)
        except UNAVAILABLE as exc:
            # The subscription is gone with the connection: subscribe afresh on the next wait.
            self.close()
            raise translate(exc) from exc
        if message is None:
            return None
        try:
            return int(message["data"]) / 1000 - self._clock_offset()
        except (TypeError, ValueError):
            return time.time()  # an announcement we cannot read: check at once

    def wake(self) -> None:
        """End the wait in progress, and every later one, at once (see :mod:`~delayed_redis.pubsub_wake`)."""
        self._waker.wake()
        super().wake()  # the polling fallback waits in the base class

    def close(self) -> None:
        """Unsubscribe and release the connection."""
        self._waker.close()
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            with contextlib.suppress(redis.exceptions.RedisError):
                pubsub.close()
