"""Built-in plugin: every worker process takes part in scheduling the periodic functions its app knows,
and records how each periodic run ended (for ``delayed periodic list``).

Sweeper processes take part too (:class:`~delayed_core.sweeper.SweepLoop` starts the same loop). The
outcome recorder is registered only in workers whose app has periodic functions, so that every other
worker keeps the "no plugin implements it" shortcut of the task hooks.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from delayed_core import hookimpl
from delayed_core.interfaces import PeriodicStore

if TYPE_CHECKING:
    # only in annotations: importing the worker's modules would cost every command (delayed info ...)
    from delayed_core.outcome import Outcome
    from delayed_core.periodic_loop import PeriodicLoop
    from delayed_core.task import PyTask
    from delayed_core.worker import Worker

logger = logging.getLogger("delayed.periodic")

#: id(worker) -> (its loop, its outcome recorder) (a process may run several workers: tests, notebooks)
_RUNNING: dict[int, tuple[PeriodicLoop, OutcomeRecorder | None]] = {}


class OutcomeRecorder:
    """Writes the outcome of each periodic run into its schedule's record (one round trip per run)."""

    def __init__(self, loop: PeriodicLoop) -> None:
        self.loop = loop
        self.names = {entry.name for entry in loop.entries}

    @hookimpl
    def delayed_task_succeeded(self, queue: str, task: PyTask, worker_id: str, outcome: Outcome) -> None:
        """Record a periodic run that succeeded."""
        self._note(queue, task, "succeeded")

    @hookimpl
    def delayed_task_failed(self, queue: str, task: PyTask, worker_id: str, outcome: Outcome) -> None:
        """Record a periodic run that failed (a retry, if any, is recorded again when it ends)."""
        self._note(queue, task, f"failed: {outcome.describe()}"[:200])

    def _note(self, queue: str, task: PyTask, outcome: str) -> None:
        name, tick = task.meta.get("periodic"), task.meta.get("tick")
        if name not in self.names:
            return
        from delayed_core.periodic_loop import tick_text  # imported by the worker (its loop) already

        broker = self.loop.app.broker(queue)
        facts = {"outcome": outcome, "finished_at": tick_text(time.time()),
                 "last_run_tick": tick_text(float(tick)) if isinstance(tick, int | float) else ""}
        try:
            if isinstance(broker, PeriodicStore):
                broker.periodic_note(str(name), facts)
        except Exception as exc:  # a record for `delayed periodic list`: never worth failing the task
            logger.warning("periodic %s: could not record its outcome (%s)", name, " ".join(str(exc).split()))


@hookimpl
def delayed_worker_started(worker: Worker) -> None:
    """Start the worker's periodic loop and outcome recorder (nothing without periodic functions)."""
    from delayed_core.periodic_loop import PeriodicLoop  # here: only a worker runs it, not delayed info

    loop = PeriodicLoop(worker.app).start()
    recorder = None
    if loop.entries:
        recorder = OutcomeRecorder(loop)
        worker.app.register_plugin(recorder, name=f"delayed-periodic-outcomes-{id(worker)}")
    _RUNNING[id(worker)] = (loop, recorder)


@hookimpl
def delayed_worker_stopped(worker: Worker) -> None:
    """Stop the worker's periodic loop and drop its recorder."""
    loop, recorder = _RUNNING.pop(id(worker), (None, None))
    if loop is not None:
        loop.stop()
    if recorder is not None:
        worker.app.plugin_manager.unregister(recorder)
        worker.app.notifier.refresh()
