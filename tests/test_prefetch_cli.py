"""``delayed worker --prefetch K`` as a user runs it: the installed CLI as a subprocess, from a folder with a
``tasks.py``, against a real redis-server the test starts.

Each task records itself in Redis lists (``started`` when it begins, ``ran`` when it ends), so the test
sees in what order and how often the worker ran them.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from delayed_core import Delayed, PyTask
from delayed_core.handles import TaskHandle
from tests.chaos.processes import poll
from tests.support import cli
from tests.support.redis_server import RedisServer

TASKS = '''
import os
import time

import redis

_redis = redis.Redis.from_url(os.environ["PREFETCH_TEST_REDIS"])


def work(n, seconds=0.0):
    """Record the start, sleep, record the end."""
    _redis.rpush("started", n)
    time.sleep(seconds)
    _redis.rpush("ran", n)
'''

#: a worker that notices a dead process's ids within about a second
FAST = ("--keep-alive-timeout", "1", "--keep-alive-interval", "0.3", "--dequeue-timeout", "0.3")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "tasks.py").write_text(TASKS)
    return tmp_path


@pytest.fixture
def app(real_redis: RedisServer) -> Iterator[Delayed]:
    app = Delayed(real_redis.url, load_entry_points=False)
    yield app
    app.close()


def work(n: int, seconds: float = 0.0) -> PyTask:
    return PyTask("tasks:work", [n], {"seconds": seconds} if seconds else {})


def numbers(client: redis.Redis, key: str) -> list[int]:
    return [int(value) for value in client.lrange(key, 0, -1)]


def start_worker(server: RedisServer, folder: Path, *options: str) -> subprocess.Popen[bytes]:
    """``delayed worker --prefetch ...`` in the background, its output in ``worker.log``."""
    with (folder / "worker.log").open("ab") as log:
        return subprocess.Popen([cli.DELAYED, "worker", "--broker", server.url, "--import", "tasks", *options],
                                cwd=folder, env=cli.user_environment({"PREFETCH_TEST_REDIS": server.url}),
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL)


def batch_in_hand(server: RedisServer, app: Delayed, folder: Path, first_seconds: float, count: int
                  ) -> subprocess.Popen[bytes]:
    """Enqueue task 0 (sleeping ``first_seconds``) and tasks 1 .. count-1, start a ``--prefetch 8`` worker,
    and return it once task 0 runs (the next seven then wait in its batch)."""
    app.queue("pq").enqueue_many([work(0, first_seconds), *(work(n) for n in range(1, count))])
    worker = start_worker(server, folder, "--queue", "pq", "--prefetch", "8", *FAST)
    try:
        poll(lambda: numbers(server.client(), "started") == [0], 15, message="the first task to start")
    except BaseException:
        worker.kill()
        worker.wait(10)
        raise
    return worker


def stop_gracefully(worker: subprocess.Popen[bytes], folder: Path) -> None:
    """SIGTERM, and the worker exits 0 within 15 s (killed if not)."""
    try:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0, (folder / "worker.log").read_text()
    finally:
        if worker.poll() is None:
            worker.kill()


def queued(app: Delayed, queue: str) -> list[int]:
    """The task numbers waiting in ``queue``, head first."""
    client = app.broker(queue).client  # type: ignore[attr-defined]
    return [app.serializer.loads(raw).args[0] for raw in client.lrange(queue, 0, -1)]


def test_every_task_runs_once(real_redis: RedisServer, app: Delayed, folder: Path) -> None:
    app.queue("pq").enqueue_many([work(n) for n in range(60)])
    done = cli.delayed("worker", "--broker", real_redis.url, "--queue", "pq", "--import", "tasks", "--prefetch", "8",
                       "--slots", "2", "--burst", cwd=folder, env={"PREFETCH_TEST_REDIS": real_redis.url})
    assert done.returncode == 0, done.stderr
    assert "2 slot(s) prefetching 8 task(s) each" in done.stderr
    client = real_redis.client()
    assert sorted(numbers(client, "ran")) == list(range(60))  # each once
    assert client.llen("pq") == 0 and client.hlen("pq_processing") == 0 and client.llen("pq_noti") == 0


def test_sigkill_mid_batch_then_the_sweeper_recovers_every_prefetched_task(
        real_redis: RedisServer, app: Delayed, folder: Path) -> None:
    client = real_redis.client()
    worker = batch_in_hand(real_redis, app, folder, 60.0, 20)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    held = client.hgetall("pq_processing")
    assert len(held) == 8, "one running task and seven prefetched, each under its own id"
    assert sorted(app.serializer.loads(raw).args[0] for raw in held.values()) == list(range(8))
    poll(lambda: client.exists(*held) == 0, 10, message="the killed worker's ids to expire")
    swept = cli.delayed("sweeper", "--broker", real_redis.url, "--queue", "pq", "--once", cwd=folder)
    assert swept.returncode == 0, swept.stderr
    assert client.hlen("pq_processing") == 0
    assert sorted(queued(app, "pq")) == list(range(20))  # nothing lost
    assert client.llen("pq_noti") == 20


def test_sigterm_hands_unstarted_tasks_back_to_the_front_in_order(
        real_redis: RedisServer, app: Delayed, folder: Path) -> None:
    client = real_redis.client()
    worker = batch_in_hand(real_redis, app, folder, 1.0, 16)
    try:
        assert client.hlen("pq_processing") == 8
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0, (folder / "worker.log").read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
    assert numbers(client, "ran") == [0]  # the running task finished; no other one started
    assert queued(app, "pq") == list(range(1, 16))  # the seven unstarted back at the front, in order
    assert client.llen("pq_noti") == 15 and client.hlen("pq_processing") == 0
    assert "handed 7 unstarted task(s) back" in (folder / "worker.log").read_text()


def test_a_cancelled_prefetched_task_never_runs(real_redis: RedisServer, app: Delayed, folder: Path) -> None:
    client = real_redis.client()
    handles = [app.queue("pq").enqueue(work(n, 1.5 if n == 0 else 0.0), track=True) for n in range(4)]
    worker = start_worker(real_redis, folder, "--queue", "pq", "--prefetch", "4", *FAST)
    try:
        poll(lambda: numbers(client, "started") == [0], 15, message="the first task to start")
        assert client.hlen("pq_processing") == 4  # the other three wait in the batch
        assert handles[2].cancel()
        poll(lambda: len(numbers(client, "ran")) == 3, 15, message="the other tasks to run")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(15)
    assert numbers(client, "ran") == [0, 1, 3]
    assert [handle.status() for handle in handles] == ["succeeded", "succeeded", "cancelled", "succeeded"]
    assert client.hlen("pq_processing") == 0
    assert f"task {handles[2].id} cancelled before it started" in (folder / "worker.log").read_text()


def batch_in_flight(server: RedisServer, app: Delayed, folder: Path, ninth_seconds: float, count: int,
                    *options: str, track: bool = False) -> tuple[subprocess.Popen[bytes], list[TaskHandle]]:
    """Enqueue tasks 0 .. count-1 (task 8 sleeping ``ninth_seconds``), start a ``--prefetch 16`` worker,
    and return it once task 8 runs and the batch call sent before it is done: tasks 0-7 released, 16-23
    taken under their ids while 9-15 wait (the slot reads that call's reply only after task 15)."""
    handles = [app.queue("pq").enqueue(work(n, ninth_seconds if n == 8 else 0.0), track=track) for n in range(count)]
    worker = start_worker(server, folder, "--queue", "pq", "--prefetch", "16", *FAST, *options)
    client = server.client()
    try:
        poll(lambda: numbers(client, "started") == list(range(9)), 15, message="task 8 to start")
        poll(lambda: sorted(app.serializer.loads(raw).args[0] for raw in client.hvals("pq_processing"))
             == list(range(8, 24)), 15, message="the batch call sent before task 8")
    except BaseException:
        worker.kill()
        worker.wait(10)
        raise
    return worker, handles


def test_sigterm_hands_back_what_the_batch_call_in_flight_took_too(
        real_redis: RedisServer, app: Delayed, folder: Path) -> None:
    client = real_redis.client()
    worker, _ = batch_in_flight(real_redis, app, folder, 1.0, 32)
    stop_gracefully(worker, folder)
    assert numbers(client, "ran") == list(range(9))
    assert queued(app, "pq") == list(range(9, 32))  # 9-15, then 16-23 the call took, then the rest
    assert client.llen("pq_noti") == 23 and client.hlen("pq_processing") == 0
    assert "handed 15 unstarted task(s) back" in (folder / "worker.log").read_text()


def test_at_the_shutdown_timeout_the_call_in_flight_is_handed_back_by_id(
        real_redis: RedisServer, app: Delayed, folder: Path) -> None:
    """The main thread cannot read the slot's reply: it hands back 9-15, then whatever the ids of the call
    that took 16-23 hold, then the running task in front of them all."""
    client = real_redis.client()
    worker, _ = batch_in_flight(real_redis, app, folder, 60.0, 32, "--shutdown-timeout", "0.5")
    stop_gracefully(worker, folder)
    assert numbers(client, "ran") == list(range(8))
    assert queued(app, "pq") == list(range(8, 32))
    assert client.llen("pq_noti") == 24 and client.hlen("pq_processing") == 0
    log = (folder / "worker.log").read_text()
    assert "handed 7 unstarted task(s) back to the front of the queue (and those the batch call in flight took)" in log


def test_a_task_cancelled_while_the_call_that_took_it_is_in_flight_never_runs(
        real_redis: RedisServer, app: Delayed, folder: Path) -> None:
    client = real_redis.client()
    worker, handles = batch_in_flight(real_redis, app, folder, 1.5, 24, track=True)
    try:
        assert handles[18].cancel()  # taken by the call in flight, whose reply the slot has not read
        poll(lambda: len(numbers(client, "ran")) == 23, 15, message="the other tasks to run")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(15)
    assert numbers(client, "ran") == [n for n in range(24) if n != 18]
    assert [handle.status() for handle in handles] == ["cancelled" if n == 18 else "succeeded" for n in range(24)]
    assert client.hlen("pq_processing") == 0
    assert f"task {handles[18].id} cancelled before it started" in (folder / "worker.log").read_text()


def test_a_small_prefetch_runs_its_batch_then_calls(real_redis: RedisServer, app: Delayed, folder: Path) -> None:
    """Below 16 a batch call would take too few tasks to pay for itself while tasks run: with
    --prefetch 8 the finished tasks wait for the batch's end, and nothing more is taken before."""
    client = real_redis.client()
    app.queue("pq").enqueue_many([work(n, 1.0 if n == 6 else 0.0) for n in range(20)])
    worker = start_worker(real_redis, folder, "--queue", "pq", "--prefetch", "8", *FAST)
    try:
        poll(lambda: numbers(client, "started") == list(range(7)), 15, message="task 6 to start")
        assert sorted(app.serializer.loads(raw).args[0] for raw in client.hvals("pq_processing")) == list(range(8))
    finally:
        stop_gracefully(worker, folder)
    assert queued(app, "pq") == list(range(7, 20))


def test_priority_holds_when_a_batch_is_taken(real_redis: RedisServer, app: Delayed, folder: Path) -> None:
    app.queue("low").enqueue_many([work(n) for n in range(10, 20)])
    app.queue("high").enqueue_many([work(n) for n in range(3)])
    done = cli.delayed("worker", "--broker", real_redis.url, "--queue", "high", "--queue", "low", "--import",
                       "tasks", "--prefetch", "4", "--burst", cwd=folder, env={"PREFETCH_TEST_REDIS": real_redis.url})
    assert done.returncode == 0, done.stderr
    # The first batch takes the three high tasks, then the head of the low queue.
    assert numbers(real_redis.client(), "ran") == [0, 1, 2, *range(10, 20)]


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_bad_prefetch_is_refused_in_one_line(tmp_path: Path, value: str) -> None:
    result = cli.delayed("worker", "--broker", "redis://127.0.0.1:1/0", "--prefetch", value, cwd=tmp_path)
    assert result.returncode == 2
    assert "--prefetch" in result.stderr and "Traceback" not in result.stderr


def test_a_prefetch_over_the_limit_is_refused_in_one_line(tmp_path: Path) -> None:
    for command in (["--prefetch", "5000"], []):
        env = {} if command else {"DELAYED_PREFETCH": "5000"}
        result = cli.delayed("worker", "--broker", "redis://127.0.0.1:1/0", *command, cwd=tmp_path, env=env)
        assert result.returncode != 0
        (line,) = result.stderr.strip().splitlines()
        assert "prefetch must be between 1 and 1000" in line
