"""Redis in bad states (issue 10, items 2 and 5): BUSY, READONLY, out of memory, keys of the wrong type.

Every test runs real redis-server processes; the sweeper and worker tests run the ``delayed`` CLI as
subprocesses, as a user would.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pytest
import redis

from delayed_core import Delayed, PyTask
from delayed_core.errors import BrokerUnavailable
from delayed_redis.errors import BrokerBusy, BrokerOutOfMemory, BrokerReadOnly
from tests.chaos.processes import TASKS_MODULE, CliProcess, poll, sweeper_args, worker_args
from tests.support.redis_server import RedisServer
from tests.support.redis_server import start_server as start

pytestmark = pytest.mark.real_redis
DEAD_ID = "d" * 32  # a worker id with no liveness key
FOREIGN_ID = "f" * 32  # a worker id whose key is another program's hash



def task(task_id: int, sleep_ms: float = 0) -> PyTask:
    return PyTask(f"{TASKS_MODULE}:record", [task_id, sleep_ms])


def fill_until_oom(app: Delayed, queue: str = "q") -> int:
    """Enqueue small tasks until Redis refuses for lack of memory; return how many were accepted."""
    client = redis.Redis.from_url(app.config.broker_url)
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used + 300_000)  # a small margin: a few thousand tasks
    handle = app.queue(queue)
    for count in range(100_000):
        try:
            handle.enqueue(task(count))
        except BrokerOutOfMemory as exc:
            message = str(exc)
            assert message.startswith("Redis is out of memory (maxmemory reached): "), message
            assert "\n" not in message and isinstance(exc, BrokerUnavailable)
            return count
    raise AssertionError("Redis never ran out of memory")


# -- item 2: one-line, retryable errors -----------------------------------------------------------
def test_readonly_and_busy_servers_raise_one_line_broker_unavailable(servers: list[RedisServer]) -> None:
    primary = start(servers, "--busy-reply-threshold", "50")
    replica = start(servers, "--replicaof", primary.host, str(primary.port))
    read_only = r"^Redis is read-only \(a replica\?\): You can.t write against a read only replica"
    with pytest.raises(BrokerReadOnly, match=read_only):
        Delayed(replica.url, load_entry_points=False).queue("q").enqueue(task(1))

    blocker = threading.Thread(target=lambda: _run_forever(primary), daemon=True)
    blocker.start()
    app = Delayed(primary.url, load_entry_points=False)
    try:
        deadline = time.monotonic() + 10
        while True:  # the script becomes BUSY after the 50 ms threshold
            try:
                app.queue("q").enqueue(task(1))
            except BrokerBusy as exc:
                assert str(exc).startswith("Redis is busy running a script: BUSY ")
                break
            assert time.monotonic() < deadline, "Redis never answered BUSY"
            time.sleep(0.02)
    finally:
        primary.client().script_kill()
        blocker.join(10)


def test_a_worker_on_a_read_only_replica_waits_then_serves_once_promoted(
        servers: list[RedisServer], real_redis: RedisServer, tmp_path: Path) -> None:
    primary = start(servers)
    replica = start(servers, "--replicaof", primary.host, str(primary.port))
    worker = CliProcess(worker_args(replica.url, "q"), tmp_path, {"CHAOS_REDIS_URL": real_redis.url})
    try:
        log = worker.wait_for_log("retrying in", 15)
        assert (f"cannot go online on the broker at {replica.url} (Redis is read-only (a replica?): You can't "
                "write against a read only replica.") in log
        worker.wait_for_log("retrying in 1.", 15)  # backoff: 0.5 s, then 1 s ...; still running
        replica.client().execute_command("REPLICAOF", "NO", "ONE")  # the replica is promoted
        worker.wait_for_log("worker serving queue 'q'", 15)
        Delayed(replica.url, load_entry_points=False).queue("q").enqueue(task(7))
        poll(lambda: real_redis.client().lrange("ran", 0, -1) == [b"7"], 10, message="the task ran")
        assert "Traceback" not in worker.log()
    finally:
        worker.kill()


def _run_forever(server: RedisServer) -> None:
    with contextlib.suppress(redis.exceptions.ResponseError):  # killed by SCRIPT KILL
        server.client().eval("while true do end", 0)


def test_sweeper_skips_a_foreign_key_and_backs_off_per_queue(servers: list[RedisServer], tmp_path: Path) -> None:
    server = start(servers)
    admin = server.client()
    app = Delayed(server.url, load_entry_points=False)
    raw = app.serializer.dumps(task(1))
    # queue "good": one task held by a dead worker, one by a worker whose id names someone's hash
    admin.hset("good_processing", mapping={DEAD_ID: raw, FOREIGN_ID: raw})
    admin.hset(FOREIGN_ID, "field", "value")
    # queue "bad": its dead-letter key is a string, so its sweep fails until someone fixes it
    admin.set("bad_dead", "not a list")
    admin.hset("bad_processing", DEAD_ID, raw)
    sweeper = CliProcess([*sweeper_args(server.url, "good", interval=0.2), "--queue", "bad"], tmp_path)
    try:
        sweeper.wait_for_log("queue good: requeued 1 lost task(s)", 10)
        sweeper.wait_for_log(f"whose worker id names a key that is not a string (another program's "
                             f"key?): {FOREIGN_ID}", 10)
        # waited for, not read at once: the bad queue's sweep logs its failure just after the good one's
        sweeper.wait_for_log("queue bad: sweep failed (Redis refused a command: WRONGTYPE key bad_dead is not the list",
                             10)
        assert admin.lrange("good", 0, -1) == [raw]
        assert admin.hgetall("good_processing") == {FOREIGN_ID.encode(): raw}  # skipped, not lost
        assert admin.hgetall("bad_processing") == {DEAD_ID.encode(): raw}  # nothing changed on failure
        time.sleep(2.0)  # the span whose failures are counted: backoff 0.5, 1, 2 s, not the 0.2 s interval
        failures = sweeper.log().count("queue bad: sweep failed")
        assert 2 <= failures <= 4, sweeper.log()
        admin.delete("bad_dead")  # the operator fixes the key: the next retry succeeds
        sweeper.wait_for_log("queue bad: requeued 1 lost task(s)", 10)
        assert sweeper.alive() and "Traceback" not in sweeper.log()
        sweeper.terminate()
        assert sweeper.wait(10) == 0
    finally:
        sweeper.kill()
    assert admin.lrange("bad", 0, -1) == [raw]


# -- item 5: at maxmemory ---------------------------------------------------------------------------
def test_a_worker_started_at_maxmemory_drains_the_queue(servers: list[RedisServer], real_redis: RedisServer,
                                                        tmp_path: Path) -> None:
    server = start(servers, "--maxmemory-policy", "noeviction")
    app = Delayed(server.url, load_entry_points=False)
    count = fill_until_oom(app)
    assert count > 100
    with pytest.raises(BrokerOutOfMemory) as refused:  # a batch (MULTI pipeline) too, in one clean line
        app.queue("q").enqueue_many([task(n) for n in range(count, count + 50)])
    assert str(refused.value) == ("Redis is out of memory (maxmemory reached): command not allowed when used "
                                  "memory > 'maxmemory'.")
    worker = CliProcess(worker_args(server.url, "q", extra=["--burst"]), tmp_path,
                        {"CHAOS_REDIS_URL": real_redis.url})
    assert worker.wait(60) == 0, worker.log()[-3000:]
    assert server.client().llen("q") == 0 and server.client().hlen("q_processing") == 0
    ran = real_redis.client()
    assert ran.llen("ran") == count and ran.scard("ran_set") == count
    assert "Traceback" not in worker.log()


def test_keep_alive_holds_at_maxmemory_so_no_task_runs_twice(servers: list[RedisServer], real_redis: RedisServer,
                                                            tmp_path: Path) -> None:
    server = start(servers, "--maxmemory-policy", "noeviction")
    admin, ran = server.client(), real_redis.client()
    app = Delayed(server.url, load_entry_points=False, max_recoveries=0)
    app.queue("q").enqueue(PyTask(f"{TASKS_MODULE}:slow", [1, 3.0]))
    worker = CliProcess(worker_args(server.url, "q", keep_alive_timeout=1.0, keep_alive_interval=0.25,
                                    extra=["--burst"]), tmp_path, {"CHAOS_REDIS_URL": real_redis.url})
    try:
        poll(lambda: ran.llen("started") == 1, 10, message="the task started")
        (worker_id,) = admin.hkeys("q_processing")
        # Memory full: any new key is refused from now on.
        admin.config_set("maxmemory", int(admin.info("memory")["used_memory"]) + 50_000)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            for n in range(10_000):
                admin.rpush("filler", b"x" * 1000 + str(n).encode())
        # 2.5 s: more than twice the 1 s TTL. Sweeping all along must find the worker alive.
        sweeper = app.sweeper(["q"])
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            for report in sweeper.sweep_once():
                assert report.requeued == 0
            assert admin.exists(worker_id), "the running worker's id expired"
            time.sleep(0.1)
        assert worker.wait(20) == 0, worker.log()[-3000:]
    finally:
        worker.kill()
    assert ran.lrange("started", 0, -1) == [b"1"] and ran.lrange("ran", 0, -1) == [b"1"]
    assert admin.llen("q") == 0 and admin.hlen("q_processing") == 0
    assert "keep-alive failed" not in worker.log()


def test_a_running_task_is_cancelled_at_maxmemory(servers: list[RedisServer]) -> None:
    """With Redis full, cancel() still stops a running task whose record is a hash (an id of the caller's):
    the stop request goes out, and the worker settles the record as cancelled."""
    from tests import handle_tasks
    from tests.test_handles import SETTINGS, bound

    server = start(servers, "--maxmemory-policy", "noeviction")
    admin = server.client()
    app = Delayed(server.url, load_entry_points=False, **SETTINGS)
    handle = bound(app, handle_tasks.spin).delay(60, "never", task_id="stop-me")
    assert admin.type("delayed_task:stop-me") == b"hash"
    worker = app.worker(executor="thread")
    thread = threading.Thread(target=lambda: worker.run(install_signals=False), daemon=True)
    thread.start()
    try:
        poll(lambda: handle.status() == "running", 10, message="the task started")
        admin.config_set("maxmemory", int(admin.info("memory")["used_memory"]) + 50_000)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            for n in range(10_000):
                admin.rpush("filler", b"x" * 1000 + str(n).encode())
        assert handle.cancel(wait=12) is True
        assert handle.status() == "cancelled"
    finally:
        worker.stop()
        thread.join(20)
