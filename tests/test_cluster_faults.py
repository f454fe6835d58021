"""Faults on a real Redis Cluster, met by the `delayed` CLI as a user runs it: a node down, a plain
``redis://`` URL on a cluster node (MOVED), a layout that does not fit the cluster (CROSSSLOT). Each gives
one line, or a retry with backoff; a worker never crashes on them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from delayed_core import Delayed, PyTask
from delayed_core.errors import BrokerUnavailable
from delayed_redis.broker import RedisBroker
from delayed_redis.cluster import cluster_client
from tests.chaos.processes import TASKS_MODULE, CliProcess, poll, worker_args
from tests.chaos.tasks import RAN_SET
from tests.support.redis_cluster import LocalCluster, flush, queues_on_every_node, require_cluster_tools, slot_of
from tests.support.redis_server import RedisServer


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "delayed_core.cli.main", *args], capture_output=True, text=True,
                          timeout=60, check=False, env=CliProcess.environment({}))


def test_go_delayed_layout_on_a_cluster_gives_one_crossslot_line(redis_cluster: LocalCluster) -> None:
    flush(redis_cluster)
    broker = RedisBroker("jobs", cluster_client(redis_cluster.url, {}), direct=False)  # go-delayed's layout
    with pytest.raises(BrokerUnavailable) as caught:
        broker.enqueue([b"task"])
    text = str(caught.value)
    assert "\n" not in text and "different hash slots" in text and "redis+cluster://" in text


def test_a_plain_url_on_a_cluster_node_says_to_use_a_cluster_url(redis_cluster: LocalCluster, tmp_path: Path) -> None:
    flush(redis_cluster)
    node = redis_cluster.nodes[0]
    queue = next(name for name in (f"plain{i}" for i in range(100))
                 if redis_cluster.owner(slot_of(name)) is not node)
    done = _cli("info", "--broker", node.url, "--queue", queue)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "redis+cluster://" in done.stderr, done.stderr
    # A worker on that URL keeps retrying with one line per attempt, and stops cleanly.
    worker = CliProcess(worker_args(node.url, queue, extra=["--dequeue-timeout", "0.2"]), tmp_path)
    try:
        worker.wait_for_log("redis+cluster://", 30)
        assert worker.alive()
    finally:
        worker.terminate()
        worker.wait(30)
    assert "Traceback" not in worker.log(), worker.log()[-3000:]


@pytest.mark.timeout(120)
def test_a_worker_outlives_a_node_down_and_serves_the_live_shards(real_redis: RedisServer, tmp_path: Path) -> None:
    require_cluster_tools()
    cluster = LocalCluster().start()
    try:
        queues = queues_on_every_node(cluster, 3, prefix="down")  # one queue per node
        env = {"CHAOS_REDIS_URL": real_redis.url}
        extra = ["--queue", queues[1], "--queue", queues[2], "--dequeue-timeout", "0.3"]
        worker = CliProcess(worker_args(cluster.url, queues[0], slots=2, extra=extra), tmp_path, env)
        worker.wait_for_log(" ids ", 30)
        app = Delayed(cluster.url, load_entry_points=False)
        dead = cluster.owner(slot_of(queues[0]))
        dead.kill()
        # A producer gets one line for the queue whose node is down...
        with pytest.raises(BrokerUnavailable) as caught:
            app.queue(queues[0]).enqueue(PyTask(f"{TASKS_MODULE}:record", [0]))
        assert "\n" not in str(caught.value)
        # ... and the worker goes on serving the queues of the live nodes.
        for number, name in enumerate(queues[1:], start=1):
            app.queue(name).enqueue(PyTask(f"{TASKS_MODULE}:record", [number]))
        poll(lambda: real_redis.client().scard(RAN_SET) == 2, 30,
             message=f"tasks of live shards ran; worker log:\n{worker.log()[-3000:]}")
        # The node comes back (empty: no persistence): its queue works again.
        dead.start()
        cluster.wait_ok()
        poll(lambda: _enqueued(app, queues[0]), 30, message="enqueue on the restarted node")
        poll(lambda: real_redis.client().scard(RAN_SET) == 3, 30, message="the restarted node's task ran")
        assert worker.alive()
        worker.terminate()
        worker.wait(30)
        log = worker.log()
        assert "Traceback" not in log, log[-3000:]
        app.close()
    finally:
        cluster.cleanup()


def _enqueued(app: Delayed, queue: str) -> bool:
    try:
        app.queue(queue).enqueue(PyTask(f"{TASKS_MODULE}:record", [0]))
    except BrokerUnavailable:
        return False
    return True


@pytest.mark.real_redis
@pytest.mark.timeout(120)
def test_a_killed_workers_task_is_recovered_on_its_liveness_keys_expiry(redis_cluster: LocalCluster,
                                                                          real_redis: RedisServer,
                                                                          tmp_path: Path) -> None:
    """Expiry events on every primary: the sweeper hears the killed worker's {N}_alive:<id> key expire and
    sweeps at once, long before its 60 s periodic sweep."""
    flush(redis_cluster)
    queues = queues_on_every_node(redis_cluster, 3, prefix="expiry")
    env = {"CHAOS_REDIS_URL": real_redis.url}
    extra = [item for name in queues[1:] for item in ("--queue", name)]
    sweeper = CliProcess(["sweeper", "--broker", redis_cluster.url, "--queue", queues[0], *extra, "--interval", "60",
                          "--log-level", "INFO"], tmp_path, env)
    worker = CliProcess(worker_args(redis_cluster.url, queues[0], extra=extra), tmp_path, env)
    try:
        worker.wait_for_log(" ids ", 30)
        app = Delayed(redis_cluster.url, load_entry_points=False)
        app.queue(queues[2]).enqueue(PyTask(f"{TASKS_MODULE}:slow_first_time", [7, 30.0]))
        poll(lambda: real_redis.client().llen("started") == 1, 30, message="the task started")
        worker.kill()
        rescuer = CliProcess(worker_args(redis_cluster.url, queues[0], extra=extra), tmp_path, env)
        killed = time.monotonic()
        poll(lambda: real_redis.client().sismember(RAN_SET, 7), 40,
             message=f"the task ran again; sweeper log:\n{sweeper.log()[-2000:]}")
        assert time.monotonic() - killed < 20  # the periodic sweep would come after 60 s
        rescuer.terminate()
        rescuer.wait(30)
        app.close()
    finally:
        for process in (worker, sweeper):
            process.kill()
    assert "Traceback" not in sweeper.log(), sweeper.log()[-3000:]
