"""pydelayed with its features on, as a user runs it: a function decorated with ``@app.task(retry=3)``
and enqueued with ``.delay()``. Every task is then tracked (``result_ttl`` > 0, the default for
``@app.task``: an id, a record, a handle, the result kept) and may be retried up to 3 times. The rows of
:mod:`.pydelayed_peer` (plain ``PyTask`` enqueues: untracked, no retries) are the features-off figures.

Only what the project compares with the peers is measured: single enqueue and the 1-slot drain.
``python -m bench.peers.pydelayed_features_peer EXECUTOR SLOTS`` runs one worker on the task below.
"""

from __future__ import annotations

import sys
from importlib.metadata import version as dist_version

from .base import Drain, Peer
from .pydelayed_peer import QUEUE, make_app, pending, run_worker

#: this module's import name, also when it runs as ``-m``
MODULE = "bench.peers.pydelayed_features_peer"


def noop() -> None:
    """The task: does nothing (its ``None`` result is stored like any other)."""


class PydelayedFeaturesPeer(Peer):
    """``@app.task(retry=3)`` and ``.delay()``: tracking and retries on."""

    name = "pydelayed-features"
    drains = (Drain("thread, 1 slot", "thread:1"),)

    def __init__(self) -> None:
        super().__init__()
        self.app = make_app(MODULE)
        self.queue = self.app.queue(QUEUE)
        self.task = self.app.task(retry=3, name=f"{MODULE}:noop")(noop)

    def version(self) -> str:
        """pydelayed's distribution version."""
        return dist_version("pydelayed")

    def enqueue(self, n: int) -> None:
        """``noop.delay()`` ``n`` times: each call makes the task's id and record and returns its handle."""
        delay = self.task.delay
        for _ in range(n):
            delay()

    def pending(self) -> int:
        """Length of the queue plus entries of its processing hash."""
        return pending(self.client, self.queue)

    def worker_argv(self, variant: str) -> list[str]:
        """``python -m bench.peers.pydelayed_features_peer EXECUTOR SLOTS``."""
        executor, slots = variant.split(":")
        return [self.python(), "-m", MODULE, executor, slots]


PEER = PydelayedFeaturesPeer


if __name__ == "__main__":
    run_worker(MODULE, sys.argv[1:])
