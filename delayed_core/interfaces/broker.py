"""The Broker interface: moves serialized tasks for ONE queue.

A broker never sees Task objects, only bytes; the serializer turns tasks into bytes and back. Every
method is one atomic operation on the broker's side, so a worker killed at any moment leaves a state
the sweeper can repair (see docs/concepts.md).

Implementers write the abstract methods. Raise :class:`~delayed_core.errors.BrokerUnavailable` when the
backing service cannot be reached; workers catch it, back off and retry.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class QueueInfo:
    """A snapshot of one queue, for ``delayed info``.

    :param processing: worker id -> (task bytes, whether that worker is alive).
    """

    name: str
    length: int
    notifications: int
    scheduled: int
    dead: int
    processing: dict[str, tuple[bytes, bool]] = field(default_factory=dict)
    workers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SweepReport:
    """What one sweep of one queue did.

    :param requeued: tasks of dead workers put back in the queue.
    :param poisoned: tasks of dead workers dead-lettered because they had killed too many workers.
    :param notifications: notifications added (positive) or surplus ones removed (negative).
    :param promoted: scheduled tasks that fell due and were moved into the queue.
    """

    queue: str
    requeued: int = 0
    poisoned: int = 0
    notifications: int = 0
    promoted: int = 0


class ScheduleWatcher:
    """Tells a worker when scheduled tasks may be due, so it need not poll the broker every second.

    This default polls: it answers "now" once a second. Brokers that can announce new scheduled tasks
    (Redis pub/sub) return a watcher that waits silently until an announcement arrives.
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._next = time.monotonic()

    def wait(self, timeout: float) -> float | None:
        """Wait up to ``timeout`` seconds; return the unix time a newly scheduled task falls due, or None."""
        remaining = self._next - time.monotonic()
        if remaining > timeout:
            time.sleep(max(0.0, timeout))
            return None
        time.sleep(max(0.0, remaining))
        self._next = time.monotonic() + self.interval
        return time.time()

    def close(self) -> None:
        """Release the watcher's connection."""


