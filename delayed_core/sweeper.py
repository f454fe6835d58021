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
from typing import TYPE_CHECKING, Any

from .backoff import Backoff
from .config import Config
from .errors import BrokerUnavailable
from .interfaces import Sweeper, SweepReport

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
        """Sweep every queue once; return the reports. Raises BrokerUnavailable."""
        reports = []
        for queue, sweeper in self.sweepers.items():
            report = sweeper.sweep()
            reports.append(report)
            if report.requeued or report.poisoned or report.notifications:
                logger.info(
                    "queue %s: requeued %d lost task(s), dead-lettered %d poison task(s), "
                    "notifications %+d, promoted %d", queue, report.requeued, report.poisoned,
                    report.notifications, report.promoted,
                )
            self.app.notifier.emit("delayed_sweep_finished", queue=queue, report=report)
        return reports

    def run(self, once: bool = False, install_signals: bool = True) -> None:
        """Sweep now, then every interval, until stopped. With ``once``, sweep once and return."""
        previous = {}
        if install_signals and threading.current_thread() is threading.main_thread():
            previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        backoff = Backoff()
        try:
            while True:
                try:
                    self.sweep_once()
                    backoff.reset()
                    wait = self.config["sweeper_interval"]
                except BrokerUnavailable as exc:
                    if once:
                        raise
                    wait = backoff.next_delay()
                    logger.error("broker unavailable (%s); sweeping again in %.1fs", exc, wait)
                if once or self.stopping.wait(wait):
                    return
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self) -> None:
        """Stop after the current sweep."""
        self.stopping.set()

    def _on_signal(self, _signum: int, _frame: Any) -> None:
        self.stop()
