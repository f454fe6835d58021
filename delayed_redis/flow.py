"""Bounded queues and global rate limits on Redis: one script call each (see lua/enqueue_bounded.lua and
lua/throttle.lua). Mixed into :class:`~delayed_redis.broker.RedisBroker`."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import redis

from delayed_core.interfaces import FlowControl

from . import scripts
from .errors import translate
from .keys import QueueKeys
from .replicas import ReplicaWait


class RedisFlowControl(FlowControl):
    """:class:`FlowControl` for one Redis queue; each operation is one round trip."""

    # Provided by RedisBroker.
    name: str
    keys: QueueKeys
    replica_wait: ReplicaWait
    _call: Callable[..., Any]

    def enqueue_bounded(self, tasks: Sequence[bytes], max_length: int) -> bool:
        """The enqueue_bounded script checks the length and pushes the batch, or refuses all of it."""
        try:
            length = scripts.ENQUEUE_BOUNDED(self._call, (self.keys.queue, self.keys.notifications, self.keys.bound),
                                             (max_length, *tasks))
            if length >= 0 and self.replica_wait:
                self.replica_wait.after(self._call)  # +1 round trip, only with wait_replicas
        except redis.exceptions.RedisError as exc:
            raise translate(exc) from exc
        return bool(length >= 0)

    def throttle(self, worker_id: str, task: bytes, limit_key: str, interval: float) -> float:
        """The throttle script, whether the task starts now or is put aside for its reserved start."""
        args = (worker_id, task, f"{interval * 1000:.3f}", secrets.token_hex(8), hashlib.sha1(task).hexdigest())
        limit = self.keys.rate(limit_key)  # as given, but in the queue's slot in the cluster layout
        keys = (limit, f"{limit}:reserved", self.keys.processing, self.keys.scheduled)
        try:
            wait_ms = scripts.THROTTLE(self._call, keys, args)
        except redis.exceptions.RedisError as exc:
            raise translate(exc) from exc
        return int(wait_ms) / 1000
