"""Stopping running tracked tasks: a worker thread that hears stop requests and interrupts the slot.

``handle.cancel()`` on a running task makes the broker announce ``(slot id, task id)`` to the workers of
the task's queue (:meth:`~delayed_core.interfaces.tracking.TaskTracker.watch_cancels`). The worker whose
slot runs that task marks the slot and calls ``executor.interrupt(slot)``: the fork and subprocess
executors kill the child; the thread and asyncio executors cancel a coroutine and raise into a plain
function (as their soft time limit does). The runner then settles the task as ``cancelled``: never
retried, never dead-lettered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .interfaces import Executor
from .interfaces.tracking import CancelWatcher, TaskTracker
from .maintenance import TICK, one_line
from .prefetch import PrefetchState
from .runner import SlotState

logger = logging.getLogger("delayed.worker")


class CancelListener:
    """Runs in its own worker thread until ``stopping`` is set; never raises."""

    def __init__(self, tracker: TaskTracker, queues: Sequence[str], slots: Callable[[], list[SlotState]],
                 executor: Executor, stopping: threading.Event) -> None:
        self.tracker = tracker
        self.queues = list(queues)
        self.slots = slots
        self.executor = executor
        self.stopping = stopping
        self.watcher: CancelWatcher | None = None

    def run(self) -> None:
        """Wait for requests (TICK at a time) and act on those for our slots, until stopped."""
        # Stored before ``stopping`` is read, so that a stop sees the watcher to wake (see wake).
        watcher = self.watcher = self.tracker.watch_cancels(self.queues)
        try:
            while not self.stopping.is_set():
                try:
                    requests = watcher.wait(TICK)
                except Exception as exc:  # the watcher reconnects on its next wait
                    if not self.stopping.is_set():  # else the wake or the broker's close ended it
                        logger.error("listening for cancelled tasks failed (%s)", one_line(exc))
                    self.stopping.wait(TICK)
                    continue
                for slot_id, task_id in requests:
                    self.stop(slot_id, task_id)
        finally:
            watcher.close()

    def wake(self) -> None:
        """End the thread's wait at once; call it after setting ``stopping`` (as Maintenance.wake)."""
        watcher = self.watcher
        if watcher is not None:
            watcher.wake()

    def stop(self, slot_id: str, task_id: str) -> None:
        """Interrupt the slot ``slot_id`` if it still runs ``task_id``."""
        for slot in self.slots():
            # a prefetching slot may hold the task unstarted: it then settles it as cancelled, unrun
            if isinstance(slot, PrefetchState) and slot.cancel_unstarted(slot_id, task_id):
                logger.info("slot %d: task %s cancelled before it started", slot.index, task_id)
                return
            if slot.slot_id != slot_id:
                continue
            with slot.lock:  # the slot sets task_id under it: no later task of the slot is interrupted
                if slot.task_id is None and slot.running is None:
                    # Held, not started yet (the broker only asks when a slot id holds the task): the runner
                    # reads this mark before it starts the function, and settles the task as cancelled.
                    slot.cancel_before_start = task_id
                    logger.info("slot %d: task %s cancelled before it started", slot.index, task_id)
                    return
                if slot.task_id != task_id or slot.cancel_id == task_id:
                    return  # another task by now, or a repeat of a stop being carried out
                slot.cancel_id = task_id
                logger.info("slot %d: stopping task %s (cancelled)", slot.index, task_id)
                self.executor.interrupt(slot.index)


def start_cancel_listener(worker: Any, stopping: threading.Event) -> tuple[CancelListener, threading.Thread] | None:
    """Start the listener thread of ``worker`` (a :class:`~delayed_core.worker.Worker`), which runs until
    ``stopping`` is set, when its first queue's broker keeps task records; None otherwise."""
    tracker = worker.runner.trackers.get(worker.queues[0])
    if tracker is None:
        return None
    listener = CancelListener(tracker, worker.queues, lambda: [slot.state for slot in worker.slots], worker.executor,
                              stopping)
    thread = threading.Thread(target=listener.run, name="delayed-cancel", daemon=True)
    thread.start()
    return listener, thread
