"""The cluster key layout and redis+cluster:// URLs: names, parsing, and a user's round trip on a real
three-master cluster (a producer, the asyncio producer, a `delayed worker` serving queues on every shard,
a scheduled task, `delayed info` and `delayed doctor`)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import pytest

from delayed_core import Delayed, PyTask
from delayed_core.errors import ConfigError
from delayed_redis.cluster import parse_cluster_url
from delayed_redis.keys import CLUSTER, GO_DELAYED, QueueKeys, layout_for
from tests.chaos.processes import TASKS_MODULE, CliProcess, poll, worker_args
from tests.chaos.tasks import RAN_SET
from tests.support.redis_cluster import LocalCluster, flush, queues_on_every_node, slot_of
from tests.support.redis_server import RedisServer


def test_go_delayed_layout_is_unchanged() -> None:
    keys = QueueKeys.for_queue("jobs")
    assert keys.all() == ("jobs", "jobs_noti", "jobs_processing", "jobs_scheduled", "jobs_dead", "jobs_recoveries",
                          "jobs_workers", "jobs_poison", "jobs_worker_info", "jobs_throughput", "jobs_bound")
    assert keys.liveness("abc") == "abc" and keys.periodic_record("f") == "delayed:periodic:f"
    assert keys.rate("delayed:rate:m:f") == "delayed:rate:m:f"


def test_cluster_layout_puts_every_key_of_a_queue_in_one_slot() -> None:
    keys = QueueKeys.for_queue("jobs", CLUSTER)
    names = [*keys.all(), keys.liveness("abc"), keys.periodic, keys.periodic_record("m:f"),
             keys.rate("delayed:rate:m:f"), keys.rate("delayed:rate:m:f") + ":reserved"]
    assert keys.queue == "{jobs}" and keys.notifications == "{jobs}_noti" and keys.liveness("w") == "{jobs}_alive:w"
    assert {slot_of(name) for name in names} == {slot_of("jobs")}


def test_layout_choice_and_bad_names() -> None:
    assert layout_for("redis+cluster://h:1") == CLUSTER and layout_for("rediss+cluster://h:1") == CLUSTER
    assert layout_for("redis://h:1") == GO_DELAYED
    with pytest.raises(ConfigError, match="brace"):
        QueueKeys.for_queue("a{b}", CLUSTER)
    with pytest.raises(ConfigError, match="layout"):
        QueueKeys.for_queue("a", "sharded")


def test_cluster_urls_parse_and_never_echo_a_password() -> None:
    nodes, options = parse_cluster_url("rediss+cluster://u:secret@h1:7000,h2,[::1]:7002?ssl_cert_reqs=none")
    assert nodes == [("h1", 7000), ("h2", 6379), ("::1", 7002)]
    assert options["password"] == "secret" and options["username"] == "u" and options["ssl"] is True
    with pytest.raises(ConfigError) as caught:
        Delayed("redis+cluster://u:secret@h1:notaport", load_entry_points=False).queue("q").enqueue(
            PyTask("m:f", []))
    assert "secret" not in str(caught.value) and "\n" not in str(caught.value)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "delayed_core.cli.main", *args], capture_output=True, text=True,
                          timeout=60, check=False, env=CliProcess.environment({}))


@pytest.mark.timeout(90)
def test_a_worker_serves_queues_on_every_shard(redis_cluster: LocalCluster, real_redis: RedisServer, tmp_path) -> None:
    flush(redis_cluster)
    queues = queues_on_every_node(redis_cluster, 3, prefix="user")
    app = Delayed(redis_cluster.url, load_entry_points=False)
    for number, name in enumerate(queues):
        app.queue(name).enqueue(PyTask(f"{TASKS_MODULE}:record", [number]))
    app.queue(queues[1]).enqueue(PyTask(f"{TASKS_MODULE}:record", [3]), delay=0.5)  # promoted by the worker

    async def produce() -> None:
        queue = app.async_queue(queues[2])
        await queue.enqueue(PyTask(f"{TASKS_MODULE}:record", [4]))
        await queue.enqueue_many([PyTask(f"{TASKS_MODULE}:record", [5]), PyTask(f"{TASKS_MODULE}:record", [6])])
    asyncio.run(produce())
    info = _cli("info", "--broker", redis_cluster.url, *(f"--queue={name}" for name in queues))
    assert info.returncode == 0 and f"queue {queues[2]}: 4 waiting" in info.stdout, info.stdout + info.stderr

    extra = [item for name in queues[1:] for item in ("--queue", name)] + ["--dequeue-timeout", "0.3"]
    worker = CliProcess(worker_args(redis_cluster.url, queues[0], slots=2, extra=extra), tmp_path,
                        {"CHAOS_REDIS_URL": real_redis.url})
    try:
        poll(lambda: real_redis.client().scard(RAN_SET) == 7, 40, message="every task ran")
        started = time.monotonic()
        worker.terminate()
        assert worker.wait(30) == 0
        # wake() ends the idle waits at once: no dequeue timeout to sit out (0.3 s here, a loose bound)
        assert time.monotonic() - started < 20
    finally:
        worker.kill()
    assert "Traceback" not in worker.log(), worker.log()[-3000:]
    doctor = _cli("doctor", "--broker", redis_cluster.url, *(f"--queue={name}" for name in queues))
    assert "key-layout" in doctor.stdout and "3 primaries" in doctor.stdout, doctor.stdout + doctor.stderr
    assert "ERROR" not in doctor.stdout, doctor.stdout
    app.close()


def test_a_wait_leaves_no_blpop_blocked(redis_cluster: LocalCluster) -> None:
    """One BLPOP per queue: when one queue wakes the slot, the other helpers' BLPOPs are ended before the
    wait returns (CLIENT UNBLOCK). One left blocked would pop the notification of a task enqueued just
    after and hold it back from the slot's next look at the queues ahead (a priority inversion)."""
    from delayed_redis.cluster import cluster_client
    from delayed_redis.cluster_wait import SlotWaits

    flush(redis_cluster)
    first, second = queues_on_every_node(redis_cluster, 2, prefix="wait")
    node = redis_cluster.owner(slot_of(first)).client()
    before = node.info("clients")["blocked_clients"]
    client = cluster_client(redis_cluster.url, {})
    keys = [QueueKeys.for_queue(first, CLUSTER).notifications, QueueKeys.for_queue(second, CLUSTER).notifications]
    waits = SlotWaits(client)
    client.rpush(keys[1], "1")
    assert waits.wait(keys, 5.0) == 1  # the second queue's notification woke it
    assert node.info("clients")["blocked_clients"] == before  # the first queue's BLPOP was ended
    client.rpush(keys[0], "1")
    assert client.llen(keys[0]) == 1  # so a notification that comes now stays in its list
    assert waits.wait(keys, 5.0) == 0  # and the next wait takes it
    # A wake (a stop) ends a wait at once, long before its timeout.
    threading.Timer(0.2, waits.wake).start()
    started = time.monotonic()
    assert waits.wait(keys, 30.0) is None and time.monotonic() - started < 10
    assert node.info("clients")["blocked_clients"] == before
    waits.close()  # its helper threads end now, not after their own 30 s wait (later tests count threads)
    client.close()


