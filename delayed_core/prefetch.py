"""A prefetching slot (``delayed worker --prefetch K``): up to K tasks per broker round trip.

The slot holds K worker ids, claimed and kept alive with the worker's others (one keep-alive call for all
of them). One batch call (:class:`~delayed_core.interfaces.batches.Batches`) releases the tasks that ran
to their end and takes new ones under the ids that are free, each under its own id, so the go-delayed
rules hold unchanged: every held task sits in its queue's processing record under a live id, and a killed
worker's tasks, prefetched or running, are all recovered by the sweeper. The slot runs them one after
another through the same runner as a one-task slot.

The batch calls overlap the tasks (from K = 16 up): once half of its ids hold finished tasks, the slot
sends the call that releases them and takes new tasks under those ids, runs the tasks it still holds
while the broker runs the call, and reads the reply when they are used up. The slot never holds more
than K tasks, and at most one call is in flight; its finished tasks and the ids it takes under stay in
the state (:attr:`PrefetchState.releasing`, :attr:`PrefetchState.taking`) until its reply is read, so
that a lost reply, a stop and a cancel all know about them.

- A task that needs its own call (a retry, a dead letter, a rate limit putting it aside) is settled at
  once by that call; releases, tracked tasks' record writes included, wait for the next batch call (so a
  waiting ``handle.result()`` hears of a task when its batch is settled).
- At a stop, the slot reads the reply of the call in flight, then one last batch call releases the
  finished tasks and hands the unstarted ones back to the FRONT of their queues, in order; at the
  shutdown timeout the worker's main thread does the same (:meth:`PrefetchSlot.hand_back_unstarted`)
  before handing back the running task, handing back by id whatever the call in flight took.
- A tracked task cancelled while it waits in the batch, or while the call that takes it is in flight, is
  settled as cancelled and never runs (the cancel listener marks its id,
  :meth:`PrefetchState.cancel_unstarted`).

Priority across queues holds when a batch is taken (the highest queue first), not while it runs: a task
enqueued in a higher queue waits for the batch in hand. docs/scaling.md#prefetch says when K pays.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from . import crashpoints
from .backoff import Backoff
from .disposition import RELEASE, Disposition
from .errors import BrokerUnavailable
from .interfaces.batches import Batches, Finished, Held, default_batch, default_held_by
from .logcontext import TaskScope
from .maintenance import one_line
from .results import tracked_id
from .runner import SlotState, TaskRunner
from .slot import Slot

logger = logging.getLogger("delayed.worker")

#: the fewest tasks a batch call sent while tasks run may take (so K = 16 and up overlap its calls)
OVERLAP_FROM = 8


class PrefetchState(SlotState):
    """A prefetching slot's state: its ids, and the tasks it holds (guarded by ``lock``).

    ``slot_id`` follows the task running now, so that hooks, log lines, dead letters and task records name
    the id the task is held under; between tasks it is the first id (the one an idle slot blocks with).
    """

    def __init__(self, index: int, ids: Sequence[str]) -> None:
        super().__init__(index, ids[0])
        self.ids = tuple(ids)
        self.unstarted: list[Held] = []  # taken, not started, in the order they run
        self.done: list[tuple[Held, Disposition]] = []  # ran to their end; released by the next batch call
        # The batch call in flight: the finished tasks it releases, and the ids it takes tasks under (what
        # it took is known once its reply is read).
        self.releasing: list[tuple[Held, Disposition]] = []
        self.taking: tuple[str, ...] = ()
        self.cancelled: dict[str, str] = {}  # worker id -> the tracked task id asked to stop before it started

    def cancel_unstarted(self, worker_id: str, task_id: str) -> bool:
        """Mark the task held under ``worker_id`` as cancelled if it has not started (it waits in the slot,
        or the call in flight took it); True if it was. The slot checks the task id before it heeds the
        mark, so a mark that names an id's earlier task is harmless."""
        with self.lock:
            if worker_id in self.taking or any(held.worker_id == worker_id for held in self.unstarted):
                self.cancelled[worker_id] = task_id
                return True
        return False

    def to_hand_back(self) -> tuple[list[tuple[Held, Disposition]], list[Held], tuple[str, ...]]:
        """Take the finished and the unstarted tasks, and the ids the call in flight takes under, out of the
        state (exactly one caller gets them)."""
        with self.lock:
            done, unstarted, taking = self.done, self.unstarted, self.taking
            self.done, self.unstarted, self.taking = [], [], ()
            return done, unstarted, taking


