"""Maintenance: a worker's keep-alive thread. It keeps the slots' ids alive and promotes scheduled tasks.

The two jobs are independent on purpose: promotion can fail for reasons of its own (a queue key of the
wrong type, a server out of memory) and must never delay a keep-alive, or the sweeper would take a live
worker's running tasks away. Each job has its own schedule and its own backoff, and each failure is one
log line.

Between keep-alives an idle worker sends nothing for scheduled tasks: it sleeps until the next due time
it knows of, and the broker's watcher wakes it when a producer schedules an earlier one. Every keep-alive
also polls, which catches announcements lost while disconnected.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from .backoff import Backoff
from .errors import BrokerUnavailable, DelayedError
from .interfaces import Broker, ScheduleWatcher

logger = logging.getLogger("delayed.worker")

TICK = 0.5  # longest single wait (a stop wakes the wait at once: see wake)


def one_line(exc: BaseException) -> str:
    """An exception as one log line: pydelayed's own errors as they read, anything else with its type."""
    text = " ".join(str(exc).split())
    return text if isinstance(exc, DelayedError) else f"{type(exc).__name__}: {text}"


class Maintenance:
    """Runs in the worker's keep-alive thread until ``stopping`` is set.

    :param brokers: the brokers of the worker's queues, in priority order; ids are kept alive (and the
        worker listed) on each, and every queue's due tasks are promoted. The first one's watcher hears
        announcements of newly scheduled tasks of every queue.
    :param worker_ids: returns the ids to keep alive.
    :param interval: seconds between keep-alives.
    :param ttl: seconds each keep-alive keeps the ids alive.
    """

    def __init__(self, brokers: Sequence[Broker], worker_ids: Callable[[], list[str]], interval: float, ttl: float,
                 stopping: threading.Event) -> None:
        self.brokers = list(brokers)
        self.worker_ids = worker_ids
        self.interval = interval
        self.ttl = ttl
        self.stopping = stopping
        # A failed keep-alive is retried soon (the TTL is running out), never later than the interval.
        self._keep_alive_backoff = Backoff(cap=max(0.5, min(interval, 5.0)))
        self._promote_backoff = Backoff()
        self._next_keep_alive = time.monotonic() + interval
        self._next_promote = time.monotonic()  # poll once at start
        self._next_due: float | None = None  # unix time the next scheduled task falls due, if known
        self._watcher: ScheduleWatcher | None = None

    def listen(self) -> None:
        """Start hearing announcements of scheduled tasks before the slots start, so that a retry a slot
        schedules at once is not missed. Call it before :meth:`run`, from the worker's main thread."""
        self._watcher = self._watch()
        try:
            self._watcher.start()
        except Exception as exc:  # the loop's wait reports and recovers
            logger.error("listening for scheduled-task announcements failed (%s)", one_line(exc))

    def run(self) -> None:
        """Loop until stopped; never raises."""
        # Stored before ``stopping`` is read, so that a stop sees the watcher to wake (see wake).
        watcher = self._watcher = self._watcher or self._watch()
        try:
            while not self.stopping.is_set():
                if time.monotonic() >= self._next_keep_alive:
                    self._keep_alive()
                if time.monotonic() >= self._next_promote or (
                        self._next_due is not None and time.time() >= self._next_due):
                    self._promote()
                self._wait(watcher)
        finally:
            watcher.close()

    def wake(self) -> None:
        """End the thread's wait at once; call it after setting ``stopping``. Either this sees the
        watcher, or the thread, which stores it before reading ``stopping``, sees the stop."""
        watcher = self._watcher
        if watcher is not None:
            watcher.wake()

    def _watch(self) -> ScheduleWatcher:
        """One watcher for every queue: the first broker's, told the other queues' names (a worker of one
        queue calls ``watch_schedule()`` without them, as a broker that serves one queue expects)."""
        others = [broker.name for broker in self.brokers[1:]]
        return self.brokers[0].watch_schedule(others) if others else self.brokers[0].watch_schedule()

    def _keep_alive(self) -> None:
        try:
            ids = self.worker_ids()
            for broker in self.brokers:
                broker.keep_alive(ids, self.ttl)
        except Exception as exc:  # any failure: one line, retry soon
            delay = self._keep_alive_backoff.next_delay()
            logger.error("keep-alive failed (%s); retrying in %.1fs", one_line(exc), delay)
            self._next_keep_alive = time.monotonic() + delay
            return
        self._keep_alive_backoff.reset()
        self._next_keep_alive = time.monotonic() + self.interval
        # Poll for scheduled tasks with each keep-alive, unless promotion is backing off (then its retry
        # time is set and stays).
        if self._next_promote == float("inf"):
            self._next_promote = time.monotonic()

    def _promote(self) -> None:
        try:
            self._next_due = self._promote_every_queue()
        except Exception as exc:  # any failure: one line, retry with backoff
            delay = self._promote_backoff.next_delay()
            logger.error("promoting scheduled tasks failed (%s); retrying in %.1fs", one_line(exc), delay)
            self._next_promote = time.monotonic() + delay
            self._next_due = None
            return
        self._promote_backoff.reset()
        self._next_promote = float("inf")  # until the next keep-alive, announcement or due time

    def _promote_every_queue(self) -> float | None:
        """Promote due tasks of every queue; return when the next known one falls due."""
        next_due: float | None = None
        for broker in self.brokers:
            _, due = broker.promote_and_peek()
            if due is not None and (next_due is None or due < next_due):
                next_due = due
        return next_due

    def _wait(self, watcher: ScheduleWatcher) -> None:
        now = time.monotonic()
        wait = min(TICK, max(0.0, self._next_keep_alive - now), max(0.0, self._next_promote - now))
        if self._next_due is not None:
            wait = min(wait, max(0.0, self._next_due - time.time()))
        try:
            announced = watcher.wait(wait)
        except Exception as exc:  # the watcher reconnects on its next wait
            if not isinstance(exc, BrokerUnavailable):
                logger.error("waiting for scheduled-task announcements failed (%s)", one_line(exc))
            self.stopping.wait(min(wait, TICK) or TICK)
            return
        if announced is not None:
            self._next_due = announced if self._next_due is None else min(self._next_due, announced)
