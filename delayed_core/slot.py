"""One worker slot: a thread that takes a task, has the runner run and settle it, over and over.

The loop keeps a busy slot at one broker round trip per task: settling a finished task and taking the
next one are a single atomic broker call (the runner returns the task that call took). It blocks on the
broker only when every queue it serves is empty.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from . import crashpoints
from .backoff import Backoff
from .errors import BrokerUnavailable
from .runner import SlotState, TaskRunner

logger = logging.getLogger("delayed.worker")


class Slot(threading.Thread):
    """The thread loop of one slot.

    :param runner: runs and settles each task (it knows the broker and the queues, in priority order).
    :param state: the slot's index, id and running task.
    :param stopping: set when the worker stops.
    :param dequeue_timeout: seconds one blocking take may wait.
    :param burst: stop at the first empty answer instead of waiting for work.
    """

    def __init__(self, runner: TaskRunner, state: SlotState, stopping: threading.Event, dequeue_timeout: float,
                 burst: bool = False) -> None:
        super().__init__(name=f"delayed-slot-{state.index}", daemon=True)
        self.runner = runner
        self.state = state
        self.stopping = stopping
        # Burst mode stops at the first empty answer: no point blocking long for it.
        self.timeout = min(dequeue_timeout, 0.5) if burst else dequeue_timeout
        self.burst = burst
        #: called in the slot's thread as it ends, however it ends (the worker counts its live slots)
        self.on_end: Callable[[], None] = lambda: None

    @property
    def index(self) -> int:
        """The slot number, 0 .. slots-1."""
        return self.state.index

    @property
    def slot_id(self) -> str:
        """The id this slot holds tasks under (32 hex chars): go-delayed's "worker id"."""
        return self.state.slot_id

    @property
    def ids(self) -> tuple[str, ...]:
        """Every id this slot holds tasks under (a prefetching slot has several: prefetch.py)."""
        return (self.state.slot_id,)

    def hand_back_unstarted(self) -> None:
        """Hand back tasks taken but not started (only a prefetching slot has any)."""

    @property
    def tasks_done(self) -> int:
        """Tasks this slot ran to the end."""
        return self.state.tasks_done

    def run(self) -> None:
        try:
            self.serve()
        finally:
            self.on_end()

    def serve(self) -> None:
        """Take and run tasks until the worker stops (or, in burst mode, until every queue is empty)."""
        runner, state, stopping = self.runner, self.state, self.stopping
        consumer, queues = runner.consumer, runner.queues
        backoff = Backoff()
        taken: tuple[str, bytes] | None = None
        resume = False
        while not stopping.is_set():
            try:
                if resume:
                    # A reply may have been lost mid-call: whatever this id holds is ours to run.
                    taken, resume = consumer.held_in(state.slot_id, queues), False
                    if taken is not None:
                        logger.warning("slot %d: running the task it was given when the connection broke",
                                       state.index)
                if taken is None:
                    taken = consumer.dequeue_first(state.slot_id, queues, self.timeout)
                    if taken is None:
                        if self.burst:
                            break
                        continue
                    crashpoints.reached("after_dequeue")
                # The runner settles every task itself (dead letter, release or retry) and retries its
                # own broker calls, so nothing raised below this line can make a task run twice.
                taken = runner.process(state, *taken)
                backoff.reset()
            except BrokerUnavailable as exc:
                taken, resume = None, True
                backoff.wait(stopping, logger.error, "broker unavailable (%s); slot %d retries in %.1fs", exc,
                             state.index)
            except Exception:
                # Taking a task failed in a way that is not an outage (a bug in a plugin or in pydelayed):
                # say so loudly and keep the slot alive. A task this id was given but never started is
                # still recorded as held, and this slot picks it up again itself on the next turn.
                logger.exception("slot %d: unexpected error while taking a task; the slot carries on",
                                 state.index)
                taken, resume = None, True
                backoff.wait(stopping)
