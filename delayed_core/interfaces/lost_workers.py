"""LostWorkerWatcher: news that a worker may just have died, so that the sweep loop sweeps at once.

Without a watcher, the task of a dead worker waits for its liveness to lapse *and then* for the next
periodic sweep: up to ``keep_alive_timeout + sweeper_interval``. A broker that can announce the moment a
worker's liveness lapses (Redis: keyspace expiry events) hands the sweep loop a watcher, and recovery
takes about ``keep_alive_timeout`` alone. The periodic sweep stays, for news that never arrives.
"""

from __future__ import annotations

import abc
import enum


class ExpiryEvents(str, enum.Enum):
    """How a sweeper uses a broker's news of dead workers (``delayed sweeper --expiry-events``)."""

    #: listen, and turn the broker's announcements on where the sweeper is allowed to
    AUTO = "auto"
    #: listen, and never change the broker's settings
    LISTEN = "listen"
    #: periodic sweeps only
    OFF = "off"


class LostWorkerWatcher(abc.ABC):
    """Waits for news that a worker may have died. Built by :meth:`Sweeper.watch_lost_workers`.

    A watcher never raises from :meth:`wait`: a lost connection is logged in one line and retried with
    backoff, while the sweep loop's periodic sweeps go on.
    """

    @abc.abstractmethod
    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when a worker may have died since the last call.

        Also True right after the watcher (re)connects: news sent while it was away is lost, so the
        caller should sweep once to catch up.
        """

    def close(self) -> None:  # noqa: B027 - optional: a watcher without a connection has nothing to close
        """Release the watcher's connection."""
