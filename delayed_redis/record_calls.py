"""Where a tracked task's record lives in each key layout, the keys its read and cancel scripts declare,
and how its end is announced (keys.py names the keys; tracking.py, waiting.py, pipelined_wait.py and
async_tracking.py make the calls).

- go-delayed's layout: ``delayed_task:<id>``, found by id alone (any queue's tracker reads any record;
  the scripts find the task's queue from the record), announced with PUBLISH;
- the cluster layout: ``{N}_task:<id>``, in the slot of its queue N, so each tracker serves one queue and
  its scripts declare that queue's keys; announced with SPUBLISH on the record's shard channel (Redis 7+),
  which only the nodes serving that slot hear (a classic PUBLISH goes to every node of a cluster).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .keys import CLUSTER, GO_DELAYED, QueueKeys, record_key

Call = tuple[tuple[str, ...], tuple[Any, ...]]


@dataclass(frozen=True)
class PubSubKind:
    """The names of one kind of pub/sub: its commands, the redis-py methods, and the push types."""

    subscribe: str
    unsubscribe: str
    message: str
    #: the redis-py PubSub method that reads this kind's messages
    reader: str

    @property
    def confirmed(self) -> str:
        """The push type confirming a subscription (also the command's name)."""
        return self.subscribe


CLASSIC = PubSubKind("subscribe", "unsubscribe", "message", "get_message")
SHARDED = PubSubKind("ssubscribe", "sunsubscribe", "smessage", "get_sharded_message")


class RecordCalls:
    """go-delayed's layout: records found by id alone."""

    layout = GO_DELAYED
    pubsub = CLASSIC

    def key(self, task_id: str) -> str:
        """The record's key, also its channel."""
        return record_key(task_id)

    def read(self, task_id: str) -> Call:
        """KEYS and ARGV of ``track_read``."""
        return (record_key(task_id),), ()

    def cancel(self, task_id: str, ttl_ms: int) -> Call:
        """KEYS and ARGV of ``track_cancel``."""
        return (record_key(task_id),), (ttl_ms, task_id)


class ClusterRecordCalls(RecordCalls):
    """The cluster layout: the records of one queue, in its slot, with every queue key declared.

    :param keys: the queue's keys (cluster layout).
    """

    layout = CLUSTER
    pubsub = SHARDED

    def __init__(self, keys: QueueKeys) -> None:
        self.keys = keys

    def key(self, task_id: str) -> str:
        """``{N}_task:<id>``."""
        return self.keys.record(task_id)

    def read(self, task_id: str) -> Call:
        """The record and the queue's processing hash, and the prefix of its liveness keys."""
        keys = self.keys
        return (keys.record(task_id), keys.processing), (keys.liveness_prefix,)

    def cancel(self, task_id: str, ttl_ms: int) -> Call:
        """The record and the queue's four keys a cancel may touch, and the liveness prefix."""
        k = self.keys
        return ((k.record(task_id), k.queue, k.notifications, k.scheduled, k.processing),
                (ttl_ms, task_id, k.liveness_prefix))


def record_calls(keys: QueueKeys) -> RecordCalls:
    """The calls of ``keys``'s layout."""
    return ClusterRecordCalls(keys) if keys.clustered else RecordCalls()
