"""Enqueueing tracked tasks: ids in the tasks' meta, the enqueue and the records in one broker call.

One task (``.delay()``, ``queue.enqueue(track=True)``) or a batch (``queue.enqueue_many(track=True)``),
from plain or asyncio code: the steps before and after the write are shared, the write differs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .errors import DelayedError
from .handles import ID_FIELD, PENDING_TTL, RESULT_TTL, TaskHandle, check_task_id, new_task_id, unique_task_id
from .interfaces import Serializer
from .interfaces.tracking import Submission, TaskTracker
from .notify import Notifier
from .queue import with_plugin_meta
from .results import tracker_for
from .task import PyTask


class Tracked:
    """Tracked tasks of one queue, ready to write: their submissions, then their handles.

    :param ids: the caller's id per task (None: a random one, or with ``unique_for`` one derived from the
        function and its arguments); None for the whole batch: all derived.
    :param unique_for: seconds within which an equal call returns the existing task.
    :param result_ttl: these tasks' retention, overriding the ``result_ttl`` setting.
    """

    def __init__(self, tracker: TaskTracker, notifier: Notifier, queue: str, serializer: Serializer,
                 tasks: Sequence[PyTask], due: float | None, ids: Sequence[str | None] | None, unique_for: float,
                 result_ttl: int | None) -> None:
        self.tracker = tracker
        self.notifier = notifier
        self.queue = queue
        self.serializer = serializer
        self.result_ttl = result_ttl
        window = float(unique_for)  # random ids: 0, no check; derived ones: the window
        if ids is None:
            ids = [None] * len(tasks)
        elif len(ids) != len(tasks):
            raise ValueError(f"{len(ids)} task ids for {len(tasks)} tasks")
        elif not window and any(task_id is not None for task_id in ids):
            window = -1.0  # a caller's id: refused while one is pending
        self.ids: list[str] = []
        tracked: list[PyTask] = []
        made_id = tracker.made_id  # the id as the tracker keeps it (a cluster's names the queue)
        for task, task_id in zip(tasks, ids, strict=True):
            if task_id is not None:
                check_task_id(task_id)
            elif unique_for:
                task_id = made_id(unique_task_id(task.func_path, task.args, task.kwargs))
            else:
                task_id = made_id(new_task_id())
            meta = {**task.meta, ID_FIELD: task_id}
            if result_ttl is not None:
                meta["rt"] = int(result_ttl)
            self.ids.append(task_id)
            tracked.append(task.with_meta(meta))
        self.tasks = with_plugin_meta(notifier, queue, tracked)
        self.due = due
        self.window = window

    def submissions(self) -> list[Submission]:
        """The tasks encoded, as the tracker takes them (inside the write: an encoding error is reported
        by ``delayed_task_enqueue_failed`` as a broker error is)."""
        due_in = None if self.due is None else max(0.0, self.due - time.time())
        pending = PENDING_TTL + (due_in or 0.0)
        dumps = self.serializer.dumps
        return [Submission(task_id, self.queue, task.func_path, dumps(task), pending, due_in, self.window)
                for task_id, task in zip(self.ids, self.tasks, strict=True)]  # type: ignore[union-attr]

    def failed(self, exc: Exception) -> None:
        """The write failed: ``delayed_task_enqueue_failed`` per task."""
        for task in self.tasks:
            self.notifier.delayed_task_enqueue_failed(queue=self.queue, task=task, error=exc)

    def handles(self, answers: Sequence[tuple[bool, str]]) -> list[TaskHandle]:
        """After the write: ``delayed_task_enqueued`` for each task enqueued (not those that found an equal
        pending task: nothing was written for them), and a handle per task."""
        for task, (added, _) in zip(self.tasks, answers, strict=True):
            if added:
                self.notifier.delayed_task_enqueued(queue=self.queue, task=task)
        ttl = self.result_ttl if self.result_ttl is not None else RESULT_TTL.default
        return [TaskHandle(self.tracker, self.serializer, task_id, ttl) for task_id in self.ids]

    def write(self) -> list[TaskHandle]:
        """Write the batch in one broker call (plain code)."""
        try:
            answers = self.tracker.submit_many(self.submissions())
        except Exception as exc:
            self.failed(exc)
            raise
        return self.handles(answers)

    async def write_async(self) -> list[TaskHandle]:
        """Write the batch in one broker call, from asyncio code."""
        try:
            answers = await self.tracker.submit_many_async(self.submissions())
        except Exception as exc:
            self.failed(exc)
            raise
        return self.handles(answers)


def tracker_or_error(broker: Any) -> TaskTracker:
    """The broker's tracker; a clear error when it keeps no task records."""
    tracker = tracker_for(broker)
    if tracker is None:
        raise DelayedError(f"the {type(broker).__name__} broker keeps no task records; tasks on it "
                           "cannot be tracked (set result_ttl = 0)")
    return tracker


def only_py_tasks(tasks: Sequence[object]) -> list[PyTask]:
    """The tasks, refusing a GoTask (Go tasks have no handle)."""
    for task in tasks:
        if not isinstance(task, PyTask):
            raise TypeError(f"only PyTasks can be tracked, not {type(task).__name__} (Go tasks have no handle)")
    return list(tasks)  # type: ignore[arg-type]
