"""DeathListener: how the sweep loop waits between sweeps, hearing of dead workers as they die.

The broker's :class:`~delayed_core.interfaces.lost_workers.LostWorkerWatcher` (if it offers one) does the
listening; this wraps it for the loop: it waits in short ticks so that a stop is seen soon, and it
survives a watcher that breaks (the periodic sweeps then go on alone).
"""

from __future__ import annotations

import logging
import threading
import time

from .interfaces import Sweeper
from .interfaces.lost_workers import ExpiryEvents, LostWorkerWatcher
from .maintenance import TICK, one_line

logger = logging.getLogger("delayed.sweeper")


class DeathListener:
    """Waits until a deadline, a stop, or news that a worker may have died.

    :param watcher: the broker's watcher, or None to wait on ``stopping`` alone.
    :param stopping: set to stop the sweep loop.
    :param fallback: the periodic sweep interval, for the log line when the watcher breaks.
    """

    def __init__(self, watcher: LostWorkerWatcher | None, stopping: threading.Event, fallback: float) -> None:
        self.watcher = watcher
        self.stopping = stopping
        self.fallback = fallback

    @classmethod
    def for_sweepers(cls, sweepers: list[Sweeper], mode: ExpiryEvents | str, stopping: threading.Event,
                     fallback: float) -> DeathListener:
        """A listener on the first sweeper's watcher: the queues of one app share one broker server, so
        one subscription hears the workers of them all."""
        mode = ExpiryEvents(mode)
        watcher = None
        if mode is not ExpiryEvents.OFF and sweepers:
            watcher = sweepers[0].watch_lost_workers(enable=mode is ExpiryEvents.AUTO)
        return cls(watcher, stopping, fallback)

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` or until stopped; True when a worker may have died."""
        deadline = time.monotonic() + seconds
        while self.watcher is not None and not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                # Short waits: a stop set by another thread (or a signal handler) is seen within a tick.
                if self.watcher.wait(min(left, TICK)):
                    logger.debug("a worker may have died: sweeping now")
                    return True
            except Exception as exc:  # a broken watcher must not stop the sweeps: go on without it
                logger.error("listening for dead workers failed (%s); sweeping every %gs only",
                             one_line(exc), self.fallback)
                self.close()
        self.stopping.wait(max(0.0, deadline - time.monotonic()))
        return False

    def close(self) -> None:
        """Close the watcher's connection; later waits only wait."""
        if self.watcher is not None:
            watcher, self.watcher = self.watcher, None
            watcher.close()
