"""The cluster key layout under the ACL rules docs/reliability.md gives for it, as a user runs it: the
rules are read from the docs and set on a real redis-server (``key_layout = "cluster"`` in delayed.toml) or
on every node of a three-master Redis Cluster; then ``delayed worker``, ``delayed sweeper``, ``delayed
info`` and a producer script run as the ACL user, and Redis's ACL LOG says which commands it refused."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import redis

from delayed_core.testing.processes import Process
from tests.support import cli
from tests.support.redis_cluster import LocalCluster, flush
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "q"
USER, PASSWORD = "qworker", "secret"
#: what a user without the recommended rights may be refused: the optional rights (pub/sub, SCAN)
OPTIONAL = {"publish", "subscribe", "spublish", "ssubscribe", "sunsubscribe", "scan"}
#: the rights a redis+cluster:// client needs beyond the rules (docs/reliability.md)
CLUSTER_CLIENT = ["+cluster|slots", "+command"]

TASKS = textwrap.dedent('''
    import os
    import time

    from delayed_core import Delayed

    app = Delayed(os.environ["DELAYED_BROKER_URL"])


    @app.task
    def add(a, b):
        return a + b


    @app.task(retry=1)
    def boom():
        raise ValueError("boom")


    @app.task(rate_limit="600/m")
    def limited(n):
        return n


    @app.task
    def spin():
        """Short steps for 20 s (the thread executor's stop lands between two)."""
        end = time.monotonic() + 20
        while time.monotonic() < end:
            time.sleep(0.01)
''')

#: a producer: every kind of enqueue, waits for the results, cancels a scheduled task and (when asked)
#: a running one, and prints what it got
PRODUCE = textwrap.dedent('''
    import asyncio
    import json
    import sys
    import time

    from tasks import add, app, boom, limited, spin

    out = {"add": add.delay(2, 3).result(timeout=30), "scheduled": add.delay_in(0.3, 4, 4).result(timeout=30)}
    batch = app.queue("q").enqueue_many([add.task(1, 2), add.task(3, 4)], track=True)
    out["batch"] = [handle.result(timeout=30) for handle in batch]
    add.delay(5, 5, task_id="order-1")
    out["own"] = app.handle("order-1", queue="q").result(timeout=30)
    out["limited"] = [limited.delay(n).result(timeout=30) for n in range(2)]
    failing = boom.delay()
    try:
        failing.result(timeout=30)
    except Exception as exc:
        out["boom"] = [type(exc).__name__, failing.status()]
    later = add.delay_in(600, 1, 1)
    out["cancel_scheduled"] = [later.cancel(), later.status()]
    out["queued_id"] = add.delay_in(600, 2, 2).id  # for `delayed task cancel` (a worker is serving the queue)
    if "--cancel-running" in sys.argv:
        running = spin.delay()
        deadline = time.monotonic() + 30
        while running.status() != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        out["cancel_running"] = [running.cancel(), running.status()]


    async def produce_async():
        handle = await add.delay_async(7, 8)
        return await handle.result_async(timeout=30)

    out["async"] = asyncio.run(produce_async())
    print(json.dumps(out))
''')

EXPECTED = {"add": 5, "scheduled": 8, "batch": [3, 7], "own": 10, "limited": [0, 1], "boom": ["TaskFailed", "dead"],
            "cancel_scheduled": [True, "cancelled"], "async": 15}


def documented_rule(marker: str) -> list[str]:
    """The arguments after ``ACL SETUSER qworker`` of the block under ``<!-- acl:<marker> -->`` in
    docs/reliability.md."""
    text = (ROOT / "docs" / "reliability.md").read_text()
    found = re.search(rf"<!-- acl:{marker} -->\s*```\n(.*?)\n\s*```", text, re.DOTALL)
    assert found, f"docs/reliability.md has no ACL block marked acl:{marker}"
    words = found.group(1).split()
    assert words[:3] == ["ACL", "SETUSER", USER], words
    return words[3:]


#: the two documented rules, minimal and minimal + recommended
RULES = {"minimal": ("cluster-minimal",), "recommended": ("cluster-minimal", "cluster-recommended")}


def set_rule(client: redis.Redis, name: str, *extra: str) -> None:
    """``ACL SETUSER qworker`` with the documented rule ``name`` (and ``extra``), from a clean user."""
    client.execute_command("ACL", "SETUSER", USER, "reset")
    for marker in RULES[name]:
        client.execute_command("ACL", "SETUSER", USER, *documented_rule(marker))
    if extra:
        client.execute_command("ACL", "SETUSER", USER, *extra)


def refused(client: redis.Redis) -> dict[str, int]:
    """What the ACL LOG holds: the refused command, key or channel -> how many times."""
    return {str(entry["object"]): int(entry["count"]) for entry in client.acl_log(128)}


@pytest.fixture
def server(servers: list[RedisServer]) -> RedisServer:
    """A private redis-server (ACL users are set on it)."""
    servers.append(RedisServer().start())
    return servers[-1]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A user's project: tasks.py, produce.py and delayed.toml choosing the cluster key layout."""
    (tmp_path / "tasks.py").write_text(TASKS)
    (tmp_path / "produce.py").write_text(PRODUCE)
    (tmp_path / "delayed.toml").write_text(f'key_layout = "cluster"\nqueue = "{QUEUE}"\n')
    return tmp_path


def test_the_documented_rules_are_read_from_the_docs() -> None:
    minimal = documented_rule("cluster-minimal")
    assert minimal[:5] == ["on", f">{PASSWORD}", "resetkeys", "~{q}*", "resetchannels"]
    assert {"+client|id", "+client|unblock", "-@all"} <= set(minimal)
    assert {"&{q}_task:*", "+spublish", "+ssubscribe", "+sunsubscribe"} <= set(documented_rule("cluster-recommended"))


def test_the_key_pattern_holds_every_key_of_the_queue_and_none_of_another(server: RedisServer) -> None:
    admin = server.client()
    set_rule(admin, "minimal")

    def may(*argv: str) -> bool:
        return admin.execute_command("ACL", "DRYRUN", USER, *argv) == b"OK"

    for key in ("{q}", "{q}_noti", "{q}_alive:" + "ab" * 16, "{q}_task:x@q", "{q}_delayed:rate:m:f", "{q}_periodic"):
        assert may("GET", key), key
    for key in ("{qa}", "{qa}_noti", "q", "q_noti", "delayed_task:x", "delayed:periodic", "ab" * 16):
        assert not may("GET", key), key


def start_worker(folder: Path, url: str, name: str = "worker") -> Process:
    return Process(name, ["worker", "--broker", url, "--import", "tasks", "--queue", QUEUE, "--slots", "2",
                          "--executor", "thread", "--dequeue-timeout", "0.3"], folder,
                   {"DELAYED_BROKER_URL": url})


def produce(folder: Path, url: str, *args: str) -> dict[str, Any]:
    done = cli.python("produce.py", *args, cwd=folder, env={"DELAYED_BROKER_URL": url})
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("rule", ["minimal", "recommended"])
def test_worker_sweeper_info_and_producer_under_the_documented_rule(rule: str, server: RedisServer,
                                                                     folder: Path) -> None:
    """On one redis-server: every kind of tracked task completes and its result is read, ``delayed task
    show|cancel`` reads and cancels a scheduled one, a dead worker's task is recovered by the sweeper,
    ``delayed info`` shows it. Under the recommended rule Redis refuses
    nothing; under the minimal one only optional commands, and nothing fails."""
    admin = server.client()
    set_rule(admin, rule)
    admin.acl_log_reset()
    url = f"redis://{USER}:{PASSWORD}@127.0.0.1:{server.port}/0"
    worker = start_worker(folder, url)
    try:
        out = produce(folder, url, *(["--cancel-running"] if rule == "recommended" else []))
    finally:
        assert worker.stop(30) == 0, worker.log()[-3000:]
    cancel_running, queued_id = out.pop("cancel_running", None), out.pop("queued_id")
    assert out == EXPECTED
    assert "Traceback" not in worker.log()
    if rule == "recommended":
        assert cancel_running == [True, "cancelled"] and "cancelled while running" in worker.log()

    # the handle from the shell, as the user: show, cancel, show again
    show = cli.delayed("task", "show", queued_id, "--broker", url, cwd=folder)
    assert show.returncode == 0 and show.stdout.startswith(f"task {queued_id}: scheduled\n"), show.stdout + show.stderr
    cancel = cli.delayed("task", "cancel", queued_id, "--broker", url, cwd=folder)
    assert cancel.stdout == f"task {queued_id}: cancelled; it will not run\n", cancel.stdout + cancel.stderr
    shown = cli.delayed("task", "show", queued_id, "--broker", url, cwd=folder)
    assert shown.stdout.startswith(f"task {queued_id}: cancelled\n"), shown.stdout + shown.stderr

    # a task held by a dead worker (no liveness key): info shows it, the sweeper as the user requeues it
    task = msgpack.packb(["tasks:add", [1, 2]])
    admin.hset("{q}_processing", "a" * 32, task)
    info = cli.delayed("info", "--broker", url, "--queue", QUEUE, cwd=folder)
    assert info.returncode == 0 and "DEAD: the sweeper will requeue it" in info.stdout, info.stdout + info.stderr
    sweep = cli.delayed("sweeper", "--broker", url, "--queue", QUEUE, "--once", cwd=folder)
    assert sweep.returncode == 0 and "requeued 1" in sweep.stdout, sweep.stdout + sweep.stderr
    assert admin.lrange("{q}", 0, -1) == [task]
    every = cli.delayed("info", "--broker", url, cwd=folder)  # every queue: SCAN, recommended only
    assert (every.returncode == 0) == (rule == "recommended"), every.stdout + every.stderr

    denied = refused(admin)
    if rule == "recommended":
        assert denied == {}
    else:
        assert denied and set(denied) <= OPTIONAL, denied
    # the user really is limited to its queue
    with pytest.raises(redis.exceptions.NoPermissionError):
        redis.Redis.from_url(url).set("{other}", "x")


@pytest.fixture
def cluster(redis_cluster: LocalCluster) -> Iterator[LocalCluster]:
    """The session's cluster, emptied, with the ACL user removed from every node afterwards."""
    flush(redis_cluster)
    yield redis_cluster
    for node in redis_cluster.live_nodes():
        node.client().execute_command("ACL", "DELUSER", USER)


def cluster_url(cluster: LocalCluster) -> str:
    return f"redis+cluster://{USER}:{PASSWORD}@" + ",".join(node.address for node in cluster.nodes)


@pytest.mark.timeout(180)
def test_worker_and_producer_on_a_redis_cluster_under_the_documented_rules(cluster: LocalCluster,
                                                                           folder: Path) -> None:
    """The same producer and a worker on a three-master Redis Cluster, the rules plus ``+cluster|slots
    +command`` on every node: nothing refused on any node. Without those two the client cannot start."""
    nodes = cluster.live_nodes()
    for node in nodes:
        set_rule(node.client(), "recommended", *CLUSTER_CLIENT)
        node.client().acl_log_reset()
    url = cluster_url(cluster)
    worker = start_worker(folder, url)
    try:
        out = produce(folder, url, "--cancel-running")
    finally:
        assert worker.stop(30) == 0, worker.log()[-3000:]
    assert out.pop("cancel_running") == [True, "cancelled"] and out.pop("queued_id")
    assert out == EXPECTED
    assert [refused(node.client()) for node in nodes] == [{}] * len(nodes)

    for node in nodes:
        set_rule(node.client(), "recommended")
    without = cli.delayed("info", "--broker", url, "--queue", QUEUE, cwd=folder)
    assert without.returncode != 0 and "Traceback" not in without.stderr, without.stderr
    assert "Cluster mode is not enabled on this node" in without.stderr  # redis-py's words for the refusal
    assert any("cluster|slots" in refused(node.client()) for node in nodes)