class PrefetchSlot(Slot):
    """The thread loop of one prefetching slot (see the module docstring)."""

    state: PrefetchState

    def __init__(self, runner: TaskRunner, state: PrefetchState, stopping: threading.Event,
                 dequeue_timeout: float, burst: bool = False) -> None:
        super().__init__(runner, state, stopping, dequeue_timeout, burst)
        # Send the next batch call once this many of the ids hold finished tasks: half of them, so that the
        # other half runs while the call is in flight. A call has a fixed cost too (a send and a read in
        # the worker, a script call in Redis: ~40 and ~30 us on the reference machine), so when half a
        # batch is under OVERLAP_FROM tasks the slot runs its whole batch, then calls, as without overlap.
        half = len(state.ids) // 2
        self.send_at = half if half >= OVERLAP_FROM else len(state.ids)
        self._pending: Callable[[], list[Held]] | None = None  # reads the reply of the call in flight

    @property
    def native(self) -> bool:
        """True when the broker batches in one call (records included); else the default serves it."""
        consumer = self.runner.consumer
        return isinstance(consumer, Batches) and (len(self.runner.queues) == 1 or consumer.batch_spans_queues)

    @property
    def ids(self) -> tuple[str, ...]:
        """Every id this slot holds tasks under."""
        return self.state.ids

    def serve(self) -> None:
        state, stopping = self.state, self.stopping
        backoff = Backoff()
        resync = False
        while True:
            try:
                if stopping.is_set():
                    if resync:  # what the ids hold is unknown: the sweeper recovers it once they go offline
                        logger.error("slot %d: stopping with its batch unsettled; the sweeper will recover its "
                                     "tasks", state.index)
                    else:
                        self._collect()  # what the call in flight took is handed back with the rest
                        self.hand_back_unstarted()
                    return
                if resync:
                    self._resync()
                    resync = False
                held, cancelled = self._next()
                if held is not None:
                    if self._pending is None and len(state.done) >= self.send_at:
                        self._send(running=held.worker_id)
                    self._run_one(held, cancelled)
                elif not self._refill():
                    return  # burst mode, and every queue is empty
                backoff.reset()
            except BrokerUnavailable as exc:
                resync = True
                backoff.wait(stopping, logger.error, "broker unavailable (%s); slot %d retries in %.1fs", exc,
                             state.index)
            except Exception:
                # A bug in a plugin or in pydelayed, not an outage: say so loudly and keep the slot alive.
                # What the ids hold is read again, so no task is lost or run twice for it.
                logger.exception("slot %d: unexpected error while taking tasks; the slot carries on", state.index)
                resync = True
                backoff.wait(stopping)

    # -- batch calls -------------------------------------------------------------------------------
    def _send(self, running: str | None = None) -> None:
        """Send the batch call that releases the finished tasks and takes new ones under every id that
        holds neither an unstarted task nor ``running`` (a finished task's id is released first)."""
        state, runner = self.state, self.runner
        with state.lock:
            busy = {held.worker_id for held in state.unstarted}
            take_ids = tuple(worker_id for worker_id in state.ids if worker_id not in busy and worker_id != running)
            releasing, state.done = state.done, []
            state.releasing, state.taking = releasing, take_ids
        finished = [Finished(held, disposition.finish) for held, disposition in releasing]
        consumer, queues = runner.consumer, runner.queues
        if self.native:
            assert isinstance(consumer, Batches)
            self._pending = consumer.start_release_take_batch(finished, (), take_ids, queues)
        else:  # one call per task: nothing to overlap; its tasks join the unstarted ones at once
            taken = default_batch(runner.brokers, finished, (), take_ids, queues)
            self._pending = lambda: taken
            self._collect()

    def _collect(self) -> None:
        """Read the reply of the call in flight, if any: its tasks join the unstarted ones (they were taken
        after them)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        taken = pending()  # on an error, releasing and taking stay for _resync
        state = self.state
        with state.lock:
            released, state.releasing, state.taking = state.releasing, [], ()
            state.unstarted.extend(taken)
        crashpoints.reached("after_release_take")
        self._announce(released)

    def _refill(self) -> bool:
        """The tasks in hand are used up: read the call in flight, else release the finished tasks and take
        the next ones; block for one task when none is ready. False when the slot should end (burst mode
        found every queue empty)."""
        state, runner = self.state, self.runner
        in_flight = self._pending is not None
        self._collect()
        # A call in flight that took nothing just said the queues were empty: block, unless finished tasks
        # wait for their release.
        if not state.unstarted and (state.done or not in_flight):
            self._send()
            self._collect()
        if state.unstarted:
            return True
        # Nothing held: every id is free, the first one blocks.
        state.slot_id = state.ids[0]  # the id wake() unblocks
        first = runner.consumer.dequeue_first(state.ids[0], runner.queues, self.timeout)
        if first is None:
            return not self.burst
        crashpoints.reached("after_dequeue")
        with state.lock:
            state.unstarted.append(Held(state.ids[0], *first))
        return True

    def _announce(self, done: Sequence[tuple[Held, Disposition]]) -> None:
        for held, disposition in done:
            self.state.slot_id = held.worker_id
            self.runner.announce(self.state, disposition)

    def hand_back_unstarted(self) -> None:
        """Release the finished tasks and hand the unstarted ones back to the front of their queues (one
        batch call). Called by the slot at a stop, once the call in flight is read, or by the worker's
        main thread at the shutdown timeout, before it hands back the running task (which so ends up
        first).

        The main thread cannot read the reply of a call in flight (the slot's thread reads its own
        connection), so it hands back by id whatever that call took, after the unstarted tasks (it took
        them later). That call was sent before the running task started, so the server ran it long
        before; if it had not (a stalled server), its tasks stay under ids that go offline, and the
        sweeper recovers them. The finished tasks that call releases are not named again: their ids may
        hold the new tasks.
        """
        done, unstarted, taking = self.state.to_hand_back()
        known = len(unstarted)
        if taking and self.native:  # a hand-back reads a task's id and queue, not its bytes
            unstarted += [Held(worker_id, queue, b"") for worker_id in taking for queue in self.runner.queues]
        if not done and not unstarted:
            return
        try:
            self._batch(done, unstarted)
        except Exception as exc:  # an outage, or a bug: either way the ids go offline and the sweep requeues
            logger.error("slot %d: could not settle its batch at the stop (%s); the sweeper will recover its "
                         "tasks", self.state.index, one_line(exc))
            return
        self._announce(done)
        if unstarted:
            logger.info("slot %d: handed %d unstarted task(s) back to the front of the queue%s", self.state.index,
                        known, " (and those the batch call in flight took)" if known < len(unstarted) else "")

    def _batch(self, done: Sequence[tuple[Held, Disposition]], unstarted: Sequence[Held]) -> None:
        """Release ``done`` and hand ``unstarted`` back, taking nothing: one call, read at once."""
        consumer, queues = self.runner.consumer, self.runner.queues
        finished = [Finished(held, disposition.finish) for held, disposition in done]
        if self.native:
            assert isinstance(consumer, Batches)
            consumer.release_take_batch(finished, unstarted, (), queues)
        else:
            default_batch(self.runner.brokers, finished, unstarted, (), queues)

    def _resync(self) -> None:
        """After a failed call, read what the ids hold: the truth about a batch whose reply was lost.

        A finished task its id still holds is still to be released (the call did not happen; the batch
        call is all or nothing); anything else an id holds was taken and has not run: the tasks the slot
        knew unstarted keep their order, those a lost reply took follow. A new task byte-identical to the
        finished one and taken under the same id reads as "did not happen": the blind spot the one-task
        loop has too (TaskRunner.commit); tracked tasks, with their ids, have none.
        """
        if self._pending is not None:
            self._collect()  # a healthy call in flight: its reply first, so that no call runs behind the read
        state, runner = self.state, self.runner
        consumer = runner.consumer
        if self.native:
            assert isinstance(consumer, Batches)
            held = consumer.held_by(state.ids, runner.queues)
        else:
            held = default_held_by(consumer, state.ids, runner.queues)
        with state.lock:
            finished = dict(state.done + state.releasing)  # Held -> its disposition
            order = {h.worker_id: n for n, h in enumerate(state.unstarted)}
            state.done = [(h, finished[h]) for h in held if h in finished]
            state.unstarted = sorted((h for h in held if h not in finished),
                                     key=lambda h: order.get(h.worker_id, len(order)))
            state.releasing, state.taking = [], ()

    # -- one task ----------------------------------------------------------------------------------
    def _next(self) -> tuple[Held | None, str | None]:
        """The next unstarted task, now the slot's current one, and the task id a cancel marked on its id;
        (None, None) when none is left. One hold of the lock: a cancel finds the task either unstarted
        (marked) or current under its id (the runner's path for a running task)."""
        state = self.state
        with state.lock:
            if not state.unstarted:
                return None, None
            held = state.unstarted.pop(0)
            state.slot_id = held.worker_id
            return held, state.cancelled.pop(held.worker_id, None) if state.cancelled else None

    def _run_one(self, held: Held, cancelled: str | None) -> None:
        state, runner = self.state, self.runner
        with TaskScope(held.queue, held.worker_id):
            disposition = self._cancelled(held, cancelled) if cancelled else None
            if disposition is None:
                disposition = runner.prepare(state, held.queue, held.task)
            if disposition is None:
                return  # nothing held any more (handed back at the shutdown timeout, or put aside)
            # A tracked task's record rides on the batch call too, when the broker batches natively.
            if disposition.kind == RELEASE and (disposition.finish is None or self.native):
                with state.lock:
                    state.done.append((held, disposition))
            else:
                runner.commit(state, replace(disposition, take_next=False))

    def _cancelled(self, held: Held, task_id: str) -> Disposition | None:
        """The release of a tracked task cancelled before it started, recorded as cancelled; None when the
        task under that id is not the one cancelled."""
        runner = self.runner
        try:
            task = runner.serializer.loads(held.task)
        except Exception:
            return None  # undecodable: the runner dead-letters it as usual
        if tracked_id(task) != task_id or runner.settings[held.queue].config is None:
            return None
        logger.info("slot %d: settling task %s without running it (cancelled)", self.state.index, task_id)
        return runner.cancelled_release(held.worker_id, held.queue, held.task, task, take_next=False)
