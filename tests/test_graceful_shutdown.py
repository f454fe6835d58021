"""Graceful shutdown of a real worker process under load: SIGTERM, shutdown timeout, second SIGTERM."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from delayed_core import Delayed, PyTask
from tests.chaos.harness import worker_ids_in
from tests.chaos.processes import TASKS_MODULE, CliProcess, poll, worker_args
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.real_redis
QUEUE = "graceful"
HEX_ID = re.compile(r"^[0-9a-f]{32}$")


def enqueue(url: str, tasks: list[PyTask]) -> list[bytes]:
    """Enqueue and return the wire bytes of each task."""
    app = Delayed(url, load_entry_points=False)
    try:
        app.queue(QUEUE).enqueue_many(tasks)
        return [app.serializer.dumps(task) for task in tasks]
    finally:
        app.close()


def start_worker(server: RedisServer, tmp_path: Path, slots: int, shutdown_timeout: float) -> CliProcess:
    """A worker process on QUEUE, online (its ids logged) when this returns."""
    args = worker_args(server.url, QUEUE, slots=slots, keep_alive_timeout=5, keep_alive_interval=1,
                       extra=["--shutdown-timeout", str(shutdown_timeout)])
    worker = CliProcess(args, tmp_path, {"CHAOS_REDIS_URL": server.url})
    worker.wait_for_log("worker serving queue", 10)
    return worker


def assert_offline(server: RedisServer, worker: CliProcess) -> None:
    """The worker's liveness keys and registry entries are gone and it holds nothing."""
    client = server.client()
    ids = worker_ids_in(worker.log())
    assert ids and all(HEX_ID.match(worker_id) for worker_id in ids)
    assert client.exists(*ids) == 0
    assert client.zcard(f"{QUEUE}_workers") == 0
    assert client.hlen(f"{QUEUE}_processing") == 0


def test_sigterm_lets_running_tasks_finish_and_release(real_redis: RedisServer, tmp_path: Path) -> None:
    client = real_redis.client()
    worker = start_worker(real_redis, tmp_path, slots=3, shutdown_timeout=10)
    running = [PyTask(f"{TASKS_MODULE}:slow", [i, 0.8]) for i in range(3)]
    waiting = [PyTask(f"{TASKS_MODULE}:record", [100 + i]) for i in range(5)]
    enqueue(real_redis.url, running)
    poll(lambda: client.llen("started") == 3, 10, message="3 tasks started")
    enqueue(real_redis.url, waiting)
    worker.terminate()
    assert worker.wait(10) == 0
    # The three running tasks finished exactly once; nothing new was taken after the signal.
    assert sorted(int(x) for x in client.lrange("ran", 0, -1)) == [0, 1, 2]
    assert client.llen("started") == 3
    assert client.llen(QUEUE) == 5
    assert client.llen(f"{QUEUE}_noti") == 5
    assert_offline(real_redis, worker)
    assert "Traceback" not in worker.log()


def test_task_past_the_shutdown_timeout_is_handed_back_to_the_front(
    real_redis: RedisServer, tmp_path: Path
) -> None:
    client = real_redis.client()
    worker = start_worker(real_redis, tmp_path, slots=1, shutdown_timeout=0.5)
    (long_task,) = enqueue(real_redis.url, [PyTask(f"{TASKS_MODULE}:slow_first_time", [7, 30])])
    poll(lambda: client.llen("started") == 1, 10, message="the long task started")
    enqueue(real_redis.url, [PyTask(f"{TASKS_MODULE}:record", [8])])
    worker.terminate()
    assert worker.wait(10) == 0
    assert "handed back to the queue" in worker.log()
    assert client.lrange(QUEUE, 0, -1)[0] == long_task, "handed back to the front"
    assert client.llen(QUEUE) == client.llen(f"{QUEUE}_noti") == 2
    assert_offline(real_redis, worker)
    # The next worker runs it again (first, since it is at the front), then the task queued behind it.
    successor = start_worker(real_redis, tmp_path, slots=1, shutdown_timeout=5)
    poll(lambda: client.llen("ran") == 2, 10, message="both tasks ran on the next worker")
    assert [int(x) for x in client.lrange("ran", 0, -1)] == [7, 8]
    successor.terminate()
    assert successor.wait(10) == 0


def test_second_sigterm_hands_back_at_once(real_redis: RedisServer, tmp_path: Path) -> None:
    client = real_redis.client()
    worker = start_worker(real_redis, tmp_path, slots=1, shutdown_timeout=60)
    (long_task,) = enqueue(real_redis.url, [PyTask(f"{TASKS_MODULE}:slow_first_time", [9, 30])])
    poll(lambda: client.llen("started") == 1, 10, message="the long task started")
    worker.terminate()
    worker.wait_for_log("finishing running tasks", 5)
    worker.terminate()
    # Far below the 60 s shutdown timeout and the 30 s task: the second signal cut the wait short.
    assert worker.wait(5) == 0
    assert client.lrange(QUEUE, 0, -1) == [long_task]
    assert client.llen("ran") == 0
    assert_offline(real_redis, worker)
