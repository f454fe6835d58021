"""celery: redis broker, ``task.delay()``, drained by a prefork worker with one child (``-c 1``)."""

from __future__ import annotations

import celery
from celery import Celery

from .base import Drain, Peer, redis_url

app = Celery("bench", broker=redis_url())
app.conf.task_ignore_result = True  # no result backend: nothing reads results
app.conf.broker_connection_retry_on_startup = True


@app.task
def noop() -> None:
    """The no-op task."""


class CeleryPeer(Peer):
    """celery with its defaults otherwise (prefetch multiplier 4, early ack)."""

    name = "celery"
    drains = (Drain("prefork -c 1", "prefork:1", n=(3000, 200), versus="subprocess"),)

    def version(self) -> str:
        """celery's version."""
        return celery.__version__

    def enqueue(self, n: int) -> None:
        """``noop.delay()`` ``n`` times."""
        for _ in range(n):
            noop.delay()

    def pending(self) -> int:
        """The ``celery`` list plus kombu's ``unacked`` hash (prefetched, not yet acked messages)."""
        with self.client.pipeline(transaction=False) as pipe:
            queued, unacked = pipe.llen("celery").hlen("unacked").execute()
        return int(queued) + int(unacked)

    def worker_argv(self, variant: str) -> list[str]:
        """``celery -A bench.peers.celery_peer worker -P prefork -c 1`` without gossip, mingle, heartbeat."""
        pool, concurrency = variant.split(":")
        return [self.python(), "-m", "celery", "-A", __name__, "worker", "-P", pool, "-c", concurrency,
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"]


PEER = CeleryPeer
