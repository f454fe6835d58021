"""Task functions for the chaos and reliability tests, run by ``delayed worker --import tests.chaos.tasks``.

Each run is recorded in Redis (on the server named by ``CHAOS_REDIS_URL``) *before* the worker releases
the task, so a kill between the record and the release shows up as a duplicate, and a task that never
ran shows up as missing from ``ran_set``.
"""

from __future__ import annotations

import os
import time

import redis

#: list of every run (duplicates included)
RAN_LIST = "ran"
#: set of the ids that ran at least once
RAN_SET = "ran_set"

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["CHAOS_REDIS_URL"])
    return _client


def record(task_id: int, sleep_ms: float = 0.0) -> None:
    """Sleep ``sleep_ms`` (the task's work), then record that ``task_id`` ran."""
    if sleep_ms:
        time.sleep(sleep_ms / 1000)
    # The record is the test's instrumentation, not the task under test: it outlasts a Redis restart (and
    # the storm's read-only spell) so that a run during the outage is recorded instead of failing.
    deadline = time.monotonic() + 30
    while True:
        try:
            with _redis().pipeline(transaction=True) as pipe:
                pipe.rpush(RAN_LIST, task_id).sadd(RAN_SET, task_id).execute()
            return
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.ReadOnlyError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def slow(task_id: int, seconds: float) -> None:
    """Record the start, sleep ``seconds``, then record the end (graceful-shutdown tests)."""
    client = _redis()
    client.rpush("started", task_id)
    time.sleep(seconds)
    client.rpush(RAN_LIST, task_id)
    client.sadd(RAN_SET, task_id)


def slow_first_time(task_id: int, seconds: float) -> None:
    """Sleep ``seconds`` on the first run only, then record the run (hand-back tests)."""
    client = _redis()
    client.rpush("started", task_id)
    if client.incr(f"attempts:{task_id}") == 1:
        time.sleep(seconds)
    client.rpush(RAN_LIST, task_id)
    client.sadd(RAN_SET, task_id)


def fail_once_then_record(task_id: int) -> None:
    """Record each attempt; fail the first one, record the run on the next (retry tests)."""
    client = _redis()
    if client.rpush("attempts", task_id) == 1:
        raise RuntimeError("first attempt fails on purpose")
    client.rpush(RAN_LIST, task_id)
    client.sadd(RAN_SET, task_id)
