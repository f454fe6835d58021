"""The task pipeline: from the bytes a slot took to the one broker call that settles the task.

A :class:`TaskRunner` decodes a task, runs it with the executor and decides its disposition
(:mod:`delayed_core.disposition`): release it (the same call may take the next task), requeue it for a
retry, or dead-letter it. Then it commits that disposition in one broker call.

Two rules hold whatever goes wrong:

- Any error while handling one task ends in a dead letter with a reason: ``undecodable`` for bytes (meta
  included) that are not a task, ``internal`` when pydelayed or a plugin failed on the way (a raising
  ``delayed_retry_delay`` hook, a serializer that cannot encode the retry, a broker refusing the call).
  The task is never run again for it, and the slot never jams.
- Only an unreachable broker makes the runner wait, and then it retries the *broker call*, not the
  task: a finished task is never re-run because its release failed during a write outage.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping

from . import crashpoints
from .backoff import Backoff
from .deadletter import DeadLetter, Reason
from .disposition import DEAD_LETTER, RELEASE, REQUEUE, Disposition, describe_error
from .errors import BrokerUnavailable, TaskDecodeError, TaskNotAllowed
from .functions import FunctionRegistry, TaskPlan
from .interfaces import Broker, Executor, Serializer
from .logcontext import CURRENT_SCOPE, TaskScope, note_outcome, note_task
from .notify import Notifier
from .outcome import Outcome, Status, clip_traceback
from .rate_limit import put_aside
from .results import RecordLimits, finish_for, now, tracked_id, tracker_for
from .slot_state import QueueSettings, SlotState
from .task import GoTask, PyTask, Task

logger = logging.getLogger("delayed.worker")

FAILURE_REASONS = {Status.FAILED: Reason.FAILED, Status.TIMEOUT: Reason.TIMEOUT, Status.CRASHED: Reason.CRASHED}


class TaskRunner:
    """Runs and settles the tasks of one worker's queues (see the module docstring).

    :param brokers: queue name -> broker, highest priority first; the first one also serves the
        calls that span every queue.
    :param retry_delay: the ``delayed_retry_delay`` decision hook.
    :param settings: queue name -> its :class:`QueueSettings`.
    :param stopping: set when the worker stops: a release then takes no next task.
    """

    def __init__(self, brokers: Mapping[str, Broker], serializer: Serializer, functions: FunctionRegistry,
                 executor: Executor, notifier: Notifier, retry_delay: Callable[..., float | None],
                 settings: Mapping[str, QueueSettings], stopping: threading.Event) -> None:
        self.brokers = dict(brokers)
        self.queues = tuple(brokers)
        self.consumer = self.brokers[self.queues[0]]
        self.serializer = serializer
        self.functions = functions
        self.executor = executor
        self.notifier = notifier
        self.retry_delay = retry_delay
        self.settings = dict(settings)
        self.stopping = stopping
        self.trackers = {queue: tracker_for(broker) for queue, broker in self.brokers.items()}
        # The record limits of each queue whose broker keeps records: read once, used per tracked task.
        self.record_limits = {queue: RecordLimits(queue_settings.config)
                              for queue, queue_settings in self.settings.items()
                              if queue_settings.config is not None and self.trackers.get(queue) is not None}

    def process(self, slot: SlotState, queue: str, raw: bytes) -> tuple[str, bytes] | None:
        """Run one task of ``queue`` end to end. Returns the next task when settling it took one."""
        # The task context of log lines (--log-format json), set and reset by hand: see CURRENT_SCOPE.
        token = CURRENT_SCOPE.set(TaskScope(queue, slot.slot_id))
        try:
            disposition = self.prepare(slot, queue, raw)
            return None if disposition is None else self.commit(slot, disposition)
        finally:
            CURRENT_SCOPE.reset(token)

    def prepare(self, slot: SlotState, queue: str, raw: bytes) -> Disposition | None:
        """Run the task and decide its disposition, with the record write of a tracked task; None when
        nothing is left to settle (handed back at shutdown, or put aside by a rate limit)."""
        disposition = self.decide(slot, queue, raw)
        # only a tracked task has a record to write (a task cancelled before it started has it already)
        if disposition is not None and slot.tracked is not None and disposition.finish is None:
            limits = self.record_limits.get(disposition.queue)
            if limits is not None:
                disposition.finish = finish_for(disposition, slot.outcome, slot.started, slot.slot_id,
                                                self.serializer, limits, cancelled=slot.cancel_id is not None,
                                                task_id=slot.tracked)
        return disposition

    # -- deciding ----------------------------------------------------------------------------------
    def decide(self, slot: SlotState, queue: str, raw: bytes) -> Disposition | None:
        """Run the task and say what becomes of it; None when it was handed back at shutdown."""
        slot.outcome = slot.tracked = slot.cancel_id = None
        try:
            task = self.serializer.loads(raw)
        except Exception as exc:  # TaskDecodeError, or a third-party serializer failing its own way
            return self._dead(slot, queue, raw, Reason.UNDECODABLE,
                              describe_error(exc, short=isinstance(exc, TaskDecodeError)))
        note_task(task)
        slot.tracked = task_id = tracked_id(task)
        if task_id is not None:
            slot.started = now()
        # Worked out once per function (timeout, rate limit): one dict lookup once its first task passed.
        plan = self.functions.plans.get(task.func_path)
        limit = plan.rate_limit if plan is not None else self.functions.options(task.func_path).rate_limit
        if limit is not None:
            try:  # the limit may put the task aside; an outage propagates: the slot resumes the held task
                if put_aside(self.brokers[queue], slot.slot_id, raw, task.func_path, limit):
                    return None
            except BrokerUnavailable:
                raise
            except Exception as exc:
                error = f"checking the rate limit failed: {describe_error(exc)}"
                return self._dead(slot, queue, raw, Reason.INTERNAL, error, task)
        try:
            return self._run(slot, queue, raw, task, plan)
        except Exception as exc:
            with slot.lock:
                if slot.abandoned:
                    return None
            logger.exception("slot %d: handling a task of %s failed inside pydelayed or a plugin", slot.index,
                             queue)
            return self._dead(slot, queue, raw, Reason.INTERNAL, f"handling the task failed: {describe_error(exc)}",
                              task, clip_traceback(traceback.format_exc()))

    def _run(self, slot: SlotState, queue: str, raw: bytes, task: Task, plan: TaskPlan | None) -> Disposition | None:
        notifier = self.notifier
        notifier.delayed_task_dequeued(queue=queue, task=task, worker_id=slot.slot_id)
        if isinstance(task, GoTask):
            return self._dead(slot, queue, raw, Reason.WRONG_LANGUAGE,
                              f"Go task {task.func_path} cannot run on a Python worker", task)
        if plan is None:  # the path's first task, or one that may not run: check it (cheap, imports nothing)
            try:
                plan = self.functions.plan(task.func_path)
            except TaskNotAllowed as exc:
                return self._dead(slot, queue, raw, Reason.NOT_ALLOWED, str(exc), task)
        timeout = plan.timeout or self.settings[queue].timeout or None
        notifier.delayed_task_started(queue=queue, task=task, worker_id=slot.slot_id)
        # The id goes first, so a task seen running always has its id; a tracked task's id is published
        # under the lock, with the check for a stop asked for before it started. Otherwise no lock: each
        # store is atomic, and the main thread's hand-back and the cancel listener act only on what they
        # read under the lock below.
        if slot.tracked is None:
            slot.task_id = None
        elif self._cancelled_before_start(slot):
            logger.info("%s cancelled before it started", task.func_path)
            # The task stays on the release: its "released" hook ends what "started" began.
            return self.cancelled_release(slot.slot_id, queue, raw, task, announced=True)
        slot.running = (queue, raw)
        try:
            outcome = self.executor.execute(slot.index, task, timeout)
        finally:
            with slot.lock:
                slot.running = None
                slot.task_id = None
                abandoned = slot.abandoned
        note_outcome(outcome)
        slot.outcome = outcome
        if abandoned:
            return None  # the main thread handed this task back at the shutdown timeout: not ours any more
        slot.tasks_done += 1
        crashpoints.reached("after_task")
        if slot.cancel_id is not None and not outcome.ok:  # stopped by a cancel: never retried
            logger.info("%s cancelled while running", task.func_path)
            return Disposition(RELEASE, queue, raw, task)
        slot.cancel_id = None  # it finished before the stop took effect
        if outcome.ok:
            notifier.delayed_task_succeeded(queue=queue, task=task, worker_id=slot.slot_id, outcome=outcome)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s succeeded in %.4fs", task.func_path, outcome.duration)
            return Disposition(RELEASE, queue, raw, task)
        return self._failed(slot, queue, raw, task, outcome)

    def cancelled_release(self, worker_id: str, queue: str, raw: bytes, task: PyTask, take_next: bool = True,
                          announced: bool = False) -> Disposition:
        """The release of a tracked task cancelled before it started, its record saying ``cancelled``.

        :param announced: the task's "dequeued" and "started" hooks fired: its "released" hook will too.
            Otherwise the release carries no task, and no hook fires for a task that never ran.
        """
        release = Disposition(RELEASE, queue, raw, task, take_next=take_next)
        limits = self.record_limits.get(queue)
        if limits is not None:
            release.finish = finish_for(release, None, now(), worker_id, self.serializer, limits, cancelled=True)
        if not announced:
            release.task = None
        return release

    @staticmethod
    def _cancelled_before_start(slot: SlotState) -> bool:
        """True when a stop of the slot's tracked task came while the slot held it unstarted (the cancel
        listener's mark); then the task is settled as cancelled and never runs. Under the lock: the
        listener either marks the slot before this reads it, or finds the task published as running after
        it and interrupts it; a stop is never lost in between."""
        with slot.lock:
            mark, slot.cancel_before_start = slot.cancel_before_start, None
            if mark is not None and mark == slot.tracked:
                slot.cancel_id = mark
                return True
            slot.task_id = slot.tracked  # published here, under the lock the listener reads it under
            return False

    def _failed(self, slot: SlotState, queue: str, raw: bytes, task: PyTask, outcome: Outcome) -> Disposition:
        """A retry when a plugin (or the built-in default) asks for one; else a dead letter or a release."""
        logger.warning("%s failed (attempt %d): %s", task.func_path, task.attempt + 1, outcome.describe())
        self.notifier.delayed_task_failed(queue=queue, task=task, worker_id=slot.slot_id, outcome=outcome)
        delay = self.retry_delay(queue=queue, task=task, outcome=outcome)
        # None: no plugin answered; a negative answer (NO_RETRY): a plugin refused, overruling the default.
        if delay is not None and delay >= 0:
            retry = task.next_attempt()
            return Disposition(REQUEUE, queue, raw, task, retry=retry, retry_bytes=self.serializer.dumps(retry),
                               delay=float(delay))
        if self.settings[queue].dead_letter_failed:
            return self._dead(slot, queue, raw, FAILURE_REASONS[outcome.status], outcome.describe(), task,
                              outcome.traceback)
        return Disposition(RELEASE, queue, raw, task, take_next=False)

    def _dead(self, slot: SlotState, queue: str, raw: bytes, reason: str, error: str, task: Task | None = None,
              trace: str = "") -> Disposition:
        attempts = task.attempt + 1 if isinstance(task, PyTask) else 0
        letter = DeadLetter(task=raw, reason=reason, error=error, traceback=trace, queue=queue,
                            worker=slot.slot_id, attempts=attempts, func=task.func_path if task is not None else "")
        return Disposition(DEAD_LETTER, queue, raw, task, letter=letter)

    # -- committing --------------------------------------------------------------------------------
    def commit(self, slot: SlotState, disposition: Disposition) -> tuple[str, bytes] | None:
        """Settle the task in one broker call; return the next task when that call took one.

        While the broker is unreachable it retries that call with backoff, first asking what the slot's
        id holds: the task itself means the call did not happen (retry it); anything else means it did
        and its reply was lost (nothing held: done; another task: the call took it, run it next).
        """
        backoff: Backoff | None = None  # made at the first outage only: most calls never need one
        retrying = False
        current: Disposition | None = disposition
        while current is not None:
            try:
                if retrying:
                    held = self.consumer.held_in(slot.slot_id, self.queues)
                    if held != (current.queue, current.raw):
                        self.announce(slot, current)
                        return held
                taken = self._send(slot, current)
                self.announce(slot, current)
                return taken
            except BrokerUnavailable as exc:
                retrying = True
                backoff = backoff or Backoff(initial=0.2, cap=5.0)
                delay = backoff.next_delay()
                logger.error("broker unavailable (%s); slot %d sends the %s of its task again in %.1fs "
                             "(the task itself does not run again)", exc, slot.index, current.kind, delay)
                time.sleep(delay)
            except Exception as exc:
                retrying = False
                current = self._fall_back(slot, current, exc)
        return None

    def _send(self, slot: SlotState, d: Disposition) -> tuple[str, bytes] | None:
        slot_id = slot.slot_id
        tracker = self.trackers.get(d.queue) if d.finish is not None else None
        if d.kind == RELEASE:
            take_next = d.take_next and not self.stopping.is_set()
            if tracker is not None and d.finish is not None:
                taken = tracker.release_and_take(slot_id, d.queue, self.queues, take_next, d.finish)
            else:
                taken = self.consumer.release_and_take_first(slot_id, d.queue, self.queues, take_next)
            crashpoints.reached("after_release_take")
            return taken
        broker = self.brokers[d.queue]
        if d.kind == REQUEUE:
            crashpoints.reached("before_retry_requeue")
            if tracker is not None and d.finish is not None:
                tracker.requeue(slot_id, d.queue, d.retry_bytes, d.delay, d.finish)
            else:
                broker.requeue(slot_id, d.retry_bytes, delay=d.delay)
            return None
        assert d.letter is not None
        keep = self.settings[d.queue].dead_letter_max
        if tracker is not None and d.finish is not None:
            tracker.dead_letter(slot_id, d.queue, d.letter.to_json(), keep, d.finish)
        else:
            broker.dead_letter(slot_id, d.letter.to_json(), keep)
        return None

    def announce(self, slot: SlotState, d: Disposition) -> None:
        """Log and fire the hook of a committed disposition."""
        notifier, slot_id = self.notifier, slot.slot_id
        if d.kind == RELEASE:
            if d.task is not None:
                notifier.delayed_task_released(queue=d.queue, task=d.task, worker_id=slot_id)
        elif d.kind == REQUEUE:
            assert d.retry is not None  # a REQUEUE disposition always carries the new attempt
            notifier.delayed_task_requeued(queue=d.queue, task=d.retry, worker_id=slot_id, delay=d.delay)
        elif d.letter is not None:
            logger.error("dead-lettered a task from %s (%s): %s", d.queue, d.letter.reason, d.letter.error)
            notifier.delayed_task_dead_lettered(queue=d.queue, letter=d.letter)

    def _fall_back(self, slot: SlotState, d: Disposition, exc: Exception) -> Disposition | None:
        """The broker refused a call for a reason other than being unreachable (a bug, a key of the wrong
        type): record the task as an ``internal`` dead letter instead; if even that fails, release it,
        logging the whole entry so that nothing vanishes unseen."""
        error = f"settling the task ({d.kind}) failed: {describe_error(exc)}"
        if d.last_resort:
            logger.exception("slot %d: could not release its task either; it stays held under %s", slot.index,
                             slot.slot_id)
            return None
        if d.kind != DEAD_LETTER:
            logger.exception("slot %d: %s", slot.index, error)
            return self._dead(slot, d.queue, d.raw, Reason.INTERNAL, error, d.task,
                              clip_traceback(traceback.format_exc()))
        assert d.letter is not None
        logger.exception("slot %d: could not store a dead letter, so the task is released; the entry was %s",
                         slot.index, _clipped(d.letter.to_json()))
        return Disposition(RELEASE, d.queue, d.raw, None, take_next=False, last_resort=True)


def _clipped(entry: bytes, limit: int = 2000) -> str:
    text = entry.decode("ascii", errors="replace")
    return text if len(text) <= limit else text[:limit] + "..."
