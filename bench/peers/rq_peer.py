"""rq: ``Queue.enqueue``, ``Queue.enqueue_many``, and its forking ``Worker`` and in-process ``SimpleWorker``."""

from __future__ import annotations

from pathlib import Path

import rq
from rq import Queue

from .base import Drain, Peer

QUEUE = "bench"


def noop() -> None:
    """The no-op task."""


class RqPeer(Peer):
    """rq with default settings (results kept for its default TTL, as a user would get)."""

    name = "rq"
    batches = (1000, 10000)
    drains = (
        Drain("forking Worker", "rq.worker.Worker", n=(300, 100), versus="fork"),
        Drain("SimpleWorker", "rq.worker.SimpleWorker", n=(3000, 300), versus="thread, 1 slot"),
    )

    def __init__(self) -> None:
        super().__init__()
        self.queue = Queue(QUEUE, connection=self.client)

    def version(self) -> str:
        """rq's version."""
        return rq.__version__

    def enqueue(self, n: int) -> None:
        """``queue.enqueue(noop)`` ``n`` times."""
        for _ in range(n):
            self.queue.enqueue(noop)

    def enqueue_many(self, n: int, batch: int) -> None:
        """``queue.enqueue_many`` of ``prepare_data`` lists."""
        for first in range(0, n, batch):
            self.queue.enqueue_many([Queue.prepare_data(noop) for _ in range(min(batch, n - first))])

    def pending(self) -> int:
        """Queued jobs plus jobs in the started registry."""
        return self.queue.count + self.queue.started_job_registry.count

    def worker_argv(self, variant: str) -> list[str]:
        """``rq worker --url URL -w CLASS bench``."""
        rq_script = str(Path(self.python()).with_name("rq"))
        return [rq_script, "worker", "--url", self.url, "-w", variant, "--quiet", QUEUE]


PEER = RqPeer
