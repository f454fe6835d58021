"""Bounded queues and rate limits for the memory broker, with the same semantics as the Redis scripts
(``delayed_redis/lua/enqueue_bounded.lua`` and ``throttle.lua``). Mixed into MemoryBroker."""

from __future__ import annotations

import bisect
import hashlib
import time
from collections.abc import Sequence
from typing import Any

from delayed_core.interfaces import FlowControl


class MemoryFlowControl(FlowControl):
    """:class:`FlowControl` over the memory broker's store (one lock makes every call atomic)."""

    store: Any
    _state: Any
    _push: Any

    def enqueue_bounded(self, tasks: Sequence[bytes], max_length: int) -> bool:
        with self.store.cond:
            state = self._state
            if len(state.tasks) + len(tasks) > max_length:
                return False
            state.max_length = max_length
            self._push(state, tasks)
            return True

    def throttle(self, worker_id: str, task: bytes, limit_key: str, interval: float) -> float:
        with self.store.cond:
            limits, reserved = self.store.rate_free, self.store.rate_reserved
            now = time.time()
            mark = (limit_key, hashlib.sha1(task).digest())
            if reserved.get(mark, 0) > 0:
                reserved[mark] -= 1
                if not reserved[mark]:
                    del reserved[mark]
                return 0.0
            free = limits.get(limit_key, 0.0)
            if free <= now:
                limits[limit_key] = now + interval
                return 0.0
            limits[limit_key] = free + interval
            reserved[mark] = reserved.get(mark, 0) + 1
            state = self._state
            bisect.insort(state.scheduled, (free, next(self.store.order), task))
            state.processing.pop(worker_id, None)
            return free - now
