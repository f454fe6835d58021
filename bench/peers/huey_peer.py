"""huey: ``RedisHuey`` task calls, drained by ``huey_consumer`` with one worker thread."""

from __future__ import annotations

import huey as huey_package
from huey import RedisHuey

from .base import Drain, Peer, redis_url

#: the huey instance its consumer loads (``bench.peers.huey_peer.huey``); results off: nothing reads them
huey = RedisHuey("bench", url=redis_url(), results=False)


@huey.task()
def noop() -> None:
    """The no-op task."""


class HueyPeer(Peer):
    """huey has no batch enqueue, so the drain is pre-filled with single calls."""

    name = "huey"
    drains = (Drain("consumer, 1 thread", "thread:1", n=(5000, 300), versus="thread, 1 slot"),)

    def version(self) -> str:
        """huey's version."""
        return huey_package.__version__

    def enqueue(self, n: int) -> None:
        """``noop()`` (which enqueues) ``n`` times."""
        for _ in range(n):
            noop()

    def pending(self) -> int:
        """Queued tasks (huey keeps no record of a running task; a no-op's run time is negligible)."""
        return huey.pending_count()

    def worker_argv(self, variant: str) -> list[str]:
        """``huey_consumer bench.peers.huey_peer.huey -k thread -w 1``."""
        kind, workers = variant.split(":")
        return [self.python(), "-m", "huey.bin.huey_consumer", f"{__name__}.huey", "-k", kind, "-w", workers, "-q"]


PEER = HueyPeer
