"""The interface every benchmarked queue implements, and the measurements written once on top of it.

A peer module defines its no-op task at module level (so its workers can import it), one :class:`Peer`
subclass, and ``PEER = ThatClass``. Measurements run inside ``bench/measure.py`` under the peer's own
interpreter; only plain numbers cross back to ``run.py``.
"""

from __future__ import annotations

import os
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import redis

from bench import harness

#: environment variable through which workers and task modules find the benchmark's redis-server
URL_VARIABLE = "BENCH_REDIS_URL"
#: how long one drain may take before the run is declared stuck
DRAIN_TIMEOUT = 300.0


def redis_url() -> str:
    """The benchmark server's URL (set by ``run.py`` for every process it starts)."""
    return os.environ.get(URL_VARIABLE, "redis://127.0.0.1:6399/0")


@dataclass(frozen=True)
class Drain:
    """One way to drain a queue: which workers, and how many tasks make a fair sample.

    :param label: shown in the results table.
    :param variant: handed to :meth:`Peer.worker_argv`.
    :param processes: worker processes started side by side.
    :param n: tasks pre-filled (full run, quick run); slow workers get fewer so a run stays short,
        but always enough that start-up is a small part of the time.
    :param versus: label of the pydelayed drain this one is compared with in the ratios.
    """

    label: str
    variant: str
    processes: int = 1
    n: tuple[int, int] = (20000, 500)
    versus: str = ""


@dataclass
class Result:
    """One measurement: the headline ``value`` plus whatever helps to read it."""

    value: float
    extra: dict[str, Any] = field(default_factory=dict)


class Peer(ABC):
    """A task queue under test, talking to the benchmark's redis-server."""

    name: str = ""
    #: enqueue_many batch sizes supported (empty: the library has no batch API)
    batches: tuple[int, ...] = ()
    drains: tuple[Drain, ...] = ()

    def __init__(self) -> None:
        self.url = redis_url()
        self.client = redis.Redis.from_url(self.url)

    # -- what a peer implements ------------------------------------------------------------------
    @abstractmethod
    def version(self) -> str:
        """The library's version string."""

    @abstractmethod
    def enqueue(self, n: int) -> None:
        """Enqueue ``n`` no-op tasks, one library call each."""

    def enqueue_many(self, n: int, batch: int) -> None:
        """Enqueue ``n`` no-op tasks in calls of ``batch`` tasks (only when :attr:`batches` is set)."""
        raise NotImplementedError

    @abstractmethod
    def pending(self) -> int:
        """Tasks not finished yet: queued plus held by a worker."""

    @abstractmethod
    def worker_argv(self, variant: str) -> list[str]:
        """Command line of one worker process for drain ``variant``."""

    # -- shared helpers ----------------------------------------------------------------------------
    def fill(self, n: int) -> None:
        """Pre-fill ``n`` tasks the fastest way the library offers."""
        if self.batches:
            self.enqueue_many(n, max(self.batches))
        else:
            self.enqueue(n)

    def python(self) -> str:
        """The interpreter workers run under: the one running this measurement."""
        return sys.executable

    def start_workers(self, variant: str, processes: int) -> list[Any]:
        """Start ``processes`` workers of ``variant`` (pinned like this process, by inheritance)."""
        env = {**os.environ, URL_VARIABLE: self.url, "PYTHONPATH": str(harness.ROOT)}
        return harness.start_processes([self.worker_argv(variant)] * processes, env)

    def wait_drained(self, workers: list[Any], timeout: float = DRAIN_TIMEOUT) -> float:
        """Poll until nothing is pending; fail early when a worker died. Returns the perf_counter time."""

        def drained() -> bool:
            harness.check_alive(workers)
            return self.pending() == 0

        return harness.wait_until(drained, timeout)

    def warm_up(self, variant: str) -> list[Any]:
        """Start one worker and return once it has run a first task (it is then idle and blocked)."""
        workers = self.start_workers(variant, 1)
        try:
            self.enqueue(1)
            self.wait_drained(workers, 60.0)
        except BaseException:
            harness.stop_processes(workers)
            raise
        return workers

    # -- the measurements ----------------------------------------------------------------------------
    def measure_enqueue(self, n: int) -> Result:
        """Single enqueue calls per second, and Redis commands per call."""
        before = harness.command_calls(self.client)
        started = time.perf_counter()
        self.enqueue(n)
        elapsed = time.perf_counter() - started
        return Result(n / elapsed, {"commands_per_task": self._per_task(before, n)})

    def measure_enqueue_many(self, n: int, batch: int) -> Result:
        """Tasks per second enqueued in batches of ``batch``."""
        before = harness.command_calls(self.client)
        started = time.perf_counter()
        self.enqueue_many(n, batch)
        elapsed = time.perf_counter() - started
        return Result(n / elapsed, {"commands_per_batch": self._per_task(before, n // batch)})

    def measure_drain(self, drain: Drain, n: int) -> Result:
        """Pre-fill ``n`` tasks, start the workers, time until all are done. Nothing is subtracted."""
        self.fill(n)
        before = harness.command_calls(self.client)
        started = time.perf_counter()
        workers = self.start_workers(drain.variant, drain.processes)
        try:
            finished = self.wait_drained(workers)
        finally:
            harness.stop_processes(workers)
        return Result(n / (finished - started), {"commands_per_task": self._per_task(before, n)})

    def _per_task(self, before: dict[str, int], n: int) -> dict[str, float]:
        delta = harness.calls_delta(before, harness.command_calls(self.client))
        return {name: round(count / max(n, 1), 3) for name, count in delta.items()}
