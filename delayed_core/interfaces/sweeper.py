"""The Sweeper interface: periodic maintenance of one queue."""

from __future__ import annotations

import abc

from .broker import Broker, SweepReport
from .lost_workers import LostWorkerWatcher


class Sweeper(abc.ABC):
    """Recovers the lost work of dead workers and does other periodic upkeep for one queue.

    There is no default implementation: each broker plugin registers its own under the broker's name
    (``RedisSweeper`` in ``delayed_redis/sweeper.py``, ``MemorySweeper`` for ``memory://``), which the
    sweep loop picks by the broker in use.
    """

    #: name used in configuration; by convention the broker's name
    name: str = ""

    def __init__(self, broker: Broker, max_recoveries: int = 0, dead_keep: int = 10000) -> None:
        self.broker = broker
        self.max_recoveries = max_recoveries
        self.dead_keep = dead_keep

    @abc.abstractmethod
    def sweep(self) -> SweepReport:
        """Run one sweep and report what it did."""

    def watch_lost_workers(self, enable: bool = True) -> LostWorkerWatcher | None:
        """A watcher that hears at once when a worker may have died, or None: periodic sweeps only.

        :param enable: whether the watcher may turn the broker's announcements on, where they are off
            and the sweeper is allowed to change the broker's settings.
        """
        return None