def test_periodic_records_live_in_their_queues_slot(redis_cluster: LocalCluster) -> None:
    """The periodic claim script touches the record, the set of names and the queue: one slot."""
    flush(redis_cluster)
    app = Delayed(redis_cluster.url, load_entry_points=False)
    broker = app.broker("ticks")
    assert broker.periodic_start("m:f", "100", {"cron": "* * * * *"}) == "100"
    assert broker.periodic_claim("m:f", "100", "160", [b"task"], {"next": "220"}) == (True, "160")
    assert broker.periodic_claim("m:f", "100", "160", [b"task"], {}) == (False, "160")  # claimed once
    broker.periodic_note("m:f", {"outcome": "ok"})
    assert broker.periodic_records()["m:f"]["outcome"] == "ok"
    assert len(broker) == 1
    node = redis_cluster.owner(slot_of("ticks")).client()
    assert node.exists("{ticks}_periodic", "{ticks}_periodic:m:f", "{ticks}") == 3
    app.close()


def test_cluster_replies_are_one_retryable_line() -> None:
    import redis

    from delayed_core.errors import BrokerUnavailable
    from delayed_redis.errors import BrokerClusterError, translate

    cases = {redis.exceptions.MovedError("3999 10.0.0.2:7000"): "redis+cluster://",
             redis.exceptions.AskError("3999 10.0.0.2:7000"): "redis+cluster://",
             redis.exceptions.ResponseError("CROSSSLOT Keys in request don't hash to the same slot"): "layout",
             redis.exceptions.TryAgainError("Multiple keys request during rehashing of slot"): "being moved",
             redis.exceptions.ClusterDownError("The cluster is down"): "down",
             redis.exceptions.ClusterError("TTL exhausted."): "redirecting"}
    for error, words in cases.items():
        translated = translate(error)
        assert isinstance(translated, BrokerClusterError) and isinstance(translated, BrokerUnavailable)
        assert words in str(translated) and "\n" not in str(translated), (error, translated)
