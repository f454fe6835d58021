"""SweepLoop: the sweeper process. It recovers the tasks of dead workers across many queues.

Each sweep of a queue (one atomic broker operation per queue):

- moves the tasks held by workers whose liveness key is gone back into the queue (at-least-once: such a
  task may have run partly or fully; it runs again);
- dead-letters instead a task that has already killed ``max_recoveries`` workers (a poison task);
- makes the notification count equal to the queue length again;
- promotes scheduled tasks that are due.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from . import signals
from .backoff import Backoff
from .config import Config
from .interfaces import Sweeper, SweepReport
from .maintenance import one_line

if TYPE_CHECKING:
    from .app import Delayed

logger = logging.getLogger("delayed.sweeper")


class SweepLoop:
    """Sweeps ``queues`` every ``sweeper_interval`` seconds (or once). Build it with ``app.sweeper()``."""

    def __init__(self, app: Delayed, queues: list[str], config: Config) -> None:
        self.app = app
        self.queues = queues
        self.config = config
        self.stopping = threading.Event()
        sweeper_cls = app.registry.get("sweeper", app.broker_name)
        self.sweepers: dict[str, Sweeper] = {}
        for queue in queues:
            queue_config = config.for_queue(queue)
            self.sweepers[queue] = sweeper_cls(
                app.broker(queue), queue_config["max_recoveries"], queue_config["dead_letter_max"])

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
        report = self.sweepers[queue].sweep()
        if report.requeued or report.poisoned or report.notifications:
            logger.info(
                "queue %s: requeued %d lost task(s), dead-lettered %d poison task(s), "
                "notifications %+d, promoted %d", queue, report.requeued, report.poisoned,
                report.notifications, report.promoted,
            )
        self.app.notifier.delayed_sweep_finished(queue=queue, report=report)
        return report

    def run(self, once: bool = False, install_signals: bool = True) -> None:
        """Sweep now, then every interval, until stopped. With ``once``, sweep once and return.

        Each queue has its own schedule: a queue whose sweep fails, for whatever reason, is logged in one
        line and retried with backoff, while the other queues keep their interval. Nothing but a stop
        ends the loop.
        """
        if once:
            self.sweep_once()
            return
        backoffs = {queue: Backoff() for queue in self.sweepers}
        due = dict.fromkeys(self.sweepers, 0.0)
        with signals.handling(self._on_signal, (signal.SIGTERM, signal.SIGINT), install_signals):
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
                    else:
                        backoffs[queue].reset()
                        wait = self.config["sweeper_interval"]
                    due[queue] = time.monotonic() + wait
                if self.stopping.wait(max(0.0, min(due.values()) - time.monotonic())):
                    return

    def stop(self) -> None:
        """Stop after the current sweep."""
        self.stopping.set()

    def _on_signal(self, _signum: int, _frame: Any) -> None:
        self.stop()
