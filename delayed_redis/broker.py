"""RedisBroker: go-delayed's queue protocol on Redis, one method per atomic operation.

The class is composed of one mixin per role of the Broker interface: ``producer.py``, ``consumer.py``
with ``several_queues.py``, ``liveness.py``, ``sweeper.py`` and ``admin.py``, plus the optional
monitoring role the dashboard reads (``monitoring.py``), and the optional roles FlowControl (bounded
queues, rate limits: ``flow.py``) and PeriodicStore (periodic tasks: ``periodic.py``). Key names come
from ``keys.py`` alone.

Round trips per operation (the hot paths):

- ``enqueue``: 1 (one EVALSHA, or one MULTI/EXEC pipeline for a batch);
- ``dequeue`` on an idle queue: BLPOP, then the dequeue script: 2;
- ``release(take_next=True)`` while busy: 1, and it returns the next task, so a busy slot spends one
  round trip per task;
- a worker serving several queues: the same counts (one BLPOP over every queue's ``N_noti``, one
  release-and-take script over every queue's keys);
- ``keep_alive``: 1 for all the slots of a process;
- a prefetching slot (``--prefetch K``, ``batches.py``): 1 call settles up to K tasks and takes up to K.

In the cluster layout (``redis+cluster://`` URLs, see cluster.py and keys.py) the same scripts run on
the node of the queue's slot, through the cluster client rather than a per-thread connection; a worker
of several queues waits on them as cluster_wait.py describes.

Every redis-py error leaves as a pydelayed error of one line (see ``errors.py``). Due times of scheduled
tasks follow the Redis server's clock; workers read announced ones with the offset seen at promotion.
"""

from __future__ import annotations

import redis
import redis.cluster

from delayed_core.interfaces import Broker

from .admin import RedisAdmin
from .async_broker import AsyncRedisBroker
from .batches import RedisBatches
from .connection import client_from_url, is_cluster_client
from .direct import DirectCaller
from .flow import RedisFlowControl
from .keys import CLUSTER, GO_DELAYED, QueueKeys, layout_for
from .liveness import RedisLiveness
from .monitoring import RedisMonitoring
from .periodic import RedisPeriodicStore
from .producer import RedisProducer
from .replicas import ReplicaWait
from .several_queues import SeveralQueues
from .sweeper import RedisSweeper
from .tracking import RedisTracker


class RedisBroker(RedisProducer, SeveralQueues, RedisBatches, RedisLiveness, RedisSweeper, RedisAdmin,
                  RedisMonitoring, RedisFlowControl, RedisPeriodicStore, Broker):
    """One queue on Redis. Brokers built by one app for one URL share a connection pool."""

    async_broker = AsyncRedisBroker
    #: task records for handles (delayed_core/handles.py)
    tracker_class = RedisTracker

    def __init__(self, name: str, client: redis.Redis, direct: bool = True, layout: str = GO_DELAYED) -> None:
        super().__init__(name)
        self.client = client
        clustered = is_cluster_client(client)
        # Hot paths go through a per-thread connection (see direct.py); the rest through the pool. A
        # cluster client picks the node per command, so it has no one connection to keep.
        self._call = DirectCaller(client.connection_pool) if direct and not clustered else client.execute_command
        # worker id -> Redis client id of the connection its slot blocks on, for wake()
        self._blocking_clients: dict[str, int] = {}
        self.keys = QueueKeys.for_queue(name, layout)
        # The server's clock minus ours, in seconds, as last seen by a promotion (see promote_and_peek).
        self.clock_offset = 0.0
        #: WAIT for this many replicas after an enqueue (off unless the wait_replicas setting asks)
        self.replica_wait = ReplicaWait()
        #: the URL it was built from (asyncio callers open their own clients from it), if any
        self.url: str | None = None

    @classmethod
    def from_url(cls, url: str, name: str, shared: dict[str, object]) -> RedisBroker:
        """Build the broker, reusing the client other queues of the same app opened for ``url``."""
        key = f"redis-client:{url}"
        client = shared.get(key)
        if client is None:
            client = shared[key] = client_from_url(url)
        assert isinstance(client, (redis.Redis, redis.cluster.RedisCluster))
        broker = cls.for_layout(layout_for(url, shared.get("config")))(name, client)  # type: ignore[arg-type]
        broker.url = url
        broker.replica_wait = ReplicaWait.configured(shared)
        return broker

    def close(self) -> None:
        """Disconnect the shared pool and this thread's direct connection (both reconnect on next use)."""
        if isinstance(self._call, DirectCaller):
            self._call.close()
        self.client.connection_pool.disconnect()

    @classmethod
    def for_layout(cls, layout: str) -> type[RedisBroker]:
        """The broker class of a key layout: this one, or ClusterBroker (cluster_broker.py) for "cluster"."""
        if layout != CLUSTER:
            return cls
        from .cluster_broker import ClusterBroker  # a subclass: imported here, not at module level

        return ClusterBroker
