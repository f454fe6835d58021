"""Task records for the memory broker: the same semantics as the Redis tracker, in process memory.

Records sit in the broker's store beside its queues and change under the store's lock, in the same
critical section as the queue operation they belong to, as the Redis scripts do in one call.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from delayed_core.interfaces import tracking as st
from delayed_core.interfaces.tracking import Finish, Submission, TaskRecord, TaskTracker

if TYPE_CHECKING:
    from .memory_broker import MemoryBroker, _Store

PENDING = ("queued", "scheduled", "failed")


def _seconds(value: Any) -> float | None:
    return None if value is None else int(value) / 1000


class MemoryTracker(TaskTracker):
    """Records of tracked tasks on one memory:// store."""

    def __init__(self, broker: MemoryBroker) -> None:
        super().__init__(broker)
        self.broker: MemoryBroker = broker
        self.store: _Store = broker.store

    @property
    def _records(self) -> dict[str, dict[str, Any]]:
        return self.store.records

    def _get(self, task_id: str) -> dict[str, Any] | None:
        record = self._records.get(task_id)
        if record is not None and record["expires"] <= time.monotonic():
            del self._records[task_id]
            return None
        return record

    def submit(self, submission: Submission) -> tuple[bool, str]:
        with self.store.cond:
            now = int(time.time() * 1000)
            old = self._get(submission.task_id)
            if old is not None and submission.unique_window != 0:
                if old["s"] in PENDING:
                    return False, old["s"]
                if submission.unique_window > 0 and now - old["en"] < submission.unique_window * 1000:
                    return False, old["s"]
            state = self.store.queue(submission.queue)
            status = st.QUEUED
            if submission.due_in is not None:
                status = st.SCHEDULED
                due = time.time() + submission.due_in
                bisect.insort(state.scheduled, (due, next(self.store.order), submission.data))
            else:
                self.broker._push(state, (submission.data,))
            self._records[submission.task_id] = {
                "s": status, "q": submission.queue, "fn": submission.func, "t": submission.data, "en": now, "a": 0,
                "expires": time.monotonic() + submission.pending_ttl}
            return True, status

    def submit_many(self, submissions: Sequence[Submission]) -> list[tuple[bool, str]]:
        """The batch under one hold of the store's lock: atomic, as the Redis script is."""
        with self.store.cond:
            return [self.submit(submission) for submission in submissions]

    def _finish(self, finish: Finish, task: bytes | None = None) -> None:
        record = self._records.setdefault(finish.task_id, {})
        record.pop("t", None)
        record.update(finish.fields, fi=int(time.time() * 1000), expires=time.monotonic() + finish.ttl)
        if task is not None:
            record["t"] = task
        self.store.cond.notify_all()

    def release_and_take(self, worker_id: str, queue: str, queues: Sequence[str], take_next: bool,
                         finish: Finish) -> tuple[str, bytes] | None:
        with self.store.cond:
            taken = self.broker.release_and_take_first(worker_id, queue, queues, take_next)
            self._finish(finish)
            return taken

    def requeue(self, worker_id: str, queue: str, task: bytes, delay: float, finish: Finish) -> None:
        with self.store.cond:
            self.store.queue(queue).processing.pop(worker_id, None)
            state = self.store.queue(queue)
            if delay > 0:
                bisect.insort(state.scheduled, (time.time() + delay, next(self.store.order), task))
            else:
                self.broker._push(state, (task,))
            self._finish(finish, task)

    def dead_letter(self, worker_id: str, queue: str, entry: bytes, keep: int, finish: Finish) -> None:
        with self.store.cond:
            state = self.store.queue(queue)
            state.processing.pop(worker_id, None)
            state.dead.appendleft(entry)
            while len(state.dead) > keep:
                state.dead.pop()
            self._finish(finish)

    def mark(self, finish: Finish) -> bool:
        with self.store.cond:
            record = self._get(finish.task_id)
            if record is None or record["s"] not in PENDING:
                return False
            self._finish(finish)
            return True

    def read(self, task_id: str) -> TaskRecord:
        with self.store.cond:
            record = self._get(task_id)
            if record is None:
                return TaskRecord(task_id, st.UNKNOWN)
            status, worker = record["s"], record.get("w", "")
            state = self.store.queue(record["q"])
            holder = next((wid for wid, held in state.processing.items() if held == record.get("t")), None)
            if holder is not None:
                status, worker = (st.RUNNING if self.store.alive(holder) else st.QUEUED), holder
            elif status == st.SCHEDULED and not any(task == record.get("t") for _, _, task in state.scheduled):
                status = st.QUEUED
            return TaskRecord(
                task_id, status, queue=record["q"], func=record.get("fn", ""), enqueued=_seconds(record.get("en")),
                started=_seconds(record.get("st")), finished=_seconds(record.get("fi")), attempts=record.get("a", 0),
                worker=worker, result=record.get("r"), result_error=record.get("re", ""),
                error_type=record.get("et", ""), message=record.get("em", ""), traceback=record.get("tb", ""))

    def wait(self, task_id: str, timeout: float) -> TaskRecord:
        deadline = time.monotonic() + timeout
        with self.store.cond:
            while True:
                record = self.read(task_id)
                remaining = deadline - time.monotonic()
                if record.status in st.FINISHED or record.status == st.UNKNOWN or remaining <= 0:
                    return record
                self.store.cond.wait(remaining)  # woken by every change of the store, never a timer

    def cancel(self, task_id: str, ttl: float) -> int:
        with self.store.cond:
            record = self._get(task_id)
            if record is None or record["s"] not in PENDING or "t" not in record:
                return st.NOT_CANCELLED
            state = self.store.queue(record["q"])
            task = record["t"]
            for index, entry in enumerate(state.scheduled):
                if entry[2] == task:
                    del state.scheduled[index]
                    break
            else:
                if task not in state.tasks:
                    return self._ask_to_stop(task_id, record)
                state.tasks.remove(task)
                state.notifications = max(0, state.notifications - 1)
            self._finish(Finish(task_id, {"s": st.CANCELLED}, ttl))
            return st.REMOVED

    def _ask_to_stop(self, task_id: str, record: dict[str, Any]) -> int:
        """Announce a stop request to the workers of the task's queue, if a live one holds it."""
        state = self.store.queue(record["q"])
        holder = next((wid for wid, held in state.processing.items() if held == record["t"]), None)
        if holder is None or not self.store.alive(holder):
            return st.NOT_CANCELLED
        self.store.cancels.append((record["q"], holder, task_id))
        self.store.cond.notify_all()
        return st.STOPPING

    def watch_cancels(self, queues: Sequence[str]) -> st.CancelWatcher:
        return MemoryCancelWatcher(self.store, set(queues))


class MemoryCancelWatcher(st.CancelWatcher):
    """Stop requests appended to the store after the watcher was made."""

    def __init__(self, store: _Store, queues: set[str]) -> None:
        super().__init__()
        self.store = store
        self.queues = queues
        self.seen = len(store.cancels)
        self.woken = False

    def wait(self, timeout: float) -> list[tuple[str, str]]:
        with self.store.cond:
            if len(self.store.cancels) == self.seen and not self.woken:
                self.store.cond.wait(timeout)
            new, self.seen = self.store.cancels[self.seen:], len(self.store.cancels)
        return [(slot_id, task_id) for queue, slot_id, task_id in new if queue in self.queues]

    def wake(self) -> None:
        with self.store.cond:
            self.woken = True
            self.store.cond.notify_all()