class Broker(abc.ABC):
    """Stores one queue's tasks and the tasks its workers hold.

    :param name: the queue name.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    # -- producers -------------------------------------------------------------------------------
    @abc.abstractmethod
    def enqueue(self, tasks: Sequence[bytes]) -> None:
        """Append tasks to the queue, atomically for each batch, in as few round trips as possible."""

    @abc.abstractmethod
    def schedule(self, tasks: Sequence[bytes], due: float) -> None:
        """Keep tasks aside until unix time ``due``, then make them available (see :meth:`promote_due`)."""

    # -- workers ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def dequeue(self, worker_id: str, timeout: float) -> bytes | None:
        """Take the next task for ``worker_id``, waiting up to ``timeout`` seconds; None if none came.

        The task stays recorded as held by ``worker_id`` until released, so it can be recovered if the
        worker dies. A slot that already holds a task gets that same task back (a lost reply).
        """

    def wake(self, worker_ids: Iterable[str]) -> None:  # noqa: B027 - optional
        """Interrupt ``dequeue`` calls blocked for these ids (they return None), so that idle slots notice
        a stop at once instead of after ``dequeue_timeout``. The default does nothing."""

    @abc.abstractmethod
    def release(self, worker_id: str, take_next: bool = False) -> bytes | None:
        """Forget the task ``worker_id`` holds. With ``take_next``, atomically take the next task if one
        is ready right now (never blocking) and return it, so a busy worker needs one round trip per task.
        """

    @abc.abstractmethod
    def held(self, worker_id: str) -> bytes | None:
        """The task ``worker_id`` holds, if any (used to resume after a connection error)."""

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
        if any(queue != self.name for queue in queues):
            raise NotImplementedError(f"{type(self).__name__} cannot serve several queues in one worker")

    @abc.abstractmethod
    def requeue(self, worker_id: str, task: bytes, delay: float = 0.0, front: bool = False) -> None:
        """Atomically release ``worker_id``'s task and put ``task`` back: after ``delay`` seconds, or at
        the front of the queue when ``front`` (a task handed back at shutdown)."""

    @abc.abstractmethod
    def dead_letter(self, worker_id: str | None, entry: bytes, keep: int = 10000) -> None:
        """Atomically release ``worker_id``'s task (if given) and store a dead-letter entry, keeping only
        the newest ``keep`` entries."""

    # -- liveness --------------------------------------------------------------------------------
    @abc.abstractmethod
    def claim_worker_id(self, worker_id: str, ttl: float) -> bool:
        """Mark ``worker_id`` alive for ``ttl`` seconds if no one holds that id; False if taken."""

    @abc.abstractmethod
    def keep_alive(self, worker_ids: Iterable[str], ttl: float) -> None:
        """Refresh the liveness of all ``worker_ids`` for ``ttl`` seconds, in one round trip."""

    @abc.abstractmethod
    def go_offline(self, worker_ids: Iterable[str]) -> None:
        """Mark ``worker_ids`` dead at once (a clean stop)."""

    # -- maintenance -----------------------------------------------------------------------------
    @abc.abstractmethod
    def requeue_lost(self, max_recoveries: int = 0, dead_keep: int = 10000) -> SweepReport:
        """Put back the tasks of dead workers and repair notifications.

        :param max_recoveries: when positive, a task recovered more often than this is dead-lettered
            with reason ``poison`` instead of being requeued again.
        :param dead_keep: how many dead letters to keep.
        """

    @abc.abstractmethod
    def promote_due(self, now: float | None = None) -> int:
        """Move scheduled tasks whose time has come into the queue; return how many moved."""

    def promote_and_peek(self, now: float | None = None) -> tuple[int, float | None]:
        """:meth:`promote_due`, plus the unix time the next scheduled task falls due (None: none, or
        unknown). Brokers that can answer both in one round trip override it."""
        return self.promote_due(now), None

    def watch_schedule(self) -> ScheduleWatcher:
        """A watcher announcing newly scheduled tasks (the default polls once a second)."""
        return ScheduleWatcher()

    # -- inspection ------------------------------------------------------------------------------
    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of tasks waiting in the queue (not counting scheduled or held ones)."""

    @abc.abstractmethod
    def info(self) -> QueueInfo:
        """A snapshot for monitoring."""

    @abc.abstractmethod
    def dead_letters(self, start: int = 0, stop: int = -1) -> list[bytes]:
        """Dead-letter entries, newest first, from index ``start`` to ``stop`` inclusive."""

    @abc.abstractmethod
    def remove_dead_letter(self, entry: bytes, requeue_task: bytes | None = None) -> bool:
        """Remove one dead-letter entry; with ``requeue_task``, atomically enqueue it. False if gone."""

    @abc.abstractmethod
    def purge_dead_letters(self) -> int:
        """Delete every dead-letter entry; return how many there were."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Delete every key of this queue (tests and ``delayed`` tooling)."""

    @classmethod
    def from_url(cls, url: str, name: str, shared: dict[str, object]) -> Broker:
        """Build the broker for queue ``name`` at ``url``.

        :param shared: a dict owned by the app, where brokers of the same class cache what queues can
            share (a connection pool per URL).
        """
        raise NotImplementedError(f"{cls.__name__} cannot be built from a URL")

    #: the asyncio twin used by ``app.async_queue``, if this broker has one
    async_broker: type[AsyncBroker] | None = None

    def close(self) -> None:  # noqa: B027 - optional hook, most brokers share a pool
        """Release connections. The default does nothing."""


class AsyncBroker(abc.ABC):
    """The producer half of a broker for asyncio code: enqueue, schedule, length."""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str, name: str, shared: dict[str, object]) -> AsyncBroker:
        """Build the async broker for queue ``name`` at ``url``."""

    @abc.abstractmethod
    async def enqueue(self, tasks: Sequence[bytes]) -> None:
        """Append tasks atomically, in one round trip."""

    @abc.abstractmethod
    async def schedule(self, tasks: Sequence[bytes], due: float) -> None:
        """Keep tasks aside until unix time ``due``."""

    @abc.abstractmethod
    async def length(self) -> int:
        """Number of tasks waiting in the queue."""

    async def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""
