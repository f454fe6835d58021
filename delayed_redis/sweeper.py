"""RedisSweeper: one queue's periodic upkeep with the Redis broker's scripts."""

from __future__ import annotations

import dataclasses

from delayed_core.interfaces import Sweeper, SweepReport

from .broker import RedisBroker


class RedisSweeper(Sweeper):
    """Requeues dead workers' tasks (capping poison tasks), fixes notifications, promotes due tasks."""

    name = "redis"

    def sweep(self) -> SweepReport:
        """Two script calls: sweep, then promote."""
        broker = self.broker
        assert isinstance(broker, RedisBroker)
        report = broker.requeue_lost(self.max_recoveries, self.dead_keep)
        return dataclasses.replace(report, promoted=broker.promote_due())
