"""Enqueueing a tracked task: its id in the task's meta, the enqueue and the record in one broker call."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .errors import DelayedError
from .handles import ID_FIELD, PENDING_TTL, RESULT_TTL, TaskHandle, check_task_id, new_task_id, unique_task_id
from .interfaces.tracking import Submission
from .queue import with_plugin_meta
from .results import tracker_for
from .task import PyTask

if TYPE_CHECKING:
    from .queue import Queue


def submit(queue: Queue, task: PyTask, due: float | None, task_id: str | None, unique_for: float,
           result_ttl: int | None) -> TaskHandle:
    """Enqueue ``task`` with a record; return its handle (the existing task's when an equal one is pending).

    :param task_id: the caller's id (refused while a task with it is pending); None: a new random id, or
        with ``unique_for`` one derived from the function and its arguments.
    :param unique_for: seconds within which an equal call returns the existing task.
    :param result_ttl: this task's retention, overriding the ``result_ttl`` setting.
    """
    tracker = tracker_for(queue.broker)
    if tracker is None:
        raise DelayedError(f"the {type(queue.broker).__name__} broker keeps no task records; tasks on it "
                           "cannot be tracked (set result_ttl = 0)")
    if task_id is not None:
        check_task_id(task_id)
        window = float(unique_for) if unique_for else -1.0
    elif unique_for:
        task_id, window = unique_task_id(task.func_path, task.args, task.kwargs), float(unique_for)
    else:
        task_id, window = new_task_id(), 0.0
    meta = {**task.meta, ID_FIELD: task_id}
    if result_ttl is not None:
        meta["rt"] = int(result_ttl)
    tracked = with_plugin_meta(queue._notifier, queue.name,
                               [PyTask(task.func_path, task.args, task.kwargs, task.retry, meta)])[0]
    try:
        data = queue.serializer.dumps(tracked)
        due_in = None if due is None else max(0.0, due - time.time())
        pending = PENDING_TTL + (due_in or 0.0)
        added, _ = tracker.submit(Submission(task_id, queue.name, task.func_path, data, pending, due_in, window))
    except Exception as exc:
        queue._notifier.delayed_task_enqueue_failed(queue=queue.name, task=tracked, error=exc)
        raise
    if added:  # not when an equal pending task was found: nothing was enqueued then
        queue._notifier.delayed_task_enqueued(queue=queue.name, task=tracked)
    ttl = result_ttl if result_ttl is not None else RESULT_TTL.default
    return TaskHandle(tracker, queue.serializer, task_id, ttl)
