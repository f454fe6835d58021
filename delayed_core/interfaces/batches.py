"""Batches: the optional consumer role behind ``delayed worker --prefetch K``.

A prefetching slot holds up to K tasks, each under its own worker id (go-delayed's rule, one task per id,
stays: every held task sits in the queue's processing record under a live id, so the sweeper recovers all
of them if the process dies). It settles and takes them in batches: one call releases the tasks that ran
to their end, hands the unstarted ones back to the front of their queues, and takes up to K new ones.

A broker that inherits :class:`Batches` does that in one atomic round trip, and may send that call while
the worker still runs tasks and read its reply later (:meth:`Batches.start_release_take_batch`). Any
other broker still serves ``--prefetch`` through :func:`default_batch` and :func:`default_held_by`,
which call the one-task methods of :class:`~delayed_core.interfaces.Consumer` once per task: correct,
only not faster.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .consumer import Consumer
from .tracking import Finish


@dataclass(frozen=True)
class Held:
    """A task a slot holds: its bytes ``task``, held in ``queue`` under ``worker_id``."""

    worker_id: str
    queue: str
    task: bytes


@dataclass(frozen=True)
class Finished:
    """A held task that ran to its end, to release: ``finish`` is the record write of a tracked task (the
    same a tracker's release writes), None for an untracked one."""

    held: Held
    finish: Finish | None = None


class Batches(abc.ABC):
    """Settling and taking several tasks of one slot in one atomic broker call."""

    #: False when one call cannot span several queues (Redis Cluster: each queue in its own hash slot);
    #: a worker of several queues then goes through :func:`default_batch`
    batch_spans_queues: bool = True

    @abc.abstractmethod
    def release_take_batch(self, done: Sequence[Finished], unstarted: Sequence[Held], take_ids: Sequence[str],
                           queues: Sequence[str]) -> list[Held]:
        """In one atomic step:

        1. release each task of ``done`` (it ran to its end: like :meth:`Consumer.release`, its poison
           count goes too), and write its ``finish`` into its record when it has one (a broker with a
           tracker must: the worker batches the releases of tracked tasks too);
        2. hand each task of ``unstarted`` back to the FRONT of its queue, keeping their order (the first
           of the list is the next task of its queue): whatever its ``worker_id`` holds in its ``queue``
           (its ``task`` bytes are not read), nothing for an id that holds nothing there;
        3. take up to ``len(take_ids)`` ready tasks, never blocking: the i-th under ``take_ids[i]``, each
           from the first of ``queues`` (highest priority first) that has one.

        An id of ``take_ids`` that still holds a task after steps 1-2 is skipped, never overwritten.
        Returns the tasks taken, in the order taken (empty when none was ready).
        """

    def start_release_take_batch(self, done: Sequence[Finished], unstarted: Sequence[Held],
                                 take_ids: Sequence[str], queues: Sequence[str]) -> Callable[[], list[Held]]:
        """:meth:`release_take_batch`, sent now and answered later: returns a function that waits for the
        call's reply and returns the tasks taken. A broker that can sends the call and returns at once,
        so that the call's round trip and its work on the server overlap the worker running the tasks it
        already holds; this default makes the call at once.

        Either step may raise what :meth:`release_take_batch` raises. Call the returned function exactly
        once, before the calling thread starts another batch.
        """
        taken = self.release_take_batch(done, unstarted, take_ids, queues)
        return lambda: taken

    @abc.abstractmethod
    def held_by(self, worker_ids: Sequence[str], queues: Sequence[str]) -> list[Held]:
        """The tasks ``worker_ids`` hold in any of ``queues``, in the order of ``worker_ids`` (used to
        resume after a lost reply)."""


def default_batch(consumers: Mapping[str, Consumer], done: Sequence[Finished], unstarted: Sequence[Held],
                  take_ids: Sequence[str], queues: Sequence[str]) -> list[Held]:
    """:meth:`Batches.release_take_batch` for a broker without the role, given the consumer of each queue:
    one call per task, not atomic as a whole (each step is, and every task stays held until its own step
    moved it). It writes no record: the worker settles tracked tasks on their own on such a broker."""
    for finished in done:
        held = finished.held
        consumers[held.queue].release_and_take_first(held.worker_id, held.queue, (held.queue,), False)
    for held in reversed(unstarted):  # the last one first: each goes in front of the ones after it
        consumers[held.queue].requeue(held.worker_id, held.task, front=True)
    first = consumers[queues[0]]
    taken: list[Held] = []
    for worker_id in take_ids:
        if first.held_in(worker_id, queues) is not None:
            continue
        # Releasing an id that holds nothing is a no-op: this is the consumer's non-blocking take.
        got = first.release_and_take_first(worker_id, queues[0], queues, True)
        if got is None:
            break
        taken.append(Held(worker_id, *got))
    return taken


def default_held_by(consumer: Consumer, worker_ids: Sequence[str], queues: Sequence[str]) -> list[Held]:
    """:meth:`Batches.held_by` for a broker without the role: one call per id."""
    found = ((worker_id, consumer.held_in(worker_id, queues)) for worker_id in worker_ids)
    return [Held(worker_id, *held) for worker_id, held in found if held is not None]
