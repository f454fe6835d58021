"""Tasks for the priority tests. Each run notes its label in order: in the Redis list ``started`` (a worker
in another process; ``PRIORITY_REDIS_URL`` names the server) or in :data:`started` (a worker thread)."""

from __future__ import annotations

import os
import threading

import redis

started: list[str] = []
_lock = threading.Lock()
_client: redis.Redis | None = None


def mark(label: str) -> None:
    """Note that the task labelled ``label`` started."""
    global _client
    url = os.environ.get("PRIORITY_REDIS_URL")
    if url is None:
        with _lock:
            started.append(label)
        return
    if _client is None:
        _client = redis.Redis.from_url(url)
    _client.rpush("started", label)
