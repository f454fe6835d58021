"""An in-process broker (``memory://``): the same semantics as the Redis broker, held in Python lists.

It exists for ``delayed demo`` (which must run with no Redis installed) and for fast unit tests of the
worker. It is not shared between processes and keeps nothing after exit: never use it in production.
Queues with the same name in one process share state, like keys on one Redis.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from delayed_core import hookimpl
from delayed_core.interfaces import Broker, Poisoned, QueueInfo, SweepReport
from delayed_core.registry import ComponentRegistry

from .memory_batches import MemoryBatches
from .memory_flow import MemoryFlowControl
from .memory_periodic import MemoryPeriodicStore
from .memory_tracking import MemoryTracker


@dataclass
class _QueueState:
    tasks: deque[bytes] = field(default_factory=deque)
    notifications: int = 0
    processing: dict[str, bytes] = field(default_factory=dict)
    scheduled: list[tuple[float, int, bytes]] = field(default_factory=list)
    dead: deque[bytes] = field(default_factory=deque)
    recoveries: dict[bytes, int] = field(default_factory=dict)
    poison: list[Poisoned] = field(default_factory=list)  # set aside by a sweep until buried
    max_length: int | None = None  # the bound of the last bounded enqueue, for info()


class _Store:
    """Everything one memory:// URL holds: queues plus worker liveness deadlines."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.queues: dict[str, _QueueState] = {}
        self.alive_until: dict[str, float] = {}
        self.woken: set[str] = set()
        self.order = itertools.count()
        self.rate_free: dict[str, float] = {}  # rate limit -> next free start time (see memory_flow.py)
        self.rate_reserved: dict[tuple[str, bytes], int] = {}  # (limit, sha1 of task) -> reserved starts
        self.periodic: dict[str, dict[str, str]] = {}  # periodic schedule -> its record
        self.records: dict[str, dict[str, Any]] = {}  # tracked tasks' records (memory_tracking.py)
        self.cancels: list[tuple[str, str, str]] = []  # (queue, slot id, task id) stop requests

    def queue(self, name: str) -> _QueueState:
        return self.queues.setdefault(name, _QueueState())

    def alive(self, worker_id: str) -> bool:
        return self.alive_until.get(worker_id, 0.0) > time.monotonic()


