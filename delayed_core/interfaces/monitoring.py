"""The monitoring role: what a dashboard reads from a broker beyond ``info()``, and what workers tell it.

A broker that implements this role (the Redis broker does) lets ``delayed dashboard`` show who each
worker is, the throughput of the last minutes and the next scheduled tasks. Every method is optional
in spirit: the defaults answer "nothing known", and a dashboard shows that as such. None of them is on
a worker's per-task path; :meth:`Monitoring.announce_workers` runs once when a worker starts.

Every read is bounded: by the number of live workers, by the minutes kept, or by ``start``/``stop``;
never by the length of a queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: minutes of throughput counters a broker keeps (the dashboard's chart shows this many)
THROUGHPUT_MINUTES = 15


@dataclass(frozen=True)
class Throughput:
    """Per-minute counts of one queue, oldest minute first.

    :param minutes: unix minutes (``unix_seconds // 60``), one per point.
    :param done: tasks released after running (success, or failure with dead letters off), per minute.
    :param failed: tasks dead-lettered, per minute.
    """

    minutes: list[int] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


class Monitoring:
    """Optional reads (and one write at worker start) for dashboards. Mix into a Broker to offer them."""

    def announce_workers(self, worker_ids: Iterable[str], details: Mapping[str, Any]) -> None:
        """Record who runs ``worker_ids`` (host, pid, start time, queues ...), once at worker start.

        ``details`` holds JSON-able values. The broker forgets them when the ids are gone for good.
        """

    def worker_details(self) -> dict[str, dict[str, Any]]:
        """Worker id -> the details announced for it (only ids the broker still knows)."""
        return {}

    def throughput(self, minutes: int = THROUGHPUT_MINUTES) -> Throughput:
        """Tasks done and failed in each of the last ``minutes`` minutes, the current one included."""
        return Throughput()

    def scheduled_tasks(self, start: int = 0, stop: int = 49) -> list[tuple[float, bytes]]:
        """Scheduled tasks as ``(due unix time, task bytes)``, soonest first, from ``start`` to ``stop``
        inclusive (bounded: a dashboard shows a page, never the whole set)."""
        return []
