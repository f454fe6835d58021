"""Queue names and keys that clash (issue 10, item 4): reserved suffixes are refused, every script leaves
the task where it was when a key has the wrong type, and keep-alive never waits on a failing promotion."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from delayed_core import Delayed, PyTask
from delayed_core.errors import ConfigError
from delayed_redis.broker import RedisBroker
from delayed_redis.errors import BrokerCommandError
from delayed_redis.keys import RESERVED_SUFFIXES
from tests.chaos.processes import TASKS_MODULE, CliProcess, poll, worker_args
from tests.conftest import Backend

WID = "a" * 32
TASK = b"\x93\xa8m:record\x91\x01\x00"


def broker_of(backend: Backend, queue: str = "jobs") -> RedisBroker:
    broker = backend.app().broker(queue)
    assert isinstance(broker, RedisBroker)
    return broker


# -- reserved suffixes ----------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", RESERVED_SUFFIXES)
def test_queue_names_with_a_reserved_suffix_are_refused(backend: Backend, suffix: str) -> None:
    with pytest.raises(ConfigError, match=f"queue name 'jobs{suffix}' ends in '{suffix}'"):
        backend.app().queue(f"jobs{suffix}")


@pytest.mark.parametrize("command", [["worker"], ["sweeper", "--once"], ["dead", "list"], ["info"]])
def test_every_cli_command_refuses_them_in_one_line(tmp_path: Path, command: list[str]) -> None:
    done = subprocess.run([*CliProcess.command_prefix(), *command, "--broker", "redis://127.0.0.1:1/0",
                           "--queue", "jobs_noti"], capture_output=True, text=True, timeout=30, cwd=tmp_path,
                          env=CliProcess.environment({}))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"delayed {command[0]}: configuration error: queue name 'jobs_noti' ends in "
                                  "'_noti', which names a key of queue 'jobs'"), done.stderr
    assert done.stderr.count("\n") == 1


# -- scripts: a key of the wrong type changes nothing ------------------------------------------------
def test_a_retry_onto_a_wrong_scheduled_key_keeps_the_task_held(backend: Backend) -> None:
    broker = broker_of(backend)
    backend.client.hset("jobs_processing", WID, TASK)
    backend.client.rpush("jobs_scheduled", "someone else's list")
    with pytest.raises(BrokerCommandError, match="WRONGTYPE key jobs_scheduled is not the zset"):
        broker.requeue(WID, TASK, delay=5)
    assert backend.client.hget("jobs_processing", WID) == TASK  # before the fix: gone from every key
    backend.client.set("jobs", "a string")
    with pytest.raises(BrokerCommandError, match="WRONGTYPE key jobs is not the list"):
        broker.requeue(WID, TASK, front=True)
    assert backend.client.hget("jobs_processing", WID) == TASK


def test_dead_letter_promote_revive_and_sweep_change_nothing_on_a_wrong_key(backend: Backend) -> None:
    broker, client = broker_of(backend), backend.client
    client.hset("jobs_processing", WID, TASK)
    client.set("jobs_dead", "a string")
    with pytest.raises(BrokerCommandError, match="jobs_dead is not the list"):
        broker.dead_letter(WID, b'{"reason":"failed"}')
    assert client.hget("jobs_processing", WID) == TASK
    with pytest.raises(BrokerCommandError, match="jobs_dead is not the list"):
        broker.sweep()
    assert client.hget("jobs_processing", WID) == TASK
    client.delete("jobs_dead")
    client.lpush("jobs_dead", b'{"reason":"failed","task":"01"}')
    client.zadd("jobs_scheduled", {b"0123456789abcdef" + TASK: 1})
    client.hset("jobs_noti", "x", "y")
    with pytest.raises(BrokerCommandError, match="jobs_noti is not the list"):
        broker.promote_and_peek()
    with pytest.raises(BrokerCommandError, match="jobs_noti is not the list"):
        broker.remove_dead_letter(b'{"reason":"failed","task":"01"}', requeue_task=b"\x01")
    assert client.zcard("jobs_scheduled") == 1 and client.llen("jobs_dead") == 1
    assert client.llen("jobs") == 0


# -- keep-alive does not depend on promotion --------------------------------------------------------
@pytest.mark.real_redis
def test_a_failing_promotion_never_lets_a_live_worker_expire(real_backend: Backend, tmp_path: Path) -> None:
    client = real_backend.client
    client.rpush("jobs_scheduled", "a list where the sorted set should be")
    Delayed(real_backend.url, load_entry_points=False).queue("jobs").enqueue(
        PyTask(f"{TASKS_MODULE}:slow", [1, 3.0]))
    worker = CliProcess(worker_args(real_backend.url, "jobs", keep_alive_timeout=1.0, keep_alive_interval=0.25,
                                    extra=["--burst"]), tmp_path, {"CHAOS_REDIS_URL": real_backend.url})
    try:
        poll(lambda: client.llen("started") == 1, 10, message="the task started")
        (worker_id,) = client.hkeys("jobs_processing")
        deadline = time.monotonic() + 2.5  # more than twice the 1 s TTL
        while time.monotonic() < deadline:
            assert client.exists(worker_id), "a live worker's id expired"
            time.sleep(0.1)
        assert worker.wait(20) == 0, worker.log()[-3000:]
    finally:
        worker.kill()
    log = worker.log()
    assert "Traceback" not in log
    failures = [line for line in log.splitlines() if "promoting scheduled tasks failed" in line]
    # one line each, spaced by backoff (0.5, 1, 2 s ...), not one every 0.5 s tick
    assert 2 <= len(failures) <= 4, log
    assert "(Redis refused a command: WRONGTYPE key jobs_scheduled is not the zset" in failures[0]
