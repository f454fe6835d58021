"""The Sweeper interface: periodic maintenance of one queue."""

from __future__ import annotations

import abc

from .broker import Broker, SweepReport


class Sweeper(abc.ABC):
    """Recovers the lost work of dead workers and does other periodic upkeep for one queue.

    The default implementation asks the broker to requeue lost tasks and promote due scheduled tasks;
    a broker plugin may register a sweeper that does more (or does it differently).
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
