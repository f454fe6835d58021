"""dramatiq: ``RedisBroker``, ``actor.send()``, drained by one worker process with 8 threads."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from .base import Drain, Peer, redis_url

broker = RedisBroker(url=redis_url())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench")
def noop() -> None:
    """The no-op task."""


class DramatiqPeer(Peer):
    """dramatiq with its default middleware."""

    name = "dramatiq"
    drains = (Drain("worker, 1 process, 8 threads", "1:8", n=(10000, 300), versus="thread, 4 slots"),)

    def version(self) -> str:
        """dramatiq's version."""
        return dramatiq.__version__

    def enqueue(self, n: int) -> None:
        """``noop.send()`` ``n`` times."""
        for _ in range(n):
            noop.send()

    def pending(self) -> int:
        """Messages not acked yet: dramatiq deletes a message's body from ``.msgs`` when it is acked."""
        return int(self.client.hlen("dramatiq:bench.msgs"))

    def worker_argv(self, variant: str) -> list[str]:
        """``dramatiq bench.peers.dramatiq_peer -p 1 -t 8``."""
        processes, threads = variant.split(":")
        return [self.python(), "-m", "dramatiq", __name__, "-p", processes, "-t", threads]


PEER = DramatiqPeer
