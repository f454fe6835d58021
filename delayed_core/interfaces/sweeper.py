"""The Sweeper role of a broker: the maintenance of one queue.

A broker provides it (``Broker`` inherits it); :class:`~delayed_core.sweeper.SweepLoop` drives it, and a
worker's keep-alive thread uses its promotion half. One sweep of a queue is
:func:`~delayed_core.sweeper.sweep_queue`: :meth:`Sweeper.sweep`, then :meth:`Sweeper.bury` for each
poison task, then :meth:`Sweeper.promote_and_peek`.

Poison tasks and the at-least-once promise. The core builds every dead-letter entry, but the core learns
which tasks are poison only from the sweep. Returning them and writing their entries in a second call
would lose a task whose sweeper dies between the two calls. So :meth:`Sweeper.sweep` moves each poison
task, in the same atomic operation that takes it from its dead holder, into a holding place of the queue,
and returns everything the holding place contains (this sweep's poison tasks and any a killed sweeper left
there). :meth:`Sweeper.bury` then stores the core's entry and removes that task from the holding place in
one atomic operation, and only if it was still there, so two sweepers never write one letter twice.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from .lost_workers import LostWorkerWatcher


@dataclass(frozen=True)
class Poisoned:
    """A task a sweep set aside because it was lost by too many workers; waiting for its dead letter.

    :param task: the task bytes, exactly as the dead worker held them.
    :param worker: the id of the last worker that held it.
    :param attempts: how many workers lost it.
    :param handle: the broker's own reference to it in the holding place, for :meth:`Sweeper.bury`.
    """

    task: bytes
    worker: str
    attempts: int
    handle: bytes = b""


@dataclass(frozen=True)
class SweepReport:
    """What one sweep of one queue did.

    :param requeued: tasks of dead workers put back in the queue.
    :param poisoned: tasks of dead workers dead-lettered because they had killed too many workers.
    :param promoted: scheduled tasks that fell due and were moved into the queue.
    :param extra: the broker's own repair counters (by name; the default plugin reports how many
        ``notifications`` it added, or removed when negative).
    :param poison: from :meth:`Sweeper.sweep`, the set-aside tasks that still need a dead letter; empty
        in the report of a whole sweep (see :func:`~delayed_core.sweeper.sweep_queue`).
    """

    queue: str
    requeued: int = 0
    poisoned: int = 0
    promoted: int = 0
    extra: dict[str, int] = field(default_factory=dict)
    poison: tuple[Poisoned, ...] = ()


class ScheduleWatcher:
    """Tells a worker when scheduled tasks may be due, so it need not poll the broker every second.

    This default polls: it answers "now" once a second. Brokers that can announce new scheduled tasks
    (the default plugin uses pub/sub) return a watcher that waits silently until an announcement arrives.
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._next = time.monotonic()
        self._woken = threading.Event()

    def start(self, timeout: float = 1.0) -> None:
        """Start listening now, waiting up to ``timeout`` for the broker to confirm, so that nothing
        announced after this returns is missed. The default polls and has nothing to start."""

    def wait(self, timeout: float) -> float | None:
        """Wait up to ``timeout`` seconds; return the unix time a newly scheduled task falls due, or None."""
        remaining = self._next - time.monotonic()
        if remaining > timeout:
            self._woken.wait(max(0.0, timeout))
            return None
        if self._woken.wait(max(0.0, remaining)):
            return None
        self._next = time.monotonic() + self.interval
        return time.time()

    def wake(self) -> None:
        """End a :meth:`wait` in progress at once (it returns None), and every later one: called from
        another thread by a stopping worker, just before the waiting thread closes the watcher. A
        watcher that overrides :meth:`wait` overrides this too, or its thread notices a stop only when
        its wait times out."""
        woken = getattr(self, "_woken", None)  # None: a subclass that skipped this __init__
        if woken is not None:
            woken.set()

    def close(self) -> None:
        """Release the watcher's connection."""


class Sweeper(abc.ABC):
    """Maintenance of one queue: recover lost work, promote due tasks, repair the broker's own drift."""

    @abc.abstractmethod
    def sweep(self, max_recoveries: int = 0) -> SweepReport:
        """In one atomic operation: put back the tasks held by ids whose liveness is gone; set aside in
        the holding place instead each one recovered more than ``max_recoveries`` times (when positive);
        repair whatever bookkeeping the broker keeps beside the queue (counted in ``extra``).

        :returns: ``requeued`` and ``poisoned`` (set aside now), and in ``poison`` every task of the
            holding place, including those an earlier sweep set aside but did not bury.
        """

    @abc.abstractmethod
    def bury(self, poisoned: Poisoned, entry: bytes, keep: int = 10000) -> bool:
        """Atomically remove ``poisoned`` from the holding place and store ``entry`` as its dead letter
        (keeping the newest ``keep``); store nothing and return False when it is no longer there."""

    @abc.abstractmethod
    def promote_and_peek(self, now: float | None = None) -> tuple[int, float | None]:
        """Move scheduled tasks whose time has come into the queue; return how many moved and the unix
        time the next scheduled task falls due (None: none, or unknown)."""

    def watch_schedule(self, also: Sequence[str] = ()) -> ScheduleWatcher:
        """A watcher announcing newly scheduled tasks (the default polls once a second).

        :param also: names of other queues of the same broker whose announcements the one watcher hears
            too (a worker serving several queues waits on one watcher). Passed only when not empty.
        """
        return ScheduleWatcher()

    def watch_lost_workers(self, enable: bool = True) -> LostWorkerWatcher | None:
        """A watcher that hears at once when a worker may have died, or None: periodic sweeps only.

        :param enable: whether the watcher may turn the broker's announcements on, where they are off
            and the sweeper is allowed to change the broker's settings.
        """
        return None
