"""One worker slot: a thread that takes a task, runs it and releases it, over and over.

The loop keeps a busy queue at one broker round trip per task: releasing a finished task and taking the
next one are a single atomic broker call. It blocks on the broker only when the queue is empty.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from . import crashpoints
from .backoff import Backoff
from .deadletter import DeadLetter, Reason
from .errors import BrokerUnavailable, TaskDecodeError, TaskNotAllowed
from .logcontext import TaskScope, note_outcome, note_task
from .outcome import Outcome, Status
from .task import GoTask, PyTask

if TYPE_CHECKING:
    from .worker import Worker

logger = logging.getLogger("delayed.worker")

FAILURE_REASONS = {Status.FAILED: Reason.FAILED, Status.TIMEOUT: Reason.TIMEOUT, Status.CRASHED: Reason.CRASHED}


class Slot(threading.Thread):
    """Runs tasks for one worker id.

    :param worker: the owning worker.
    :param index: the slot number, 0 .. slots-1 (executors keep per-slot state by it).
    :param worker_id: the id this slot holds tasks under (32 hex chars).
    """

    def __init__(self, worker: Worker, index: int, worker_id: str) -> None:
        super().__init__(name=f"delayed-slot-{index}", daemon=True)
        self.worker = worker
        self.index = index
        self.worker_id = worker_id
        # Guards the hand-over between this thread finishing a task and the main thread handing the
        # task back at a shutdown timeout: exactly one of them may touch the held task.
        self.lock = threading.Lock()
        self.running: bytes | None = None
        self.abandoned = False
        self.tasks_done = 0

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> None:
        worker = self.worker
        broker, stopping = worker.broker, worker.stopping
        # Burst mode stops at the first empty answer: no point blocking long for it.
        timeout = min(worker.config["dequeue_timeout"], 0.5) if worker.burst else worker.config["dequeue_timeout"]
        backoff = Backoff()
        raw: bytes | None = None
        resume = False
        while not stopping.is_set():
            try:
                if resume:
                    # A reply may have been lost mid-call: whatever this id holds is ours to run.
                    raw, resume = broker.held(self.worker_id), False
                    if raw is not None:
                        logger.warning("slot %d: running again the task it held when the connection broke",
                                       self.index)
                if raw is None:
                    raw = broker.dequeue(self.worker_id, timeout)
                    if raw is None:
                        if worker.burst:
                            break
                        continue
                    crashpoints.reached("after_dequeue")
                with TaskScope(worker.queue_name, self.worker_id):  # the task context of log lines
                    raw = self.handle(raw)
                backoff.reset()
            except BrokerUnavailable as exc:
                raw, resume = None, True
                delay = backoff.next_delay()
                logger.error("broker unavailable (%s); slot %d retries in %.1fs", exc, self.index, delay)
                stopping.wait(delay)
            except Exception:
                # A bug in a plugin or in pydelayed itself: say so loudly and keep the slot alive. The
                # held task stays recorded and is recovered by the sweeper if this repeats.
                logger.exception("slot %d: unexpected error; the slot carries on", self.index)
                raw, resume = None, True
                stopping.wait(backoff.next_delay())

    # -- one task --------------------------------------------------------------------------------
    def handle(self, raw: bytes) -> bytes | None:
        """Run one task end to end. Returns the next task when releasing could take one at once."""
        worker = self.worker
        queue, notifier = worker.queue_name, worker.notifier
        try:
            task = worker.serializer.loads(raw)
        except TaskDecodeError as exc:
            self.dead_letter(raw, Reason.UNDECODABLE, str(exc))
            return None
        note_task(task)
        notifier.emit("delayed_task_dequeued", queue=queue, task=task, worker_id=self.worker_id)
        if isinstance(task, GoTask):
            self.dead_letter(raw, Reason.WRONG_LANGUAGE,
                             f"Go task {task.func_path} cannot run on a Python worker", task=task)
            return None
        try:
            func = worker.functions.resolve(task.func_path)
        except TaskNotAllowed as exc:
            self.dead_letter(raw, Reason.NOT_ALLOWED, str(exc), task=task)
            return None

        timeout = worker.functions.options(task.func_path).timeout or worker.config["timeout"] or None
        notifier.emit("delayed_task_started", queue=queue, task=task, worker_id=self.worker_id)
        with self.lock:
            self.running = raw
        outcome = worker.executor.execute(self.index, task, func, timeout)
        note_outcome(outcome)
        with self.lock:
            self.running = None
            if self.abandoned:
                # The main thread handed this task back at the shutdown timeout; it is not ours any more.
                return None
        self.tasks_done += 1
        crashpoints.reached("after_task")
        if outcome.ok:
            notifier.emit("delayed_task_succeeded", queue=queue, task=task, worker_id=self.worker_id,
                          outcome=outcome)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s succeeded in %.4fs", task.func_path, outcome.duration)
            next_raw = worker.broker.release(self.worker_id, take_next=not worker.stopping.is_set())
            crashpoints.reached("after_release_take")
            notifier.emit("delayed_task_released", queue=queue, task=task, worker_id=self.worker_id)
            return next_raw
        self.failed(raw, task, outcome)
        return None

    def failed(self, raw: bytes, task: PyTask, outcome: Outcome) -> None:
        """The failure path: retry when a plugin says so, else dead-letter (or release) the task."""
        worker = self.worker
        queue, notifier = worker.queue_name, worker.notifier
        logger.warning("%s failed (attempt %d): %s", task.func_path, task.attempt + 1, outcome.describe())
        notifier.emit("delayed_task_failed", queue=queue, task=task, worker_id=self.worker_id, outcome=outcome)
        delay = worker.plugin_manager.hook.delayed_retry_delay(queue=queue, task=task, outcome=outcome)
        # None: no plugin answered; a negative answer (NO_RETRY): a plugin refused, overruling the default.
        if delay is not None and delay >= 0:
            retry = task.next_attempt()
            crashpoints.reached("before_retry_requeue")
            worker.broker.requeue(self.worker_id, worker.serializer.dumps(retry), delay=delay)
            notifier.emit("delayed_task_requeued", queue=queue, task=retry, worker_id=self.worker_id,
                          delay=delay)
            return
        if worker.config["dead_letter_failed"]:
            self.dead_letter(raw, FAILURE_REASONS[outcome.status], outcome.describe(), task=task,
                             traceback=outcome.traceback)
        else:
            worker.broker.release(self.worker_id)
            notifier.emit("delayed_task_released", queue=queue, task=task, worker_id=self.worker_id)

    def dead_letter(self, raw: bytes, reason: str, error: str, task: PyTask | GoTask | None = None,
                    traceback: str = "") -> None:
        """Release the held task into the dead-letter list, with the reason, and log one line."""
        worker = self.worker
        attempts = task.attempt + 1 if isinstance(task, PyTask) else 0
        letter = DeadLetter(
            task=raw, reason=reason, error=error, traceback=traceback, queue=worker.queue_name,
            worker=self.worker_id, attempts=attempts, func=task.func_path if task is not None else "",
        )
        worker.broker.dead_letter(self.worker_id, letter.to_json(), worker.config["dead_letter_max"])
        logger.error("dead-lettered a task from %s (%s): %s", worker.queue_name, reason, error)
        worker.notifier.emit("delayed_task_dead_lettered", queue=worker.queue_name, letter=letter)
