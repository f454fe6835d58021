"""Expiry events on a Redis Cluster: hear a worker's liveness key expire on whichever node holds it.

Keyspace events are local to each node: a node publishes only the expiries of its own keys, on its own
``__keyevent@0__:expired``. So the sweeper subscribes on every primary (one watcher of expiry_events.py
per node, each turning the events on where they are off and allowed, each with its own backoff) and
answers "sweep now" when any of them hears a liveness key ``{N}_alive:<id>`` expire. Primaries that join
later (a new shard) are picked up at the next wait.
"""

from __future__ import annotations

import re
import time
from typing import Any

from delayed_core.interfaces.lost_workers import LostWorkerWatcher

from .cluster import node_clients
from .expiry_events import RedisExpiryWatcher

#: liveness keys of the cluster layout (keys.py): ``{N}_alive:`` and a worker id (see expiry_events.py)
CLUSTER_LIVENESS = re.compile(rb"\{[^}]+\}_alive:(?:[0-9a-f]{32}|[0-9]{1,5})")

#: how long one node's subscription is listened to before the next node's, within one wait
TURN = 0.05


class NodeExpiryWatcher(RedisExpiryWatcher):
    """The expiry watcher of one cluster node, for the cluster layout's liveness key names."""

    @staticmethod
    def _is_worker_expiry(message: dict[str, object]) -> bool:
        data = message.get("data")
        return message.get("type") == "message" and isinstance(data, bytes) and bool(
            CLUSTER_LIVENESS.fullmatch(data))


class ClusterExpiryWatcher(LostWorkerWatcher):
    """One :class:`NodeExpiryWatcher` per primary, listened to in turn."""

    def __init__(self, client: Any, enable: bool = True) -> None:
        self._client = client
        self._enable = enable
        self._watchers: dict[str, NodeExpiryWatcher] = {}

    def _refresh(self) -> None:
        for name, node in node_clients(self._client):
            if name not in self._watchers:
                self._watchers[name] = NodeExpiryWatcher(node, self._enable)

    def wait(self, timeout: float) -> bool:
        """Up to ``timeout``; True as soon as one node heard a liveness key expire (or (re)subscribed)."""
        deadline = time.monotonic() + max(0.0, timeout)
        self._refresh()
        while True:
            for watcher in list(self._watchers.values()):
                if watcher.wait(max(0.0, min(TURN, deadline - time.monotonic()))):
                    return True
            if time.monotonic() >= deadline:
                return False

    def close(self) -> None:
        """Close every node's subscription."""
        for watcher in self._watchers.values():
            watcher.close()
        self._watchers.clear()
