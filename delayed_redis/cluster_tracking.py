"""Task records in the cluster key layout: the tracker of :class:`~delayed_redis.cluster_broker.ClusterBroker`.

A record is ``{N}_task:<id>``, in the hash slot of its queue N, so that the scripts moving the task write
it on the node that runs them. A tracker (one per broker, one broker per queue) thus reads and writes the
records of its own queue only. What differs from :class:`~delayed_redis.tracking.RedisTracker`:

- the read and cancel scripts get the queue's keys declared (record_calls.py);
- a tracked release is ClusterBroker's release (one script call on the queue's node, plus the look at
  higher queues a worker of several queues makes) with the record write composed in;
- the end of a task is announced on the record's shard channel (SPUBLISH, Redis 7+). A waiter sends
  SSUBSCRIBE and the read together to the node serving the slot, on a connection its thread keeps for
  that node (pipelined_wait.py): the same few commands as on one Redis. After the slot moved (MOVED, or
  ASK while it moves) the waiter reads the slot map again and waits once more, then reads the record
  twice a second through the cluster client, which follows the redirects;
- ids that pydelayed makes carry their queue, ``<id>@<queue>``, so that ``app.handle(id)`` finds the
  record from the id alone; a caller's own id (``task_id=``) is kept as given, and its queue is named
  when the handle is made again (``app.handle(id, queue=...)``).
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import redis

from delayed_core.errors import BrokerUnavailable
from delayed_core.interfaces.tracking import Finish, TaskRecord

from .connection import is_cluster_client, unavailable_as_broker_error
from .keys import CLUSTER
from .pipelined_wait import PipelinedWaiter
from .tracking import READ, RELEASE_TAKE, RedisTracker, _keys, record_from, settle_args
from .waiting import RecordWaiter, SubscriptionLost

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .async_tracking import AsyncRecords
    from .cluster_broker import ClusterBroker

#: an id pydelayed made (random, or derived with unique_for), then the queue it was enqueued on
_MADE_ID = re.compile(r"(?:u-)?[0-9a-f]{32}@(.+)", re.DOTALL)


class NodeWaiter(PipelinedWaiter):
    """:class:`PipelinedWaiter` on a Redis Cluster: a thread's connection goes to the node serving the
    queue's slot (a tracker serves one queue, so one node per tracker and thread)."""

    def _pool(self, key: str) -> Any:
        client: Any = self.client
        return client.get_redis_connection(client.get_node_from_key(key)).connection_pool


class ClusterTracker(RedisTracker):
    """The records of one queue in the cluster layout (see the module docstring)."""

    broker: ClusterBroker

    def __init__(self, broker: ClusterBroker) -> None:
        self.queue = broker.name
        super().__init__(broker)

    def _make_waiter(self) -> PipelinedWaiter:
        """The waiter of this layout's calls and parse, on the node of the queue's slot."""
        fallback = RecordWaiter(self.client, self.read, self.calls)
        waiter = NodeWaiter if is_cluster_client(self.client) else PipelinedWaiter
        return waiter(self.client, READ, self._parse, fallback, self.calls)

    def made_id(self, task_id: str) -> str:
        """``<id>@<queue>``."""
        return f"{task_id}@{self.queue}"

    def queue_named(self, task_id: str) -> str | None:
        """The queue after the ``@`` of an id made by :meth:`made_id`; None for any other id."""
        match = _MADE_ID.fullmatch(task_id)
        return match.group(1) if match else None

    def _parse(self, task_id: str, flat: list[bytes]) -> TaskRecord:
        """The record as read, with the queue as the user names it (the record holds its key, ``{N}``), or
        for an unknown id the queue looked in."""
        return replace(record_from(task_id, flat), queue=self.queue)

    def read(self, task_id: str) -> TaskRecord:
        """One script call, on the node of the queue's slot."""
        with unavailable_as_broker_error():
            return self._parse(task_id, READ(self.client.execute_command, *self.calls.read(task_id)))

    def release_and_take(self, worker_id: str, queue: str, queues: Sequence[str], take_next: bool,
                         finish: Finish) -> tuple[str, bytes] | None:
        """ClusterBroker's release with the record write: one script call per busy task of one queue."""
        record = _keys(queue, CLUSTER).record(finish.task_id)
        return self.broker.release_then_take(worker_id, queue, queues, take_next, RELEASE_TAKE, (record,),
                                             settle_args(finish))

    def wait(self, task_id: str, timeout: float) -> TaskRecord:
        """As on one Redis; after a slot move, once more with the new slot map, then by reading."""
        deadline = time.monotonic() + timeout
        for _ in range(2):
            try:
                return self._waiter.wait(task_id, max(0.0, deadline - time.monotonic()))
            except BrokerUnavailable as exc:  # MovedError is an AskError
                if not isinstance(exc.__cause__, (redis.exceptions.AskError, SubscriptionLost)):
                    raise
                moved = exc
                if is_cluster_client(self.client):
                    with unavailable_as_broker_error():
                        self.client.nodes_manager.initialize()  # type: ignore[attr-defined]
        return self._waiter.fallback.wait_polling(task_id, deadline, moved)

    def _async_records(self) -> AsyncRecords | None:
        """The asyncio side, with this layout's calls and parse."""
        if self._async is None and self.broker.url is not None:
            from .async_tracking import AsyncRecords

            self._async = AsyncRecords(self.broker.url, self.broker.replica_wait, self.calls, self._parse)
        return self._async
