"""ClusterBroker: the Redis broker in the cluster key layout (``redis+cluster://`` URLs).

Everything of one queue is in one hash slot, so each one-queue script runs unchanged on the node of that
slot. What differs is what spans queues, since no command may touch two slots:

- an idle slot waits with one BLPOP per queue, each on its own helper thread (cluster_wait.py);
- a busy slot of a worker serving several queues first asks which queues ahead of its task's queue have
  work (one LLEN each, pipelined: 1 round trip), then releases its task and takes the next one from its
  own queue in one script call if none does, or from the first that does (the take script), instead of
  one release_take_first over all queues: 1 round trip per task while the first queue has work, 2 for
  a lower queue, 3 when the released queue runs dry (a worker of one queue keeps 1 round trip per task);
- a prefetching slot (``--prefetch K``) batches in one call per queue's slot only: a worker of several
  queues prefetches through the one-task calls (delayed_core/interfaces/batches.py, default_batch);
- task handles: a record is in its queue's slot (``{N}_task:<id>``), so a tracker serves one queue
  (cluster_tracking.py), and a tracked release is this release with the record write composed in.

A worker of one queue in this layout keeps the round trips of go-delayed's layout: 1 per busy task, 2
per idle take. The commands go through the cluster client (one pooled connection per node and thread in
use) rather than the per-thread connection of direct.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import redis

from delayed_core import crashpoints

from . import scripts
from .broker import RedisBroker
from .cluster import node_clients
from .cluster_expiry import ClusterExpiryWatcher, NodeExpiryWatcher
from .cluster_tracking import ClusterTracker
from .cluster_wait import ClusterWaits
from .connection import UNAVAILABLE, is_cluster_client, unavailable_as_broker_error
from .keys import CLUSTER, QueueKeys
from .monitoring import this_minute
from .scripts import Script


@lru_cache(maxsize=256)
def keys_of(queue: str) -> QueueKeys:
    """A queue's keys in the cluster layout, built once."""
    return QueueKeys.for_queue(queue, CLUSTER)