class MemoryBroker(MemoryFlowControl, MemoryPeriodicStore, MemoryBatches, Broker):
    """One queue in process memory."""

    process_local = True
    tracker_class = MemoryTracker

    def __init__(self, name: str, store: _Store | None = None) -> None:
        super().__init__(name)
        self.store = store or _Store()

    @classmethod
    def from_url(cls, url: str, name: str, shared: dict[str, object]) -> MemoryBroker:
        """Queues of one app built from the same memory:// URL share a store."""
        store = shared.setdefault(f"memory-store:{url}", _Store())
        assert isinstance(store, _Store)
        return cls(name, store)

    @property
    def _state(self) -> _QueueState:
        return self.store.queue(self.name)

    def _push(self, state: _QueueState, tasks: Iterable[bytes], front: bool = False) -> None:
        for task in tasks:
            if front:
                state.tasks.appendleft(task)
            else:
                state.tasks.append(task)
            state.notifications += 1
        self.store.cond.notify_all()

    def enqueue(self, tasks: Sequence[bytes]) -> None:
        with self.store.cond:
            self._push(self._state, tasks)

    def schedule(self, tasks: Sequence[bytes], due: float) -> None:
        with self.store.cond:
            for task in tasks:
                bisect.insort(self._state.scheduled, (due, next(self.store.order), task))

    def _take(self, state: _QueueState, worker_id: str) -> bytes | None:
        if state.notifications <= 0:
            return None
        state.notifications -= 1
        if not state.tasks:
            return None
        task = state.processing[worker_id] = state.tasks.popleft()
        return task

    def dequeue(self, worker_id: str, timeout: float) -> bytes | None:
        taken = self.dequeue_first(worker_id, (self.name,), timeout)
        return None if taken is None else taken[1]

    def wake(self, worker_ids: Iterable[str]) -> None:
        with self.store.cond:
            self.store.woken.update(worker_ids)
            self.store.cond.notify_all()

    def release(self, worker_id: str, take_next: bool = False) -> bytes | None:
        taken = self.release_and_take_first(worker_id, self.name, (self.name,), take_next)
        return None if taken is None else taken[1]

    @staticmethod
    def _forget(state: _QueueState, worker_id: str) -> None:
        """Release ``worker_id``'s task; it ran to the end, so its poison count goes too."""
        done = state.processing.pop(worker_id, None)
        if done is not None:
            state.recoveries.pop(done, None)

    # -- several queues, highest priority first ---------------------------------------------------
    serves_several_queues = True

    def _held_in(self, worker_id: str, queues: Sequence[str]) -> tuple[str, bytes] | None:
        for name in queues:
            held = self.store.queue(name).processing.get(worker_id)
            if held is not None:
                return name, held
        return None

    def _take_first(self, worker_id: str, queues: Sequence[str]) -> tuple[str, bytes] | None:
        for name in queues:
            state = self.store.queue(name)
            if state.notifications > 0:
                task = self._take(state, worker_id)
                if task is not None:
                    return name, task
        return None

    def dequeue_first(self, worker_id: str, queues: Sequence[str], timeout: float) -> tuple[str, bytes] | None:
        deadline = time.monotonic() + timeout
        with self.store.cond:
            held = self._held_in(worker_id, queues)
            if held is not None:
                return held
            while all(self.store.queue(name).notifications <= 0 for name in queues):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or worker_id in self.store.woken:
                    self.store.woken.discard(worker_id)
                    return None
                self.store.cond.wait(remaining)
            return self._take_first(worker_id, queues)

    def release_and_take_first(self, worker_id: str, queue: str, queues: Sequence[str],
                               take_next: bool) -> tuple[str, bytes] | None:
        with self.store.cond:
            self._forget(self.store.queue(queue), worker_id)
            return self._take_first(worker_id, queues) if take_next else None

    def held_in(self, worker_id: str, queues: Sequence[str]) -> tuple[str, bytes] | None:
        with self.store.cond:
            return self._held_in(worker_id, queues)

    def held(self, worker_id: str) -> bytes | None:
        taken = self.held_in(worker_id, (self.name,))
        return None if taken is None else taken[1]

    def requeue(self, worker_id: str, task: bytes, delay: float = 0.0, front: bool = False) -> None:
        with self.store.cond:
            state = self._state
            state.processing.pop(worker_id, None)
            if delay > 0:
                bisect.insort(state.scheduled, (time.time() + delay, next(self.store.order), task))
            else:
                self._push(state, (task,), front=front)

    def dead_letter(self, worker_id: str | None, entry: bytes, keep: int = 10000) -> None:
        with self.store.cond:
            state = self._state
            if worker_id:
                state.processing.pop(worker_id, None)
            state.dead.appendleft(entry)
            while len(state.dead) > keep:
                state.dead.pop()

    def claim_worker_id(self, worker_id: str, ttl: float) -> bool:
        with self.store.cond:
            if self.store.alive(worker_id):
                return False
            self.store.alive_until[worker_id] = time.monotonic() + ttl
            return True

    def keep_alive(self, worker_ids: Iterable[str], ttl: float) -> None:
        with self.store.cond:
            for worker_id in worker_ids:
                self.store.alive_until[worker_id] = time.monotonic() + ttl

    def go_offline(self, worker_ids: Iterable[str]) -> None:
        with self.store.cond:
            for worker_id in worker_ids:
                self.store.alive_until.pop(worker_id, None)

    def sweep(self, max_recoveries: int = 0) -> SweepReport:
        with self.store.cond:
            state = self._state
            requeued = poisoned = 0
            for worker_id, task in list(state.processing.items()):
                if self.store.alive(worker_id):
                    continue
                del state.processing[worker_id]
                count = state.recoveries[task] = state.recoveries.get(task, 0) + 1
                if max_recoveries and count > max_recoveries:
                    del state.recoveries[task]
                    state.poison.append(Poisoned(task, worker_id, count))
                    poisoned += 1
                else:
                    state.tasks.append(task)
                    requeued += 1
            missing = len(state.tasks) - state.notifications
            state.notifications = len(state.tasks)
            if missing > 0:
                self.store.cond.notify_all()
            return SweepReport(self.name, requeued, poisoned, extra={"notifications": missing},
                               poison=tuple(state.poison))

    def bury(self, poisoned: Poisoned, entry: bytes, keep: int = 10000) -> bool:
        with self.store.cond:
            state = self._state
            if poisoned not in state.poison:
                return False
            state.poison.remove(poisoned)
            self.dead_letter(None, entry, keep)
            return True

    def promote_and_peek(self, now: float | None = None) -> tuple[int, float | None]:
        now = time.time() if now is None else now
        with self.store.cond:
            state = self._state
            count = bisect.bisect_right(state.scheduled, (now, float("inf"), b""))
            due, state.scheduled[:count] = state.scheduled[:count], []
            self._push(state, (task for _, _, task in due))
            return count, state.scheduled[0][0] if state.scheduled else None

    def __len__(self) -> int:
        with self.store.cond:
            return len(self._state.tasks)

    def info(self) -> QueueInfo:
        with self.store.cond:
            state = self._state
            held = {wid: (task, self.store.alive(wid)) for wid, task in state.processing.items()}
            live = [wid for wid in self.store.alive_until if self.store.alive(wid)]
            return QueueInfo(self.name, len(state.tasks), len(state.scheduled), len(state.dead), held, live,
                             extra={"notifications": state.notifications}, max_length=state.max_length)

    def discover_queues(self) -> list[str]:
        with self.store.cond:
            return sorted(self.store.queues)

    def dead_letters(self, start: int = 0, stop: int = -1) -> list[bytes]:
        with self.store.cond:
            entries = list(self._state.dead)
            return entries[start:] if stop == -1 else entries[start:stop + 1]

    def remove_dead_letter(self, entry: bytes, requeue_task: bytes | None = None) -> bool:
        with self.store.cond:
            state = self._state
            try:
                state.dead.remove(entry)
            except ValueError:
                return False
            if requeue_task:
                self._push(state, (requeue_task,))
            return True

    def purge_dead_letters(self) -> int:
        with self.store.cond:
            count = len(self._state.dead)
            self._state.dead.clear()
            return count

    def clear(self) -> None:
        with self.store.cond:
            self.store.queues.pop(self.name, None)


@hookimpl
def delayed_register_components(registry: ComponentRegistry) -> None:
    """Register the in-process broker as ``memory``, picked by ``memory://`` URLs."""
    registry.add_broker("memory", MemoryBroker, schemes=("memory",))
