"""RedisSweeper: one queue's periodic upkeep with the Redis broker's scripts."""

from __future__ import annotations

import dataclasses

from delayed_core.interfaces import Sweeper, SweepReport

from .broker import RedisBroker
from .expiry_events import RedisExpiryWatcher


class RedisSweeper(Sweeper):
    """Requeues dead workers' tasks (capping poison tasks), fixes notifications, promotes due tasks."""

    name = "redis"

    def sweep(self) -> SweepReport:
        """Two script calls: sweep, then promote."""
        broker = self.broker
        assert isinstance(broker, RedisBroker)
        report = broker.requeue_lost(self.max_recoveries, self.dead_keep)
        return dataclasses.replace(report, promoted=broker.promote_due())

    def watch_lost_workers(self, enable: bool = True) -> RedisExpiryWatcher:
        """Keyspace expiry events of the broker's database (delayed_redis/expiry_events.py)."""
        assert isinstance(self.broker, RedisBroker)
        return RedisExpiryWatcher(self.broker.client, enable)
