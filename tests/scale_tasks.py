"""Tasks for the ``--processes`` tests: each records which process ran it (Redis of CHAOS_REDIS_URL)."""

from __future__ import annotations

import os
import time

from tests.chaos.tasks import _redis


def record_pid(task_id: int, seconds: float = 0.0) -> None:
    """Push ``task_id`` to ``started``, sleep ``seconds``, then push ``"<task_id> <pid>"`` to ``ran``."""
    _redis().rpush("started", task_id)
    if seconds:
        time.sleep(seconds)
    _redis().rpush("ran", f"{task_id} {os.getpid()}")


def noop() -> None:
    """Nothing: the drain-rate benchmark measures the queue, not the task."""
