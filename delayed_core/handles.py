"""Task handles: what ``.delay()`` returns for a tracked task (status, result, cancel).

A task is tracked when its PyTask carries an ``id`` in its meta (``@app.task`` functions do unless
``result_ttl`` is 0; explicit PyTasks only with ``queue.enqueue(task, track=True)``). Its record lives
beside the queue, written by the broker calls that move the task (see
:mod:`delayed_core.interfaces.tracking` and docs/results.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

from .errors import DelayedError
from .interfaces.serializer import Serializer
from .interfaces.tracking import CANCELLED, DEAD, REMOVED, STOPPING, SUCCEEDED, UNKNOWN, TaskRecord, TaskTracker
from .settings import Setting

#: How long the records of finished tracked tasks (and their results) stay; 0 turns tracking off.
RESULT_TTL: Setting[int] = Setting(
    "result_ttl", int, 86400, "seconds the records and results of finished tasks stay (0: tasks are not "
    "tracked, and @app.task functions enqueue delayed 1.2's exact bytes)",
    check=lambda v: "must be >= 0" if v < 0 else None)
#: Largest return value stored; a larger one is refused (the task still succeeds).
RESULT_MAX_BYTES: Setting[int] = Setting(
    "result_max_bytes", int, 1024 * 1024, "largest encoded return value stored for a tracked task (bytes)",
    check=lambda v: "must be > 0" if v <= 0 else None)
#: How long the record of a task that has not finished stays (a task lost for good expires with it).
PENDING_TTL = 7 * 86400.0
#: The meta field carrying a tracked task's id.
ID_FIELD = "id"
#: Seconds between repeats of a stop request while ``cancel()`` waits for a running task to end.
STOP_RESEND = 0.5
#: Longest caller-chosen id.
MAX_ID_LENGTH = 200


class TaskFailed(DelayedError):
    """The task failed for good (or was dead-lettered): ``handle.result()`` raises this.

    :param error_type: the exception's type name (``"ValueError"``), or a label (``"Timeout"``).
    :param message: the exception's message.
    :param traceback: an excerpt of the traceback in the worker.
    """

    def __init__(self, task_id: str, error_type: str, message: str, traceback: str) -> None:
        super().__init__(f"task {task_id} failed: {error_type}: {message}" if message else
                         f"task {task_id} failed: {error_type}")
        self.task_id = task_id
        self.error_type = error_type
        self.message = message
        self.traceback = traceback


class NoResult(DelayedError):
    """The task finished but there is no value to give: cancelled, or its value was not stored."""


def new_task_id() -> str:
    """A random id: 128 bits, hex (``secrets.token_hex``'s source, without its two layers of calls)."""
    return os.urandom(16).hex()


def check_task_id(task_id: str) -> str:
    """``task_id``, or ValueError when it cannot be one."""
    if not isinstance(task_id, str) or not task_id or len(task_id) > MAX_ID_LENGTH or not task_id.isprintable():
        raise ValueError(f"a task id is a printable string of 1 to {MAX_ID_LENGTH} characters, got {task_id!r:.60}")
    return task_id


def unique_task_id(path: str, args: Any, kwargs: Any) -> str:
    """The id equal calls share (``unique_for``): a hash of the function and its arguments."""
    text = json.dumps([path, list(args), dict(kwargs)], sort_keys=True, default=repr)
    return "u-" + hashlib.sha256(text.encode()).hexdigest()[:32]


class TaskHandle:
    """A tracked task, by id. Cheap to create: nothing is read until asked.

    :param tracker: the tracker of the broker holding its record.
    :param serializer: decodes the stored return value.
    :param task_id: the task's id.
    :param ttl: seconds a cancelled record stays.
    """

    def __init__(self, tracker: TaskTracker, serializer: Serializer, task_id: str,
                 ttl: float = RESULT_TTL.default) -> None:
        self.tracker = tracker
        self.serializer = serializer
        self.id = task_id
        self._ttl = ttl

    def record(self) -> TaskRecord:
        """The whole record (times, attempts, worker, error); one round trip."""
        return self.tracker.read(self.id)

    def status(self) -> str:
        """``queued``, ``scheduled``, ``running``, ``succeeded``, ``failed`` (will retry), ``dead``,
        ``cancelled`` or ``unknown`` (expired or never seen); one round trip."""
        return self.record().status

    def result(self, timeout: float = 10.0) -> Any:
        """The task's return value, waiting up to ``timeout`` seconds for it to finish (never polling).

        Raises :class:`TaskFailed` if it failed for good or was dead-lettered, :class:`NoResult` if it
        was cancelled, its value was not stored, or it is unknown, ``TimeoutError`` if not finished in
        time. One round trip when it has finished already.
        """
        record = self.tracker.wait(self.id, timeout)
        return self._value(record, timeout)

    async def record_async(self) -> TaskRecord:
        """:meth:`record` for asyncio code."""
        return await self.tracker.read_async(self.id)

    async def status_async(self) -> str:
        """:meth:`status` for asyncio code."""
        return (await self.record_async()).status

    async def result_async(self, timeout: float = 10.0) -> Any:
        """:meth:`result` for asyncio code: the wait happens on the event loop (the Redis broker awaits
        its pub/sub channel; no thread, no polling)."""
        record = await self.tracker.wait_async(self.id, timeout)
        return self._value(record, timeout)

    def cancel(self, wait: float = 5.0) -> bool:
        """True if the task will not run, or was stopped: a queued or scheduled task is removed; a running
        one is stopped by its worker (waiting up to ``wait`` seconds for it to confirm). False when it has
        finished (nothing changes), is unknown, or was not stopped in time (under the thread and asyncio
        executors a plain function blocked in one C call, such as a long ``time.sleep``, stops only when
        that call returns; it still ends ``cancelled``)."""
        done = self.tracker.cancel(self.id, self._ttl)
        if done != STOPPING:
            return done == REMOVED
        # The stop request reaches the worker as a pub/sub message, which a worker not subscribed at that
        # moment (just started, or reconnecting) never gets: ask again every STOP_RESEND seconds until
        # the task has ended or ``wait`` is over (a worker ignores a repeat of a stop it acts on).
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            record = self.tracker.wait(self.id, max(0.0, min(STOP_RESEND, left)))
            if record.done or left <= STOP_RESEND:
                return record.status == CANCELLED
            done = self.tracker.cancel(self.id, self._ttl)
            if done != STOPPING:  # back in the queue (its worker died) and removed now, or ended meanwhile
                return done == REMOVED or self.tracker.read(self.id).status == CANCELLED

    def _value(self, record: TaskRecord, timeout: float) -> Any:
        if record.status == SUCCEEDED:
            if record.result is None:
                raise NoResult(f"task {self.id} succeeded but its value was not stored: "
                               f"{record.result_error or 'it returned nothing storable'}")
            return self.serializer.loads_value(record.result)
        if record.status == DEAD:
            raise TaskFailed(self.id, record.error_type, record.message, record.traceback)
        if record.status == CANCELLED:
            raise NoResult(f"task {self.id} was cancelled; it has no result")
        if record.status == UNKNOWN:
            if record.queue:  # a broker keeping records per queue says where it looked
                raise NoResult(f"task {self.id} is unknown in queue {record.queue}: never enqueued there with "
                               "tracking, or its record expired (app.handle(id, queue=...) looks in another)")
            raise NoResult(f"task {self.id} is unknown: never enqueued with tracking, or its record expired")
        raise TimeoutError(f"task {self.id} has not finished within {timeout:g}s (it is {record.status})")

    def __repr__(self) -> str:
        return f"<TaskHandle {self.id}>"
