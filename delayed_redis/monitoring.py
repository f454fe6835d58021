"""The Redis broker's monitoring role (see ``delayed_core.interfaces.monitoring``).

Round trips: ``announce_workers`` 1 (once per worker start), every read 1. Reads are bounded: the
worker-info hash holds only registered ids, the counters hash at most two fields per kept minute, and
scheduled tasks are read by index range.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from delayed_core.interfaces.monitoring import THROUGHPUT_MINUTES, Monitoring, Throughput

from . import scripts
from .connection import unavailable_as_broker_error

if TYPE_CHECKING:
    import redis

    from .keys import QueueKeys

def this_minute() -> int:
    """The unix minute (``unix_seconds // 60``) the release and dead-letter scripts count a task in, and
    the last minute the dashboard reads: every party uses its own clock, NTP keeps them together, and a
    few seconds of skew only moves a count to the next minute of a 15-minute chart."""
    return int(time.time()) // 60


#: a scheduled member is 16 unique hex chars followed by the task bytes (see RedisBroker.schedule)
SCHEDULED_PREFIX = 16


class RedisMonitoring(Monitoring):
    """Mixed into RedisBroker, which provides ``client`` and ``keys``."""

    client: redis.Redis
    keys: QueueKeys

    def announce_workers(self, worker_ids: Iterable[str], details: Mapping[str, Any]) -> None:
        """One script: HSET the details under every id, HDEL entries of ids no longer registered."""
        ids = list(worker_ids)
        if not ids:
            return
        payload = json.dumps(dict(details), separators=(",", ":"), sort_keys=True)
        with unavailable_as_broker_error():
            scripts.ANNOUNCE(self.client.execute_command, (self.keys.worker_info, self.keys.workers),
                             (payload, *ids))

    def worker_details(self) -> dict[str, dict[str, Any]]:
        """HGETALL of the worker-info hash; an entry that is not a JSON object is skipped."""
        with unavailable_as_broker_error():
            raw: dict[bytes, bytes] = self.client.hgetall(self.keys.worker_info)  # type: ignore[assignment]
        details: dict[str, dict[str, Any]] = {}
        for worker_id, value in raw.items():
            try:
                decoded = json.loads(value)
            except ValueError:
                continue
            if isinstance(decoded, dict):
                details[worker_id.decode(errors="replace")] = decoded
        return details

    def throughput(self, minutes: int = THROUGHPUT_MINUTES) -> Throughput:
        """HGETALL of the counters hash (at most about 30 fields: the scripts drop older minutes)."""
        with unavailable_as_broker_error():
            counters: dict[bytes, bytes] = self.client.hgetall(self.keys.throughput)  # type: ignore[assignment]
        now = this_minute()
        window = list(range(now - minutes + 1, now + 1))
        counts = {key.decode(errors="replace"): int(value) for key, value in counters.items()
                  if value.isdigit()}
        return Throughput(window, [counts.get(f"d:{m}", 0) for m in window],
                          [counts.get(f"f:{m}", 0) for m in window])

    def scheduled_tasks(self, start: int = 0, stop: int = 49) -> list[tuple[float, bytes]]:
        """ZRANGE by index with scores (unix ms), soonest first, the unique prefix taken off."""
        with unavailable_as_broker_error():
            members: list[tuple[bytes, float]] = self.client.zrange(  # type: ignore[assignment]
                self.keys.scheduled, start, stop, withscores=True)
        return [(score / 1000, member[SCHEDULED_PREFIX:]) for member, score in members]
