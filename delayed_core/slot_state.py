"""The per-slot and per-queue state the task pipeline (:mod:`delayed_core.runner`) works with.

:class:`SlotState` is shared between a slot's thread, the worker's main thread (which hands a running task
back at a shutdown timeout) and the cancel listener (which interrupts a cancelled task); its lock decides
which of them settles a task.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .config import Config
from .outcome import Outcome


@dataclass(frozen=True)
class QueueSettings:
    """What the pipeline reads from one queue's settings (a multi-queue worker has one per queue)."""

    timeout: float  # default time limit of a task, 0 for none
    dead_letter_failed: bool
    dead_letter_max: int
    config: Config | None = None  # the queue's whole config, for plugin settings (result_ttl ...)

    @classmethod
    def from_config(cls, config: Config) -> QueueSettings:
        """The settings of a queue's effective config."""
        return cls(config["timeout"], config["dead_letter_failed"], config["dead_letter_max"], config)


class SlotState:
    """One slot's identity and the task it runs, shared with the worker's main thread.

    :param index: the slot number (executors keep per-slot state by it).
    :param slot_id: the id the slot holds tasks under: go-delayed's "worker id" (the brokers' and hooks'
        ``worker_id``), since each go-delayed worker is what one slot is here.
    """

    def __init__(self, index: int, slot_id: str) -> None:
        self.index = index
        self.slot_id = slot_id
        # Guards the hand-over between the slot finishing a task and the main thread handing it back at a
        # shutdown timeout: exactly one of them may settle the held task.
        self.lock = threading.Lock()
        self.running: tuple[str, bytes] | None = None  # (queue, task bytes) while the function runs
        self.abandoned = False
        self.tasks_done = 0
        self.started = 0.0  # unix time the current task started (tracked tasks record it)
        self.outcome: Outcome | None = None  # the current task's outcome, once it has one
        self.tracked: str | None = None  # the id of the task being handled, if it is tracked
        self.task_id: str | None = None  # the running task's id, if it is tracked (cancelling.py)
        self.cancel_id: str | None = None  # set when a stop of that task was asked for
        # A stop asked for while the slot held the task but had not started it (decoding it, running the
        # dequeued hook): the runner checks it, under ``lock``, before it starts the function.
        self.cancel_before_start: str | None = None
