"""The task-tracking role of a broker: records of tracked tasks, written by the calls that move them.

A broker that supports task handles provides a :class:`TaskTracker` (``Broker.tracker_class``). Every
write happens inside a call the task makes anyway (enqueue, release-and-take, requeue, dead-letter), so
tracking adds no round trip to those paths; reading a record is one round trip.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

R = TypeVar("R")

#: Statuses a record can hold or report (``running`` and ``unknown`` are derived when it is read).
QUEUED, SCHEDULED, RUNNING, SUCCEEDED, FAILED, DEAD, CANCELLED, UNKNOWN = (
    "queued", "scheduled", "running", "succeeded", "failed", "dead", "cancelled", "unknown")
#: What :meth:`TaskTracker.cancel` did.
NOT_CANCELLED, REMOVED, STOPPING = 0, 1, 2
#: Statuses after which a task never runs again.
FINISHED = frozenset({SUCCEEDED, DEAD, CANCELLED})


# Submission and Finish are made once per tracked enqueue and per settled tracked task: slotted, not
# frozen (a frozen dataclass sets each field through object.__setattr__, five times the cost).
@dataclass(slots=True)
class Submission:
    """A tracked task to enqueue.

    :param unique_window: 0: a random id, no check; -1: a caller's id, refused while one is pending;
        positive: seconds within which an equal task (same id) returns the existing one.
    :param due_in: seconds until it falls due (None: at once).
    """

    task_id: str
    queue: str
    func: str
    data: bytes
    pending_ttl: float
    due_in: float | None = None
    unique_window: float = 0


@dataclass(slots=True)
class Finish:
    """What the call settling a tracked task writes into its record.

    :param fields: record fields (``status``, ``result``, ``error_type`` ...) as bytes/str; the worker's
        also carry the task's queue and function, so that a tracker can write a settled record whole
        (the worker's carry the finish time too; a tracker adds one when a Finish has none).
    :param ttl: seconds the record stays.
    """

    task_id: str
    fields: dict[str, str | bytes | int | float] = field(default_factory=dict)
    ttl: float = 0.0


@dataclass(frozen=True)
class TaskRecord:
    """A tracked task's record as read (see docs/results.md for each field)."""

    task_id: str
    status: str
    queue: str = ""
    func: str = ""
    enqueued: float | None = None
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    worker: str = ""
    result: bytes | None = None
    result_error: str = ""
    error_type: str = ""
    message: str = ""
    traceback: str = ""

    @property
    def done(self) -> bool:
        """True when the task will not run again."""
        return self.status in FINISHED

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the result stays out: it is encoded bytes)."""
        return {"id": self.task_id, "status": self.status, "queue": self.queue, "func": self.func,
                "enqueued": self.enqueued, "started": self.started, "finished": self.finished,
                "attempts": self.attempts, "worker": self.worker, "result_error": self.result_error,
                "error_type": self.error_type, "message": self.message, "traceback": self.traceback}


async def _in_thread(function: Callable[..., R], *args: Any) -> R:
    """``asyncio.to_thread(function, *args)``."""
    # Imported on first use: a synchronous process (``delayed info``) loads this module but never awaits.
    import asyncio

    return await asyncio.to_thread(function, *args)


class CancelWatcher:
    """Requests to stop running tasks, as a worker hears them (the default hears none)."""

    def __init__(self) -> None:
        self._woken = threading.Event()

    def wait(self, timeout: float) -> list[tuple[str, str]]:
        """Block up to ``timeout`` seconds; return the ``(slot id, task id)`` pairs asked for meanwhile."""
        woken = getattr(self, "_woken", None)  # None: a subclass that skipped this __init__
        if woken is None:
            time.sleep(timeout)
        else:
            woken.wait(timeout)
        return []

    def wake(self) -> None:
        """End a :meth:`wait` in progress at once (it returns what it heard, or nothing), and every later
        one: called from another thread by a stopping worker, just before the waiting thread closes the
        watcher. A watcher that overrides :meth:`wait` overrides this too."""
        woken = getattr(self, "_woken", None)
        if woken is not None:
            woken.set()

    def close(self) -> None:
        """Release the watcher's connection."""


