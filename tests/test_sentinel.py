"""Redis Sentinel: URL parsing, one-line errors, and workers draining through a real failover.

The failover tests start a master, a replica and three ``redis-sentinel`` processes (tests/support/
sentinel.py), run a real worker and sweeper (``python -m delayed_core.cli.main``), enqueue from a
producer thread, SIGKILL the master, and count what was acknowledged but never ran. Each run is
recorded in a separate redis-server, so that the failover cannot touch the record.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from delayed_core import BrokerUnavailable, ConfigError, Delayed, PyTask
from delayed_core.config import load_config
from delayed_redis.direct import DirectCaller
from delayed_redis.sentinel import parse_sentinel_url, sentinel_client
from tests.chaos.processes import CliProcess, poll, sweeper_args, worker_args
from tests.support.redis_server import RedisServer, free_port
from tests.support.sentinel import SentinelSetup

QUEUE = "failover"
#: producer threads, each with its own connection, enqueueing as fast as they can
PRODUCERS = 4
TASKS = "tests.chaos.tasks"


# -- URLs (no processes) -------------------------------------------------------------------------
def test_url_forms() -> None:
    parsed = parse_sentinel_url("redis+sentinel://:pw@10.0.0.1:26380,sentinel-b,[::1]:5000/mymaster/3"
                                "?sentinel_password=spw&socket_timeout=2")
    assert parsed.sentinels == [("10.0.0.1", 26380), ("sentinel-b", 26379), ("::1", 5000)]
    assert parsed.service == "mymaster"
    assert parsed.node_options == {"password": "pw", "db": 3, "socket_timeout": 2.0}
    assert parsed.sentinel_options == {"password": "spw"}
    tls = parse_sentinel_url("rediss+sentinel://app:p%40ss@h:1/svc?ssl_cert_reqs=none&sentinel_username=s")
    assert tls.node_options == {"username": "app", "password": "p@ss", "db": 0, "ssl": True,
                                "ssl_cert_reqs": "none"}
    assert tls.sentinel_options == {"username": "s", "ssl_cert_reqs": "none", "ssl": True}


@pytest.mark.parametrize("url", [
    "redis+sentinel://:s3cret@h:1",                 # no service
    "redis+sentinel://:s3cret@h:1/svc/0/extra",     # too many path parts
    "redis+sentinel://:s3cret@h:port/svc",          # bad port
    "redis+sentinel://:s3cret@/svc",                # no sentinel
])
def test_bad_urls_give_one_line_without_the_password(url: str) -> None:
    app = Delayed(url, load_entry_points=False)
    with pytest.raises(ConfigError) as error:
        app.queue("q")
    message = str(error.value)
    assert "\n" not in message and "s3cret" not in message and message.startswith("invalid sentinel broker URL")


def test_scheme_picks_the_redis_broker_and_passwords_are_redacted() -> None:
    url = "rediss+sentinel://:s3cret@h:1,h:2/svc?sentinel_password=t0p"
    assert Delayed(url, load_entry_points=False).broker_name == "redis"
    redacted = load_config({"broker_url": url}).redacted_broker_url
    assert "s3cret" not in redacted and "t0p" not in redacted
    assert redacted == "rediss+sentinel://:***@h:1,h:2/svc?sentinel_password=***"


# -- real sentinels ------------------------------------------------------------------------------
def require_sentinel() -> None:
    if shutil.which("redis-sentinel") is None or shutil.which("redis-server") is None:
        pytest.skip("redis-sentinel is not installed (.ci/run installs it)")


@pytest.fixture
def sentinel() -> Iterator[SentinelSetup]:
    require_sentinel()
    setup = SentinelSetup().start()
    yield setup
    setup.cleanup()


@pytest.fixture
def records() -> Iterator[RedisServer]:
    """Where tasks record their runs: a plain redis-server outside the failover."""
    server = RedisServer().start()
    yield server
    server.cleanup()


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CliProcess.command_prefix(), *args], capture_output=True, text=True, cwd=tmp_path,
                          env=CliProcess.environment({}), timeout=60)


def test_cli_wrong_service_and_unreachable_sentinels_give_one_line(sentinel: SentinelSetup,
                                                                    tmp_path: Path) -> None:
    ports = ",".join(f"127.0.0.1:{port}" for port in sentinel.sentinel_ports)
    wrong = cli(tmp_path, "info", "--broker", f"redis+sentinel://:s3cret@{ports}/nosuchservice")
    assert wrong.returncode == 1
    assert wrong.stderr.count("\n") == 1 and "No master found for 'nosuchservice'" in wrong.stderr
    assert "does not monitor it" in wrong.stderr
    unreachable = cli(tmp_path, "info", "--broker", f"redis+sentinel://:s3cret@127.0.0.1:{free_port()}/mymaster")
    assert unreachable.returncode == 1
    assert unreachable.stderr.count("\n") == 1 and "cannot reach the broker" in unreachable.stderr
    assert "unreachable (Error 111" in unreachable.stderr and len(unreachable.stderr) < 300
    for result in (wrong, unreachable):
        assert "s3cret" not in result.stderr + result.stdout and "Traceback" not in result.stderr
    ok = cli(tmp_path, "info", "--broker", sentinel.url)
    assert ok.returncode == 0, ok.stderr


def test_a_worker_with_a_wrong_service_retries_with_backoff_and_stops_cleanly(
    sentinel: SentinelSetup, tmp_path: Path
) -> None:
    url = sentinel.url.replace("/mymaster/", "/nosuchservice/")
    worker = CliProcess(worker_args(url, QUEUE), tmp_path)
    poll(lambda: worker.log().count("No master found for 'nosuchservice'") >= 3, 20, message="three retries")
    assert worker.alive()
    delays = [float(d) for d in re.findall(r"retrying in ([0-9.]+)s", worker.log())]
    assert delays[:3] == sorted(delays[:3]) and delays[2] > delays[0], "the delays grow (backoff, no hot loop)"
    worker.terminate()
    assert worker.wait(20) == 0
    assert "Traceback" not in worker.log()


class Producer(threading.Thread):
    """Enqueues ``record(i)`` for i = first, first + step ... as fast as it can until stopped, and remembers
    which enqueues were acknowledged (returned without an error) and when they were sent."""

    def __init__(self, url: str, first: int, step: int, **settings: object) -> None:
        super().__init__(daemon=True)
        self.app = Delayed(url, load_entry_points=False, **settings)
        self.first, self.step = first, step
        self.acknowledged: list[tuple[int, float]] = []
        self.refused = 0
        self.stop = threading.Event()

    def run(self) -> None:
        queue = self.app.queue(QUEUE)
        task_id = self.first
        while not self.stop.is_set():
            sent_at = time.monotonic()  # when the enqueue began: one begun after the kill met the new master
            try:
                queue.enqueue(PyTask(f"{TASKS}:record", [task_id]))
                self.acknowledged.append((task_id, sent_at))
            except BrokerUnavailable:
                self.refused += 1  # not acknowledged: the producer would retry it (possibly a duplicate)
                self.stop.wait(0.05)
            task_id += self.step


def run_failover(sentinel: SentinelSetup, records: RedisServer, tmp_path: Path,
                 **settings: object) -> dict[str, float]:
    """Drain through a SIGKILL of the master; return the figures."""
    env = {"CHAOS_REDIS_URL": records.url}
    worker = CliProcess(worker_args(sentinel.url, QUEUE, slots=2, keep_alive_timeout=5, keep_alive_interval=1),
                        tmp_path, env)
    sweeper = CliProcess(sweeper_args(sentinel.url, QUEUE, interval=1), tmp_path, env)
    worker.wait_for_log("worker serving queue", 20)
    producers = [Producer(sentinel.url, first, PRODUCERS, **settings) for first in range(PRODUCERS)]
    for producer in producers:
        producer.start()
    ran = records.client()

    def acknowledged_after(moment: float) -> set[int]:
        return {task_id for p in producers for task_id, at in list(p.acknowledged) if at > moment}

    try:
        poll(lambda: ran.scard("ran_set") >= 300, 30, message="tasks flowing before the kill")
        old_port = sentinel.master.port
        killed_at = time.monotonic()
        sentinel.master.kill()
        new_port = sentinel.wait_for_new_master(old_port)
        failover_seconds = time.monotonic() - killed_at
        # The old master comes back (a restarted machine); the sentinels make it a replica of the new one.
        sentinel.master.start()

        def flowing_again() -> bool:
            after = acknowledged_after(killed_at)
            return bool(after) and any(int(x) in after for x in ran.smembers("ran_set"))

        poll(flowing_again, 60, interval=0.01, message="a task acknowledged after the kill ran")
        flow_seconds = time.monotonic() - killed_at
        poll(lambda: len(acknowledged_after(killed_at)) >= 200, 60,
             message="200 enqueues acknowledged after the failover")
    finally:
        for producer in producers:
            producer.stop.set()
        for producer in producers:
            producer.join(30)
    new_master = redis.Redis("127.0.0.1", new_port)
    poll(lambda: new_master.llen(QUEUE) == 0 and new_master.hlen(f"{QUEUE}_processing") == 0, 120,
         message="the queue drained on the new master")
    acknowledged = acknowledged_after(0)
    ran_ids = {int(x) for x in ran.smembers("ran_set")}
    info = cli(tmp_path, "info", "--broker", sentinel.url)
    assert info.returncode == 0, info.stderr  # the CLI follows the failover too
    for process in (worker, sweeper):
        assert process.alive(), process.log()[-3000:]
        process.terminate()
        assert process.wait(30) == 0
        assert "Traceback" not in process.log()
    figures = {"failover_s": failover_seconds, "flow_again_s": flow_seconds,
               "acknowledged": len(acknowledged), "lost": len(acknowledged - ran_ids),
               "refused": sum(p.refused for p in producers),
               "runs": ran.llen("ran"), "distinct_runs": len(ran_ids)}
    print(f"\nsentinel failover {settings or 'wait_replicas=0'}: {figures}")
    return figures


@pytest.mark.real_redis
def test_workers_follow_a_failover_without_wait_replicas(sentinel: SentinelSetup, records: RedisServer,
                                                         tmp_path: Path) -> None:
    figures = run_failover(sentinel, records, tmp_path)
    assert figures["flow_again_s"] < 30
    # Asynchronous replication: the last writes before the kill may be lost; the number is reported.
    assert figures["lost"] <= figures["acknowledged"]


@pytest.mark.real_redis
def test_with_wait_replicas_nothing_acknowledged_is_lost(sentinel: SentinelSetup, records: RedisServer,
                                                         tmp_path: Path) -> None:
    figures = run_failover(sentinel, records, tmp_path, wait_replicas=1, replica_wait_timeout=0.5)
    assert figures["lost"] == 0
    assert figures["flow_again_s"] < 45


def test_direct_connections_ask_the_sentinels_and_follow_a_failover(sentinel: SentinelSetup) -> None:
    """Regression: the per-thread hot-path connections used to dial their default address (localhost:6379)
    instead of the master, and after a failover kept redialling the dead master."""
    # A default port nothing listens on: a connection that skipped the sentinels fails instead of
    # reaching some other Redis.
    client = sentinel_client(sentinel.url, {"host": "127.0.0.1", "port": free_port(), "socket_timeout": 5})
    call = DirectCaller(client.connection_pool)
    assert call("SET", "k", "1") == b"OK"
    assert sentinel.master.client().get("k") == b"1"
    old_port = sentinel.master.port
    sentinel.master.kill()
    new_port = sentinel.wait_for_new_master(old_port)

    def written() -> bool:
        try:
            return call("SET", "k", "2") == b"OK"
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    poll(written, 20, interval=0.2, message="the direct connection reached the new master")
    assert redis.Redis("127.0.0.1", new_port).get("k") == b"2"


def test_wait_replicas_acknowledges_single_and_batch_enqueues(sentinel: SentinelSetup) -> None:
    app = Delayed(sentinel.url, load_entry_points=False, wait_replicas=1)
    queue = app.queue(QUEUE)
    queue.enqueue(PyTask(f"{TASKS}:record", [1]))
    queue.enqueue_many([PyTask(f"{TASKS}:record", [i]) for i in range(2, 12)])
    # WAIT returned, so the replica has every task already: no polling needed.
    assert sentinel.replica.client().llen(QUEUE) == 11
    assert sentinel.replica.client().llen(f"{QUEUE}_noti") == 11
    app.close()


def test_wait_replicas_without_replicas_refuses_the_enqueue_in_one_line(real_redis: RedisServer) -> None:
    def waits() -> int:  # the session's server: other tests' WAITs count too
        return int(real_redis.client().info("commandstats").get("cmdstat_wait", {}).get("calls", 0))

    start = waits()
    app = Delayed(real_redis.url, load_entry_points=False, wait_replicas=1, replica_wait_timeout=0.05)
    queue = app.queue(QUEUE)
    for enqueue in (lambda: queue.enqueue(PyTask(f"{TASKS}:record", [1])),
                    lambda: queue.enqueue_many([PyTask(f"{TASKS}:record", [i]) for i in range(3)])):
        with pytest.raises(BrokerUnavailable, match=r"^the enqueue reached the master but only 0 of 1 replica"):
            enqueue()
    # Off (the default): no WAIT is sent at all.
    before = waits()
    Delayed(real_redis.url, load_entry_points=False).queue(QUEUE).enqueue(PyTask(f"{TASKS}:record", [9]))
    assert waits() == before == start + 2


def test_async_queue_enqueues_through_the_sentinels(sentinel: SentinelSetup) -> None:
    """And a wrong service name gives the sync client's one-line reason per sentinel, not redis-py's
    message (the repr of every sentinel client)."""
    import asyncio

    async def produce(url: str) -> None:
        queue = Delayed(url, load_entry_points=False).async_queue(QUEUE)
        try:
            await queue.enqueue(PyTask(f"{TASKS}:record", [1]))
        finally:
            await queue.close()

    asyncio.run(produce(sentinel.url))
    assert sentinel.master.client().llen(QUEUE) == 1
    with pytest.raises(BrokerUnavailable) as raised:
        asyncio.run(produce(sentinel.url.replace("/mymaster/", "/nosuchservice/")))
    message = str(raised.value)
    assert message.startswith("No master found for 'nosuchservice': ") and "\n" not in message
    assert message.count("does not monitor it") == 3 and len(message) < 300, message
