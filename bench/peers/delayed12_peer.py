"""delayed 1.2 (the package pydelayed is wire-compatible with): ``Queue.enqueue`` and its ``Worker``.

``python -m bench.peers.delayed12_peer`` runs one delayed 1.2 worker on the benchmark queue.
"""

from __future__ import annotations

from importlib.metadata import version as dist_version

import redis
from delayed.queue import Queue
from delayed.task import PyTask
from delayed.worker import Worker

from .base import Drain, Peer, redis_url

QUEUE = "bench"


def noop() -> None:
    """The no-op task."""


def make_queue() -> Queue:
    """delayed 1.2's queue on the benchmark server."""
    return Queue(QUEUE, redis.Redis.from_url(redis_url()))


class Delayed12Peer(Peer):
    """delayed 1.2 runs tasks in the worker's own thread, three round trips per task."""

    name = "delayed12"
    drains = (Drain("worker", "worker", n=(10000, 300), versus="thread, 1 slot"),)

    def __init__(self) -> None:
        super().__init__()
        self.queue = make_queue()

    def version(self) -> str:
        """delayed's distribution version."""
        return dist_version("delayed")

    def enqueue(self, n: int) -> None:
        """``queue.enqueue(PyTask(noop))`` ``n`` times."""
        for _ in range(n):
            self.queue.enqueue(PyTask(noop))

    def pending(self) -> int:
        """Length of the queue plus entries of its processing hash (same layout as pydelayed's)."""
        with self.client.pipeline(transaction=False) as pipe:
            length, held = pipe.llen(QUEUE).hlen(f"{QUEUE}_processing").execute()
        return int(length) + int(held)

    def worker_argv(self, variant: str) -> list[str]:
        """``python -m bench.peers.delayed12_peer``."""
        return [self.python(), "-m", "bench.peers.delayed12_peer"]


PEER = Delayed12Peer

if __name__ == "__main__":
    Worker(make_queue()).run()
