"""The task of the recovery benchmark (``bench/recovery.py``), run by ``delayed worker --import
bench.recovery_tasks``. It reports each start to the benchmark's Redis (``RECOVERY_REDIS_URL``)."""

from __future__ import annotations

import os
import time

import redis

_client: redis.Redis | None = None


def starts_key(task_id: str) -> str:
    """The list of ``"<pid> <unix time>"`` entries, one per start of task ``task_id``."""
    return f"bench:starts:{task_id}"


#: the list of the ids of the tasks that finished
DONE_KEY = "bench:done"


def hold(task_id: str) -> None:
    """Record the start; the first run then holds the task (until its worker is killed), a later run
    finishes at once."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["RECOVERY_REDIS_URL"])
    if _client.rpush(starts_key(task_id), f"{os.getpid()} {time.time():.6f}") == 1:
        time.sleep(3600)
    _client.rpush(DONE_KEY, task_id)