class TaskTracker(abc.ABC):
    """Reads and writes task records for one broker (and the queues sharing its backing store).

    :param broker: the broker it is built from (``broker.tracker_class(broker)``).
    """

    def __init__(self, broker: Any) -> None:
        self.broker = broker

    @abc.abstractmethod
    def submit(self, submission: Submission) -> tuple[bool, str]:
        """Enqueue (or schedule) the task and write its record, atomically, in one round trip.

        Returns ``(True, status)`` when enqueued, ``(False, status)`` when an equal pending task exists
        (see :attr:`Submission.unique_window`); nothing is written then."""

    def submit_many(self, submissions: Sequence[Submission]) -> list[tuple[bool, str]]:
        """:meth:`submit` for a batch that shares a queue, ``due_in`` and ``unique_window``; one answer
        per submission, in order. Override to write the batch in one round trip (the default makes one
        per task)."""
        return [self.submit(submission) for submission in submissions]

    @abc.abstractmethod
    def release_and_take(self, worker_id: str, queue: str, queues: Sequence[str], take_next: bool,
                         finish: Finish) -> tuple[str, bytes] | None:
        """The consumer's release-and-take, writing ``finish`` in the same call."""

    @abc.abstractmethod
    def requeue(self, worker_id: str, queue: str, task: bytes, delay: float, finish: Finish) -> None:
        """The consumer's requeue (a retry), writing ``finish`` and the new task bytes in the same call."""

    @abc.abstractmethod
    def dead_letter(self, worker_id: str, queue: str, entry: bytes, keep: int, finish: Finish) -> None:
        """The consumer's dead-letter, writing ``finish`` in the same call."""

    @abc.abstractmethod
    def mark(self, finish: Finish) -> bool:
        """Finish the record of a task settled outside a worker (a poison task the sweeper buried), unless
        it has finished already; wake its waiters. True when written."""

    @abc.abstractmethod
    def read(self, task_id: str) -> TaskRecord:
        """The record, with ``running`` / ``queued`` derived from who holds the task (one round trip)."""

    @abc.abstractmethod
    def wait(self, task_id: str, timeout: float) -> TaskRecord:
        """Block until the task is finished or ``timeout`` passes, without polling; return the record."""

    @abc.abstractmethod
    def cancel(self, task_id: str, ttl: float) -> int:
        """Remove a queued or scheduled task atomically (:data:`REMOVED`); for a task a live worker runs,
        ask that worker to stop it (:data:`STOPPING`, announced to :meth:`watch_cancels`); else
        :data:`NOT_CANCELLED`."""

    def made_id(self, task_id: str) -> str:
        """The id of a task whose id pydelayed made (random, or derived with ``unique_for``) from the one
        made: itself by default. A tracker keeping records per queue adds its queue (see
        :meth:`queue_named`), so that ``app.handle(id)`` finds a record from the id alone."""
        return task_id

    def queue_named(self, task_id: str) -> str | None:
        """The queue that an id from :meth:`made_id` names; None for any other id, and on a tracker that
        finds every record by its id alone (the default)."""
        return None

    # -- from asyncio code: the defaults run the calls above in a thread; a broker with an asyncio client
    # overrides them to wait natively (no thread per waiter)
    async def submit_many_async(self, submissions: Sequence[Submission]) -> list[tuple[bool, str]]:
        """:meth:`submit_many` from asyncio code."""
        return await _in_thread(self.submit_many, submissions)

    async def read_async(self, task_id: str) -> TaskRecord:
        """:meth:`read` from asyncio code."""
        return await _in_thread(self.read, task_id)

    async def wait_async(self, task_id: str, timeout: float) -> TaskRecord:
        """:meth:`wait` from asyncio code (never polling either)."""
        return await _in_thread(self.wait, task_id, timeout)

    def watch_cancels(self, queues: Sequence[str]) -> CancelWatcher:
        """What a worker of ``queues`` listens to for requests to stop running tasks. The default hears
        nothing: on such a broker running tasks are not stopped."""
        return CancelWatcher()
