"""FlowControl: the optional broker role behind bounded queues and global rate limits.

A broker that inherits it next to :class:`~delayed_core.interfaces.Broker` lets producers bound a queue
(``app.queue(name, max_length=N)``) and workers share a per-function rate limit
(``@app.task(rate_limit="100/m")``). Both operations must be atomic on the broker's side: two producers
must not both take the last place, and two workers must not both take the same start time.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence


class FlowControl(abc.ABC):
    """Back-pressure and rate limiting, implemented by a broker for its queue."""

    @abc.abstractmethod
    def enqueue_bounded(self, tasks: Sequence[bytes], max_length: int) -> bool:
        """Append tasks only if the queue then holds at most ``max_length`` waiting tasks, checking and
        pushing in one atomic operation. False, and nothing added, when the whole batch does not fit."""

    @abc.abstractmethod
    def throttle(self, worker_id: str, task: bytes, limit_key: str, interval: float) -> float:
        """Take a start time for ``task``, held by ``worker_id``, under the rate limit ``limit_key``: one
        start per ``interval`` seconds, shared by every worker of every process.

        Returns 0.0 when the task may start now. Otherwise reserves the next free start time, moves the
        task to the scheduled tasks for that time, releases it, all atomically, and returns the seconds
        until then. A task that comes back at its reserved time starts without taking another one.
        """
