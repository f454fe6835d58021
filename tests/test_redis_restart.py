"""Redis going away: a restart mid-run (AOF on) and a server that is down when the worker starts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from delayed_core import Delayed, PyTask
from delayed_core.errors import BrokerUnavailable
from tests.chaos.processes import TASKS_MODULE, CliProcess, poll, sweeper_args, worker_args
from tests.chaos.tasks import RAN_SET
from tests.support.redis_server import RedisServer, require_redis_server

pytestmark = pytest.mark.real_redis
QUEUE = "restart"


@pytest.fixture
def aof_server() -> RedisServer:
    """A dedicated redis-server with appendonly yes (fsync always), removed after the test."""
    require_redis_server()
    server = RedisServer(appendonly=True).start()
    yield server  # type: ignore[misc]
    server.cleanup()


class Producer(threading.Thread):
    """Enqueues one task at a time until stopped; remembers the ids whose enqueue returned normally."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.app = Delayed(url, load_entry_points=False)
        self.stopping = threading.Event()
        self.acknowledged: list[int] = []
        self.refused = 0

    def run(self) -> None:
        queue = self.app.queue(QUEUE)
        task_id = 0
        while not self.stopping.wait(0.005):
            try:
                queue.enqueue(PyTask(f"{TASKS_MODULE}:record", [task_id]))
                self.acknowledged.append(task_id)
            except BrokerUnavailable:
                self.refused += 1
            task_id += 1


def ran_ids(server: RedisServer) -> set[int]:
    """The ids recorded as run."""
    return {int(member) for member in server.client().smembers(RAN_SET)}


@pytest.mark.slow
def test_every_acknowledged_enqueue_runs_across_a_redis_restart(aof_server: RedisServer, tmp_path: Path) -> None:
    env = {"CHAOS_REDIS_URL": aof_server.url}
    workers = [CliProcess(worker_args(aof_server.url, QUEUE, slots=2, keep_alive_timeout=5, keep_alive_interval=1),
                          tmp_path, env) for _ in range(2)]
    sweeper = CliProcess(sweeper_args(aof_server.url, QUEUE, interval=0.5), tmp_path, env)
    for worker in workers:
        worker.wait_for_log("worker serving queue", 10)
    producer = Producer(aof_server.url)
    producer.start()
    try:
        poll(lambda: len(ran_ids(aof_server)) >= 100, 15, message="100 tasks ran before the restart")
        aof_server.stop()
        for worker in workers:
            worker.wait_for_log("broker unavailable", 10)
        aof_server.start()
        acknowledged_after_restart = len(producer.acknowledged)
        poll(lambda: len(producer.acknowledged) >= acknowledged_after_restart + 100, 20,
             message="the producer enqueues again after the restart")
        producer.stopping.set()
        producer.join(5)
        expected = set(producer.acknowledged)
        poll(lambda: expected <= ran_ids(aof_server), 30, message="every acknowledged task ran")
    finally:
        producer.stopping.set()
        for process in [*workers, sweeper]:
            process.terminate()
    for process in [*workers, sweeper]:
        assert process.wait(15) == 0
        log = process.log()
        assert "Traceback" not in log, log[-3000:]
    assert producer.refused > 0, "the producer should have seen the outage"
    # Every reconnection step is one log line with the delay; the slots carried on by themselves.
    assert any("retries in" in worker.log() for worker in workers)


def test_worker_waits_for_redis_that_is_down_at_start(tmp_path: Path) -> None:
    require_redis_server()
    server = RedisServer()  # port chosen, nothing listening yet
    env = {"CHAOS_REDIS_URL": server.url}
    worker = CliProcess(worker_args(server.url, QUEUE), tmp_path, env)
    try:
        poll(lambda: worker.log().count("cannot reach the broker") >= 2, 10,
             message="two retry lines while Redis is down")
        assert worker.alive()
        first_line = next(line for line in worker.log().splitlines() if "cannot reach the broker" in line)
        assert server.url in first_line and "retrying in" in first_line
        server.start()
        Delayed(server.url, load_entry_points=False).queue(QUEUE).enqueue(PyTask(f"{TASKS_MODULE}:record", [1]))
        # The backoff is capped, so the worker comes online within a few seconds of the server.
        poll(lambda: ran_ids(server) == {1}, 20, message="the task ran once Redis came up")
        worker.terminate()
        assert worker.wait(10) == 0
        assert "Traceback" not in worker.log()
    finally:
        worker.kill()
        server.cleanup()


def test_backoff_between_retries_is_capped() -> None:
    from delayed_core.backoff import Backoff

    backoff = Backoff(initial=0.5, cap=4.0)
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays[0] < delays[1] < delays[2]
    assert max(delays) <= 4.0 * 1.1
