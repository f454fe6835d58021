"""pydelayed itself: enqueue, enqueue_many, drains per executor, latency, worker memory and idle cost.

``python -m bench.peers.pydelayed_peer EXECUTOR SLOTS`` runs one worker on the no-op tasks below.
"""

from __future__ import annotations

import sys
import time
from importlib.metadata import version as dist_version

import redis

from bench import harness
from delayed_core import Delayed, PyTask

from . import base
from .base import Drain, Peer, Result

QUEUE = "bench"
#: this module's import name, also when it runs as ``-m`` (then ``__name__`` is ``__main__``)
MODULE = "bench.peers.pydelayed_peer"
LATENCY_KEY = "bench:latency"
_clients: dict[str, redis.Redis] = {}


def noop() -> None:
    """The task of every throughput figure: does nothing."""


def record_start() -> None:
    """The latency task: sends its start time back to the producer, which BLPOPs it."""
    started = time.time()
    client = _clients.get("latency") or _clients.setdefault("latency", redis.Redis.from_url(base.redis_url()))
    client.rpush(LATENCY_KEY, repr(started))


def make_app(module: str = MODULE, **settings: object) -> Delayed:
    """An app on the benchmark server whose workers may run the tasks of ``module`` (this one's)."""
    return Delayed(base.redis_url(), imports=[module], queue=QUEUE, **settings)


def pending(client: redis.Redis, queue: object) -> int:
    """Length of the queue plus entries of its processing hash (one pipelined round trip)."""
    keys = queue.broker.keys  # type: ignore[attr-defined]
    with client.pipeline(transaction=False) as pipe:
        length, held = pipe.llen(keys.queue).hlen(keys.processing).execute()
    return int(length) + int(held)


def run_worker(module: str, argv: list[str]) -> None:
    """Run a worker for the tasks of ``module``: ``EXECUTOR SLOTS [PREFETCH]``."""
    executor, slots = argv[0], int(argv[1])
    prefetch = int(argv[2]) if len(argv) > 2 else 1
    app = make_app(module, executor=executor, slots=slots, prefetch=prefetch, log_level="WARNING")
    app.worker(QUEUE).run()


class PydelayedPeer(Peer):
    """pydelayed through its public API (``Queue.enqueue`` / ``enqueue_many``)."""

    name = "pydelayed"
    batches = (1000, 10000)
    drains = (
        Drain("thread, 1 slot", "thread:1"),
        Drain("thread, 4 slots", "thread:4"),
        Drain("fork", "fork:1", n=(3000, 200)),
        Drain("subprocess", "subprocess:1", n=(10000, 300)),
        Drain("2 processes, thread, 1 slot each", "thread:1", processes=2),
    )

    def __init__(self) -> None:
        super().__init__()
        self.app = make_app()
        self.queue = self.app.queue(QUEUE)
        self.task = PyTask(noop)

    def version(self) -> str:
        """pydelayed's distribution version."""
        return dist_version("pydelayed")

    def executors(self) -> list[str]:
        """Executor names registered right now (fork and subprocess arrive as plugins)."""
        return self.app.registry.names("executor")

    def enqueue(self, n: int) -> None:
        """``queue.enqueue(PyTask(noop))`` ``n`` times: a fresh PyTask per call, as a producer writes it."""
        enqueue = self.queue.enqueue
        for _ in range(n):
            enqueue(PyTask(noop))

    def enqueue_many(self, n: int, batch: int) -> None:
        """``queue.enqueue_many`` with lists of ``batch`` PyTasks."""
        for first in range(0, n, batch):
            self.queue.enqueue_many([PyTask(noop) for _ in range(min(batch, n - first))])

    def pending(self) -> int:
        """Length of the queue plus entries of its processing hash."""
        return pending(self.client, self.queue)

    def worker_argv(self, variant: str) -> list[str]:
        """``python -m bench.peers.pydelayed_peer EXECUTOR SLOTS``."""
        executor, slots = variant.split(":")
        return [self.python(), "-m", MODULE, executor, slots]

    # -- pydelayed-only measurements ------------------------------------------------------------------
    def measure_latency(self, n: int) -> Result:
        """Enqueue-to-start latency of one task at a time on an idle worker blocked on BLPOP."""
        workers = self.warm_up("thread:1")
        samples: list[float] = []
        try:
            for _ in range(n):
                # Let the worker finish releasing the previous task and block on BLPOP again.
                _wait_idle(self)
                enqueued = time.time()
                self.queue.enqueue(PyTask(record_start))
                reply = self.client.blpop(LATENCY_KEY, 10)
                if reply is None:
                    raise TimeoutError("the latency task did not start within 10 s")
                samples.append(float(reply[1]) - enqueued)
        finally:
            harness.stop_processes(workers)
        samples.sort()
        p50, p99 = samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.99))]
        return Result(p50 * 1000, {"p99_ms": p99 * 1000, "max_ms": samples[-1] * 1000, "samples": n})

    def measure_rss(self) -> Result:
        """RSS (MiB) of an idle worker process (thread executor, 1 slot) after its first task."""
        workers = self.warm_up("thread:1")
        try:
            return Result(harness.rss_mib(workers[0].pid))
        finally:
            harness.stop_processes(workers)

    def measure_idle(self, slots: int, seconds: float) -> Result:
        """Redis round trips per second per slot of an idle worker.

        The headline counts what MONITOR shows coming from clients: ``INFO commandstats`` also counts the
        commands a Lua script runs inside Redis, which cost no round trip. Its per-command deltas are kept
        in ``executed`` for reference.
        """
        workers = self.warm_up(f"thread:{slots}")
        try:
            time.sleep(1.0)  # past the warm-up task's release and the first maintenance tick
            before = harness.command_calls(self.client)
            sent = harness.monitor_commands(self.url, seconds)
            executed = harness.calls_delta(before, harness.command_calls(self.client))
        finally:
            harness.stop_processes(workers)
        per_slot = {name: round(count / seconds / slots, 3) for name, count in sent.items()}
        return Result(sum(sent.values()) / seconds / slots, {
            "round_trips": per_slot,
            "executed": {name: round(count / seconds / slots, 3) for name, count in executed.items()},
        })

def _wait_idle(peer: PydelayedPeer) -> None:
    """Wait until the worker holds nothing, then give it a moment to get back into BLPOP."""
    harness.wait_until(lambda: peer.pending() == 0, 10.0, interval=0.0005)
    time.sleep(0.002)


PEER = PydelayedPeer


if __name__ == "__main__":
    run_worker(MODULE, sys.argv[1:])