class ClusterBroker(RedisBroker):
    """:class:`RedisBroker` on a Redis Cluster (see the module docstring)."""

    tracker_class = ClusterTracker  # type: ignore[assignment]  # (it takes a ClusterBroker)
    batch_spans_queues = False  # a --prefetch batch is one script call, in one queue's slot (batches.py)
    client: Any  # a redis.cluster.RedisCluster (ClusterClient)

    def __init__(self, name: str, client: Any, direct: bool = False, layout: str = CLUSTER) -> None:
        # On one plain Redis (key_layout = "cluster" with a redis:// URL) the hot path keeps its per-thread
        # connection; a cluster client routes each command itself.
        super().__init__(name, client, direct=not is_cluster_client(client), layout=CLUSTER)
        self._waits = ClusterWaits(client)

    # -- taking tasks ---------------------------------------------------------------------------
    def dequeue(self, worker_id: str, timeout: float) -> bytes | None:
        """Wait on the queue's notifications (cluster_wait.py), then the dequeue script: 2 round trips."""
        found = self.dequeue_first(worker_id, (self.name,), timeout)
        return None if found is None else found[1]

    def dequeue_first(self, worker_id: str, queues: Sequence[str], timeout: float) -> tuple[str, bytes] | None:
        """Wait on every queue's notifications at once, one BLPOP each; take the task of the queue that
        gave one, unless a queue ahead of it has a task ready by now (then that one, and the notification
        goes back)."""
        with unavailable_as_broker_error():
            index = self._waits.for_slot(worker_id).wait([keys_of(q).notifications for q in queues], timeout)
            if index is None:
                return None
            crashpoints.reached("after_blpop")
            ahead = self._take_first(worker_id, self._with_work(queues[:index]))
            if ahead is not None:
                self.client.execute_command("RPUSH", keys_of(queues[index]).notifications, "1")
                return ahead
            k = keys_of(queues[index])
            task = scripts.DEQUEUE(self._call, (k.queue, k.notifications, k.processing), (worker_id,))
        return None if task is None else (queues[index], task)

    def _with_work(self, queues: Sequence[str]) -> Sequence[str]:
        """Those of ``queues`` with a notification waiting, in their order: one LLEN each, pipelined (one
        round trip, the nodes answering in parallel), so that the take script runs only where it may
        find a task. All of them when a node does not answer (the take script passes over those)."""
        if not queues:
            return queues
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for name in queues:
                    pipe.llen(keys_of(name).notifications)
                lengths = pipe.execute()
        except (*UNAVAILABLE, redis.exceptions.ClusterDownError):
            return queues
        return [name for name, length in zip(queues, lengths, strict=True) if int(length) > 0]

    def _take_first(self, worker_id: str, queues: Sequence[str]) -> tuple[str, bytes] | None:
        """The take script on each queue in turn until one gives a task. A queue whose node does not
        answer is passed over: its tasks stay in its list, and the slot's idle wait on that queue reports
        the outage (one line per outage, cluster_wait.py) and finds the queue again when it is back."""
        for name in queues:
            k = keys_of(name)
            try:
                task = scripts.TAKE(self._call, (k.queue, k.notifications, k.processing), (worker_id,))
            except (*UNAVAILABLE, redis.exceptions.ClusterDownError):
                continue
            if task is not None:
                return name, task
        return None

    def release(self, worker_id: str, take_next: bool = False) -> bytes | None:
        """The release_take script on this queue: 1 round trip."""
        found = self.release_and_take_first(worker_id, self.name, (self.name,), take_next)
        return None if found is None else found[1]

    def release_and_take_first(self, worker_id: str, queue: str, queues: Sequence[str],
                               take_next: bool) -> tuple[str, bytes] | None:
        """Release in ``queue``, taking its next task in the same call unless a queue ahead of it has work;
        otherwise take from the first queue with work (see the module docstring)."""
        return self.release_then_take(worker_id, queue, queues, take_next, scripts.RELEASE_TAKE, (), ())

    def release_then_take(self, worker_id: str, queue: str, queues: Sequence[str], take_next: bool,
                          release: Script, keys_tail: tuple[str, ...], args_tail: tuple[Any, ...]
                          ) -> tuple[str, bytes] | None:
        """:meth:`release_and_take_first` with ``release``, the release_take script or one composed around
        it (a tracked task's record write, whose keys and arguments go at the end)."""
        k = keys_of(queue)
        position = list(queues).index(queue) if queue in queues else len(queues)
        with unavailable_as_broker_error():
            busy_ahead = self._with_work(queues[:position]) if take_next else ()
            task = release(self._call, (k.queue, k.notifications, k.processing, k.recoveries, k.throughput,
                                        *keys_tail),
                           (worker_id, "1" if take_next and not busy_ahead else "0", this_minute(), *args_tail))
            if task is not None:
                return queue, task
            if not take_next:
                return None
            return self._take_first(worker_id, busy_ahead or self._with_work(queues[position + 1:]))

    def held_in(self, worker_id: str, queues: Sequence[str]) -> tuple[str, bytes] | None:
        """HGET the slot's entry in every queue's processing hash (pipelined, per node)."""
        with unavailable_as_broker_error(), self.client.pipeline(transaction=False) as pipe:
            for name in queues:
                pipe.hget(keys_of(name).processing, worker_id)
            found = pipe.execute()
        return next(((name, raw) for name, raw in zip(queues, found, strict=True) if raw is not None), None)

    def wake(self, worker_ids: Iterable[str]) -> None:
        """End the waits of these slots at once (their helpers' BLPOPs are ended as cluster_wait.py says)."""
        self._waits.wake(list(worker_ids))

    def go_offline(self, worker_ids: Iterable[str]) -> None:
        """As in go-delayed's layout, and drop the slots' waits."""
        ids = list(worker_ids)
        super().go_offline(ids)
        self._waits.forget(ids)

    # -- admin -----------------------------------------------------------------------------------
    def discover_queues(self) -> list[str]:
        """Queue names found by SCAN on every primary node (``{N}_noti``, ``{N}_processing``...)."""
        names = set()
        nodes = node_clients(self.client) if is_cluster_client(self.client) else [("", self.client)]
        with unavailable_as_broker_error():
            for _, node in nodes:
                for suffix in ("_noti", "_processing", "_dead", "_scheduled"):
                    for key in node.scan_iter(match=f"{{*}}{suffix}", count=1000):
                        text = key.decode(errors="replace")
                        names.add(text[1:text.index("}")])
        return sorted(names)

    def watch_lost_workers(self, enable: bool = True) -> Any:
        """Keyspace expiry events of every primary (cluster_expiry.py), or of the one Redis."""
        if is_cluster_client(self.client):
            return ClusterExpiryWatcher(self.client, enable)
        return NodeExpiryWatcher(self.client, enable)

    def close(self) -> None:
        """Disconnect every node's pool, or the one Redis's (they reconnect on next use)."""
        self._waits.forget_all()
        if is_cluster_client(self.client):
            self.client.disconnect_connection_pools()
        else:
            super().close()
