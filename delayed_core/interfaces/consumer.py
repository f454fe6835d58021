"""The consumer role of a broker: what a worker's slots do with the tasks they take."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence


class Consumer(abc.ABC):
    """Takes tasks for worker slots and settles each one: release, requeue or dead-letter.

    A slot is known by its id (claimed through :class:`~delayed_core.interfaces.Liveness`). A task stays
    recorded as held by that id until it is settled, so it can be recovered if the slot's process dies.
    """

    #: the queue name
    name: str

    @abc.abstractmethod
    def dequeue(self, worker_id: str, timeout: float) -> bytes | None:
        """Take the next task for ``worker_id``, waiting up to ``timeout`` seconds; None if none came.

        A slot that already holds a task gets that same task back (a lost reply).
        """

    @abc.abstractmethod
    def release(self, worker_id: str, take_next: bool = False) -> bytes | None:
        """Forget the task ``worker_id`` holds. With ``take_next``, atomically take the next task if one
        is ready right now (never blocking) and return it, so a busy worker needs one round trip per task.
        """

    @abc.abstractmethod
    def held(self, worker_id: str) -> bytes | None:
        """The task ``worker_id`` holds, if any (used to resume after a connection error)."""

    @abc.abstractmethod
    def requeue(self, worker_id: str, task: bytes, delay: float = 0.0, front: bool = False) -> None:
        """Atomically release ``worker_id``'s task and put ``task`` back: after ``delay`` seconds, or at
        the front of the queue when ``front`` (a task handed back at shutdown)."""

    @abc.abstractmethod
    def dead_letter(self, worker_id: str | None, entry: bytes, keep: int = 10000) -> None:
        """Atomically release ``worker_id``'s task (if given) and store a dead-letter entry (built by the
        core, see :class:`~delayed_core.deadletter.DeadLetter`), keeping only the newest ``keep``."""

    def wake(self, worker_ids: Iterable[str]) -> None:  # noqa: B027 - optional
        """Interrupt ``dequeue`` calls blocked for these ids (they return None), so that idle slots notice
        a stop at once instead of after ``dequeue_timeout``. The default does nothing."""

    # -- workers serving several queues, highest priority first ----------------------------------
    #: True when the three methods below accept several queue names. A broker that leaves it False
    #: still serves one queue per worker through the defaults, which call the one-queue methods.
    serves_several_queues: bool = False

    def dequeue_first(self, worker_id: str, queues: Sequence[str], timeout: float) -> tuple[str, bytes] | None:
        """Like :meth:`dequeue`, over ``queues`` in priority order: take the next task of the first queue
        that has one and return ``(queue, task)``. The task is held in its own queue under ``worker_id``;
        a task the id already holds in any of them comes back first (a lost reply)."""
        self._check_single(queues)
        raw = self.dequeue(worker_id, timeout)
        return None if raw is None else (self.name, raw)

    def release_and_take_first(self, worker_id: str, queue: str, queues: Sequence[str],
                               take_next: bool) -> tuple[str, bytes] | None:
        """Like :meth:`release`: forget the task ``worker_id`` holds in ``queue``; with ``take_next``,
        atomically take the next ready task of the first of ``queues`` that has one (never blocking)."""
        self._check_single((queue, *queues))
        raw = self.release(worker_id, take_next)
        return None if raw is None else (self.name, raw)

    def held_in(self, worker_id: str, queues: Sequence[str]) -> tuple[str, bytes] | None:
        """Like :meth:`held`, over ``queues``: ``(queue, task)`` for the task ``worker_id`` holds."""
        self._check_single(queues)
        raw = self.held(worker_id)
        return None if raw is None else (self.name, raw)

    def _check_single(self, queues: Iterable[str]) -> None:
        for queue in queues:  # a plain loop: this runs once per task
            if queue != self.name:
                raise NotImplementedError(f"{type(self).__name__} cannot serve several queues in one worker")
