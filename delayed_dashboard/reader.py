"""Reads the queues for the overview, workers and scheduled pages, through the broker interface only.

Cost per call (Redis broker; Q queues, W worker ids known to them):

- :meth:`Reader.overview`: per queue, ``info()`` (2 round trips: 6 commands, then one EXISTS per held or
  registered id) and ``throughput()`` (1 round trip: HGETALL of a hash of at most about 30 fields);
- :meth:`Reader.workers`: per queue, ``info()`` and ``worker_details()`` (1 round trip, HGETALL of one
  entry per registered id);
- :meth:`Reader.scheduled`: per queue, one bounded ZRANGE and one ZCARD (inside ``info()``);
- queue discovery (SCAN, the one command that grows with the database) runs at most every
  ``discover_every`` seconds, and never when the queues are given with ``--queue``.

Nothing reads a whole queue: lengths come from LLEN / ZCARD, lists from bounded ranges.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from delayed_core.app import Delayed
from delayed_core.interfaces import Broker, Monitoring, QueueInfo

from .views import QueueView, ScheduledView, WorkerView, describe_task, digest

#: how often to look for new queues when none were named
DISCOVER_EVERY = 30.0
#: scheduled tasks shown per queue
SCHEDULED_SHOWN = 50


class Reader:
    """The dashboard's view of one broker.

    :param app: the app whose brokers and serializer to use.
    :param queues: the queues to show; empty: every queue the broker can discover.
    """

    def __init__(self, app: Delayed, queues: Sequence[str] = (), discover_every: float = DISCOVER_EVERY) -> None:
        self.app = app
        self.fixed = list(queues)
        self.discover_every = discover_every
        self._discovered: list[str] = []
        self._discovered_at = float("-inf")
        # (worker id, task digest) -> when first seen: how long a slot has held its current task
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def broker(self, queue: str) -> Broker:
        """The broker of ``queue``."""
        return self.app.broker(queue)

    def queue_names(self) -> list[str]:
        """The queues named at start, or those discovered (cached for ``discover_every`` seconds)."""
        if self.fixed:
            return self.fixed
        with self._lock:
            if time.monotonic() - self._discovered_at >= self.discover_every:
                self._discovered = sorted(self.broker(self.app.config["queue"]).discover_queues())
                self._discovered_at = time.monotonic()
            return list(self._discovered)

    def forget_discovery(self) -> None:
        """Look for queues again at the next read (after an action that may create or empty one)."""
        self._discovered_at = float("-inf")

    def has(self, queue: str) -> bool:
        """True when ``queue`` is one the dashboard shows (actions refuse other names)."""
        return queue in self.queue_names()

    # -- pages -----------------------------------------------------------------------------------
    def overview(self) -> list[QueueView]:
        """One row per queue: lengths, live workers, throughput of the last minutes."""
        rows = []
        for name in self.queue_names():
            broker = self.broker(name)
            info = broker.info()
            throughput = broker.throughput() if isinstance(broker, Monitoring) else None
            rows.append(QueueView(name, info.length, info.scheduled, len(info.processing), info.dead,
                                  len(live_ids(info)), throughput))
        return rows

    def workers(self) -> list[WorkerView]:
        """Every live worker id and every id still holding a task, with what it runs."""
        now = time.time()
        seen: dict[tuple[str, str], float] = {}
        views = []
        for name in self.queue_names():
            broker = self.broker(name)
            info = broker.info()
            details = broker.worker_details() if isinstance(broker, Monitoring) else {}
            live = live_ids(info)
            for worker_id in sorted(live | set(info.processing)):
                view = WorkerView(worker_id, name, alive=worker_id in live, details=details.get(worker_id, {}))
                held = info.processing.get(worker_id)
                if held is not None:
                    view.func, view.task = describe_task(self.app.serializer, held[0])
                    key = (worker_id, digest(held[0]))
                    view.task_since = seen[key] = self._seen.get(key, now)
                views.append(view)
        with self._lock:
            # Only what is held now is remembered, so the map stays as small as the set of slots.
            self._seen = seen
        return views

    def scheduled(self, limit: int = SCHEDULED_SHOWN) -> list[tuple[str, int, list[ScheduledView]]]:
        """Per queue: its name, how many tasks are scheduled, and the ``limit`` soonest."""
        result = []
        for name in self.queue_names():
            broker = self.broker(name)
            total = broker.info().scheduled
            tasks = broker.scheduled_tasks(0, limit - 1) if isinstance(broker, Monitoring) and total else []
            views = [ScheduledView(name, due, *describe_task(self.app.serializer, raw)) for due, raw in tasks]
            result.append((name, total, views))
        return result


def live_ids(info: QueueInfo) -> set[str]:
    """Ids the broker says are alive: registered pydelayed workers and alive holders (Go workers too)."""
    return set(info.workers) | {worker_id for worker_id, (_raw, alive) in info.processing.items() if alive}
