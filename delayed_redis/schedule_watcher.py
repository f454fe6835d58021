"""RedisScheduleWatcher: learn about newly scheduled tasks from pub/sub instead of polling for them.

Producers (and retries) PUBLISH the due time, in unix ms, on the channel named like the queue's
``N_scheduled`` sorted set. A worker's keep-alive thread waits on the subscription: an idle worker then
sends no command for scheduled tasks at all between keep-alives, and still promotes each one at its due
time. Announcements missed while disconnected are caught by the poll every keep-alive interval.
"""

from __future__ import annotations

import contextlib
import time

import redis

from delayed_core.interfaces import ScheduleWatcher

from .connection import unavailable_as_broker_error


class RedisScheduleWatcher(ScheduleWatcher):
    """Waits on the ``N_scheduled`` channel; the subscription is made lazily, on the first wait."""

    def __init__(self, client: redis.Redis, channel: str) -> None:
        super().__init__()
        self._client = client
        self._channel = channel
        self._pubsub: redis.client.PubSub | None = None

    def wait(self, timeout: float) -> float | None:
        """Block up to ``timeout`` for an announcement; return its due time (unix seconds) or None."""
        with unavailable_as_broker_error():
            if self._pubsub is None:
                self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(self._channel)
            try:
                message = self._pubsub.get_message(timeout=max(0.0, timeout))
            except BaseException:
                # The subscription is gone with the connection: subscribe afresh on the next wait.
                self.close()
                raise
        if message is None:
            return None
        try:
            return int(message["data"]) / 1000
        except (TypeError, ValueError):
            return time.time()  # an announcement we cannot read: check at once

    def close(self) -> None:
        """Unsubscribe and release the connection."""
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            with contextlib.suppress(redis.exceptions.RedisError):
                pubsub.close()
