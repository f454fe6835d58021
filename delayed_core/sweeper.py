"""SweepLoop: the sweeper process. It drives the broker's Sweeper role across many queues.

Each sweep of a queue (:func:`sweep_queue`):

- moves the tasks held by workers whose liveness is gone back into the queue (at-least-once: such a
  task may have run partly or fully; it runs again), and repairs the broker's own bookkeeping - one
  atomic broker operation;
- dead-letters instead a task that has already killed ``max_recoveries`` workers (a poison task): the
  sweep sets it aside atomically, then the core builds its entry and buries it, one atomic operation per
  task (see :mod:`delayed_core.interfaces.sweeper` for why no task is lost in between);
- promotes scheduled tasks that are due.

Between sweeps the loop listens for news of dead workers (delayed_core/lost_workers.py) and then sweeps
at once, so that a task is recovered when its worker's liveness lapses, not up to an interval later.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import crashpoints, signals
from .backoff import Backoff
from .config import Config
from .deadletter import DeadLetter, poison_letter
from .interfaces import Sweeper, SweepReport
from .interfaces.lost_workers import ExpiryEvents
from .lost_workers import DeathListener
from .maintenance import one_line
from .periodic_loop import PeriodicLoop
from .results import mark_buried

if TYPE_CHECKING:
    from .app import Delayed

logger = logging.getLogger("delayed.sweeper")


def sweep_queue(sweeper: Sweeper, queue: str, max_recoveries: int = 0, dead_keep: int = 10000,
                buried: Callable[[DeadLetter], None] | None = None) -> SweepReport:
    """One whole sweep of one queue: recover lost work, bury the poison tasks, promote due tasks.

    A sweeper killed at any point loses nothing: a poison task stays in the broker's holding place until
    its entry is stored, and the next sweep returns it again. ``poisoned`` in the report counts the dead
    letters stored by this call; ``buried`` is called with each (a tracked task's record then says dead).
    """
    report = sweeper.sweep(max_recoveries)
    if report.poison:
        crashpoints.reached("before_bury")
    count = 0
    for poisoned in report.poison:
        letter = poison_letter(queue, poisoned)
        if sweeper.bury(poisoned, letter.to_json(), dead_keep):
            count += 1
            if buried is not None:
                buried(letter)
    return dataclasses.replace(report, poisoned=count, poison=(), promoted=sweeper.promote_and_peek()[0])


def describe_extra(extra: dict[str, int], end: str = "") -> str:
    """A broker's repair counters as ``"name +N, "`` parts (empty for none)."""
    return "".join(f"{name} {value:+d}{end}" for name, value in extra.items())


class SweepLoop:
    """Sweeps ``queues`` every ``sweeper_interval`` seconds (or once). Build it with ``app.sweeper()``."""

    def __init__(self, app: Delayed, queues: list[str], config: Config) -> None:
        self.app = app
        self.queues = queues
        self.config = config
        self.stopping = threading.Event()
        # queue -> its broker, whose Sweeper role this loop drives
        self.sweepers: dict[str, Sweeper] = {queue: app.broker(queue) for queue in queues}

    def sweep_once(self) -> list[SweepReport]:
        """Sweep every queue once; return the reports of the queues that succeeded.

        A queue that fails (the broker unreachable, read-only, out of memory, a key of the wrong type...)
        does not stop the others; then the first error is raised, and any later one is logged in one line
        (so that a single failure is reported once).
        """
        reports: list[SweepReport] = []
        first_error: Exception | None = None
        for queue in self.sweepers:
            try:
                reports.append(self._sweep(queue))
            except Exception as exc:
                if first_error is not None:
                    logger.error("queue %s: sweep failed (%s)", queue, one_line(exc))
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
        return reports

    def _sweep(self, queue: str) -> SweepReport:
        config = self.config.for_queue(queue)
        report = sweep_queue(self.sweepers[queue], queue, config["max_recoveries"], config["dead_letter_max"],
                             lambda letter: mark_buried(self.app, queue, letter, config))
        if report.requeued or report.poisoned or any(report.extra.values()):
            logger.info(
                "queue %s: requeued %d lost task(s), dead-lettered %d poison task(s), %spromoted %d",
                queue, report.requeued, report.poisoned, describe_extra(report.extra, ", "), report.promoted,
            )
        self.app.notifier.delayed_sweep_finished(queue=queue, report=report)
        return report

    def run(self, once: bool = False, install_signals: bool = True,
            expiry_events: ExpiryEvents | str = ExpiryEvents.AUTO) -> None:
        """Sweep now, then every interval, until stopped. With ``once``, sweep once and return.

        Each queue has its own schedule: a queue whose sweep fails, for whatever reason, is logged in one
        line and retried with backoff, while the other queues keep their interval. Nothing but a stop
        ends the loop. With ``expiry_events`` ``auto`` (or ``listen``, which never changes the broker's
        settings), news that a worker may have died sweeps every queue not backing off at once.
        """
        if once:
            self.sweep_once()
            return
        backoffs = {queue: Backoff() for queue in self.sweepers}
        due = dict.fromkeys(self.sweepers, 0.0)
        failing: set[str] = set()
        listener = DeathListener.for_sweepers(list(self.sweepers.values()), expiry_events, self.stopping,
                                              self.config["sweeper_interval"])
        # A sweeper whose app knows periodic functions takes part in scheduling them, like workers do.
        periodic = PeriodicLoop(self.app).start()
        with contextlib.closing(listener), contextlib.closing(periodic), \
                signals.handling(self._on_signal, (signal.SIGTERM, signal.SIGINT), install_signals):
            while True:
                for queue in self.sweepers:
                    if time.monotonic() < due[queue] or self.stopping.is_set():
                        continue
                    try:
                        self._sweep(queue)
                    except Exception as exc:
                        wait = backoffs[queue].next_delay()
                        logger.error("queue %s: sweep failed (%s); sweeping it again in %.1fs",
                                     queue, one_line(exc), wait)
                        failing.add(queue)
                    else:
                        backoffs[queue].reset()
                        wait = self.config["sweeper_interval"]
                        failing.discard(queue)
                    due[queue] = time.monotonic() + wait
                heard = listener.wait(max(0.0, min(due.values()) - time.monotonic()))
                if self.stopping.is_set():
                    return
                if heard:  # a queue backing off after a failure keeps its retry time
                    due.update(dict.fromkeys(set(due) - failing, 0.0))

    def stop(self) -> None:
        """Stop after the current sweep."""
        self.stopping.set()

    def _on_signal(self, _signum: int, _frame: Any) -> None:
        self.stop()
