"""Task handles on a real three-master Redis Cluster, as a user drives them: tasks.py in a fresh folder on
two queues whose slots are on different nodes, producer scripts, ``delayed worker`` and ``delayed task
show|cancel`` as subprocesses on a ``redis+cluster://`` URL; and the commands a waiter sends there."""

from __future__ import annotations

import asyncio
import json
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from delayed_core import Delayed, PyTask
from delayed_core.handles import NoResult
from delayed_core.testing.processes import Process, wait_until
from delayed_redis.keys import CLUSTER, QueueKeys
from tests.support import cli
from tests.support.redis_cluster import LocalCluster, flush, queues_on_every_node, require_cluster_tools, slot_of

TASKS = textwrap.dedent('''
    import os
    import time

    from delayed_core import Delayed

    FIRST, SECOND = os.environ["QUEUE_A"], os.environ["QUEUE_B"]
    app = Delayed(os.environ["DELAYED_BROKER_URL"], queue=FIRST)


    @app.task
    def add(a, b):
        return a + b


    @app.task(queue=SECOND)
    def shout(text):
        return text.upper()


    @app.task(queue=SECOND, unique_for=60)
    def rebuild(shop):
        return f"rebuilt {shop}"


    @app.task(queue=SECOND)
    def spin():
        """A minute of short steps (the thread executor's stop lands between two)."""
        end = time.monotonic() + 60
        while time.monotonic() < end:
            time.sleep(0.01)
''')

#: a producer: enqueues on both queues, waits for the results itself, and prints the ids
PRODUCER = textwrap.dedent('''
    import asyncio
    import json

    from tasks import add, app, rebuild, shout

    # "own" is scheduled 2 s ahead, so it is still pending when "again" reuses its id (a finished id would run
    # anew); the running workers could otherwise finish it first
    handles = {"add": add.delay(2, 3), "shout": shout.delay("hi"), "own": add.delay_in(2, 1, 1, task_id="order-42"),
               "own_b": shout.delay("own", task_id="greet-1"), "unique": rebuild.delay("s1")}
    again = {"own": add.delay(5, 5, task_id="order-42").id, "unique": rebuild.delay("s1").id}


    async def produce_async():
        handle = await shout.delay_async("async")
        return handle.id, await handle.result_async(timeout=30)

    async_id, async_value = asyncio.run(produce_async())
    values = {name: handle.result(timeout=30) for name, handle in handles.items()}
    print(json.dumps({"ids": {name: handle.id for name, handle in handles.items()}, "again": again,
                      "values": values, "async": [async_id, async_value]}))
''')


@pytest.fixture
def shards(redis_cluster: LocalCluster) -> tuple[str, str]:
    """Two queue names whose slots are served by two different nodes of the emptied cluster."""
    flush(redis_cluster)
    first, second = queues_on_every_node(redis_cluster, 2, prefix="handles")
    assert redis_cluster.owner(slot_of(first)) is not redis_cluster.owner(slot_of(second))
    return first, second


@pytest.fixture
def folder(tmp_path: Path, redis_cluster: LocalCluster, shards: tuple[str, str]) -> Path:
    (tmp_path / "tasks.py").write_text(TASKS)
    (tmp_path / "produce.py").write_text(PRODUCER)
    return tmp_path


def environment(cluster: LocalCluster, shards: tuple[str, str]) -> dict[str, str]:
    return {"DELAYED_BROKER_URL": cluster.url, "QUEUE_A": shards[0], "QUEUE_B": shards[1]}


def worker(name: str, folder: Path, env: dict[str, str], *queues: str, extra: tuple[str, ...] = ()) -> Process:
    flags = [item for queue in queues for item in ("--queue", queue)]
    return Process(name, ["worker", "--broker", env["DELAYED_BROKER_URL"], "--import", "tasks", *flags,
                          "--dequeue-timeout", "0.3", *extra], folder, env)


def task_cli(folder: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    result = cli.delayed("task", *args, "--broker", env["DELAYED_BROKER_URL"], cwd=folder, env=env)
    assert result.stderr == "", result.stderr
    return result.returncode, result.stdout


@pytest.mark.timeout(120)
def test_results_from_two_queues_on_different_shards(redis_cluster: LocalCluster, shards: tuple[str, str],
                                                     folder: Path) -> None:
    """A producer script gets the results of tasks on two queues (two nodes) from two workers, sync and
    asyncio; ids it made name their queue, so app.handle(id) finds them in another process; a caller's own
    id and a unique_for call return the pending task's handle instead of enqueueing twice."""
    env = environment(redis_cluster, shards)
    first, second = shards
    workers = [worker("both", folder, env, first, second), worker("second", folder, env, second)]
    try:
        done = cli.python("produce.py", cwd=folder, env=env)
        assert done.returncode == 0, done.stderr + "".join(w.log()[-2000:] for w in workers)
    finally:
        codes = [w.stop() for w in workers]
    assert codes == [0, 0], [w.log()[-2000:] for w in workers]
    out = json.loads(done.stdout)
    ids, values = out["ids"], out["values"]
    assert values == {"add": 5, "shout": "HI", "own": 2, "own_b": "OWN", "unique": "rebuilt s1"}
    assert out["async"][1] == "ASYNC" and out["async"][0].endswith(f"@{second}")
    assert ids["add"].endswith(f"@{first}") and ids["shout"].endswith(f"@{second}")
    assert (ids["own"], ids["own_b"]) == ("order-42", "greet-1")  # a caller's id is kept as given
    assert out["again"] == {"own": "order-42", "unique": ids["unique"]}  # deduplicated: the pending task's id

    app = Delayed(redis_cluster.url, load_entry_points=False, queue=first)
    records = {name: app.handle(task_id).record() for name, task_id in ids.items() if name != "own_b"}
    assert {name: record.queue for name, record in records.items()} == {
        "add": first, "shout": second, "own": first, "unique": second}
    assert all(record.status == "succeeded" and record.attempts == 1 for record in records.values())
    # a caller's own id on another queue than the app's: named with queue=, else unknown where looked
    assert app.handle("greet-1", queue=second).result(timeout=0) == "OWN"
    missing = app.handle("greet-1").record()
    assert (missing.status, missing.queue) == ("unknown", first)
    with pytest.raises(NoResult, match=rf"unknown in queue {first}: .*\(app\.handle\(id, queue=\.\.\.\) looks"):
        app.handle("greet-1").result(timeout=0.1)
    # each record is in its queue's slot, on the node serving it
    for name, queue in (("add", first), ("shout", second)):
        key = QueueKeys.for_queue(queue, CLUSTER).record(ids[name])
        assert redis_cluster.owner(slot_of(queue)).client().exists(key) == 1
    assert [key for node in redis_cluster.live_nodes() for key in node.client().keys("delayed_task:*")] == []
    app.close()


@pytest.mark.timeout(120)
def test_cancel_show_and_a_wrong_queue_from_the_shell(redis_cluster: LocalCluster, shards: tuple[str, str],
                                                      folder: Path) -> None:
    """``delayed task cancel`` of a queued task (no worker serves its queue) and of a running one (its
    worker on the other node stops it), ``delayed task show`` of both; an own id needs --queue."""
    env = environment(redis_cluster, shards)
    first, second = shards
    ids = cli.python("-c", "import tasks, json; print(json.dumps([tasks.add.delay(1, 2).id, tasks.spin.delay().id, "
                           "tasks.shout.delay('x', task_id='mine').id]))", cwd=folder, env=env)
    assert ids.returncode == 0, ids.stderr
    queued, running, mine = json.loads(ids.stdout)
    assert mine == "mine"
    app = Delayed(redis_cluster.url, load_entry_points=False, queue=first)
    code, out = task_cli(folder, env, "show", queued)
    assert code == 0 and out.startswith(f"task {queued}: queued\n") and f"(queue {first})" in out

    serving = worker("second", folder, env, second, extra=("--executor", "thread"))
    try:
        assert wait_until(lambda: app.handle(running).status() == "running", 30), serving.log()
        assert task_cli(folder, env, "cancel", running) == (0, f"task {running}: cancelled; it will not run\n")
        code, out = task_cli(folder, env, "show", running)
        assert code == 0 and out.startswith(f"task {running}: cancelled\n"), out
        assert wait_until(lambda: "cancelled while running" in serving.log(), 10), serving.log()
        assert app.handle("mine", queue=second).result(timeout=30) == "X"  # the slot went on with the next
    finally:
        assert serving.stop() == 0

    assert task_cli(folder, env, "cancel", queued) == (0, f"task {queued}: cancelled; it will not run\n")
    code, out = task_cli(folder, env, "show", queued)
    assert code == 0 and out.startswith(f"task {queued}: cancelled\n")
    assert redis_cluster.owner(slot_of(first)).client().llen(f"{{{first}}}") == 0  # removed from its queue
    assert task_cli(folder, env, "show", "mine") == (  # looked in the queue setting's queue
        1, "task mine: unknown in queue default (records are kept per queue here: --queue NAME looks in "
           "another) (never tracked, or its record expired)\n")
    code, out = task_cli(folder, env, "show", "mine", "--queue", second)
    assert code == 0 and out.startswith("task mine: succeeded\n") and "  result    'X'\n" in out
    assert task_cli(folder, env, "cancel", "mine", "--queue", second) == (
        1, "task mine: not cancelled: it is succeeded already\n")
    refused = cli.delayed("task", "show", "f" * 32 + "@a{b", "--broker", redis_cluster.url, cwd=folder, env=env)
    assert refused.returncode != 0 and "brace" in refused.stderr and "Traceback" not in refused.stderr  # one line
    app.close()


def _reset(cluster: LocalCluster) -> None:
    """CONFIG RESETSTAT on every node, over RESP2 (no HELLO of ours in the counts)."""
    for node in cluster.live_nodes():
        node.client(protocol=2).config_resetstat()


def _sent(cluster: LocalCluster) -> dict[str, int]:
    """Commands clients sent to every node since the last reset, summed (not those run inside scripts)."""
    inside = {"hgetall", "hget", "hmget", "exists", "time", "rpush", "lpop", "hset", "hdel", "hincrby", "hkeys",
              "pexpire", "del", "zadd", "publish", "spublish", "lrem", "hexists", "get", "set"}
    ours = {"info", "config|resetstat"}
    total: dict[str, int] = {}
    for node in cluster.live_nodes():
        for name, stats in node.client(protocol=2).info("commandstats").items():
            name = name.removeprefix("cmdstat_")
            if name not in inside | ours:
                total[name] = total.get(name, 0) + int(stats["calls"])
    return total


@pytest.mark.timeout(60)
def test_round_trips_and_a_waiter_on_the_cluster(redis_cluster: LocalCluster, shards: tuple[str, str]) -> None:
    """INFO commandstats of every node: a tracked enqueue is one EVALSHA; a waiter blocked in
    result(timeout=30) and result_async sends a handful of commands and none while it waits; result() of a
    finished task is one round trip; a worker's busy slot releases a tracked task in one EVALSHA."""
    first, _ = shards
    app = Delayed(redis_cluster.url, load_entry_points=False, queue=first, dequeue_timeout=0.2,
                  imports=["tests.handle_tasks"])
    queue = app.queue(first)
    handles = [queue.enqueue(PyTask("tests.handle_tasks:add", [n, n]), track=True) for n in range(2)]
    # the scripts are loaded by now (a waiter's first read on a node without it loads it on every primary:
    # SCRIPT LOAD and EVALSHA again, 4 more commands on three masters)
    assert handles[0].status() == "queued"
    _reset(redis_cluster)
    handle = queue.enqueue(PyTask("tests.handle_tasks:add", [4, 5]), track=True)
    assert _sent(redis_cluster) == {"evalsha": 1}

    _reset(redis_cluster)
    results: list[Any] = []
    waiter = threading.Thread(target=lambda: results.append(app.handle(handle.id).result(timeout=30)))
    waiter.start()
    time.sleep(1.5)  # a poller would have sent many commands by now
    sent = _sent(redis_cluster)
    print("commands sent by a result() waiter on the cluster:", sent)
    # HELLO on its thread's connection to the slot's node, then SSUBSCRIBE and the read in one round trip
    assert sum(sent.values()) <= 4 and sent.get("ssubscribe") == 1 and sent.get("evalsha") == 1, sent

    async def wait_async() -> tuple[Any, dict[str, int]]:
        _reset(redis_cluster)
        task = asyncio.create_task(app.handle(handles[1].id).result_async(timeout=30))
        await asyncio.sleep(1.5)
        sent_async = _sent(redis_cluster)
        await asyncio.sleep(1.0)
        assert _sent(redis_cluster) == sent_async  # nothing more while it waits
        await asyncio.get_running_loop().run_in_executor(None, drain, app, first)
        return await task, sent_async

    time.sleep(1.0)
    assert _sent(redis_cluster) == sent  # nothing more while it waits
    value, sent_async = asyncio.run(wait_async())
    waiter.join(10)
    print("commands sent by a result_async() waiter on the cluster:", sent_async)
    assert results == [9] and value == 2
    # the asyncio cluster client's start on this loop (CLUSTER SLOTS, COMMAND, HELLO on each connection),
    # two reads and SSUBSCRIBE
    assert sent_async.get("ssubscribe") == 1 and sent_async.get("evalsha") == 2, sent_async
    assert sum(sent_async.values()) <= 10, sent_async

    _reset(redis_cluster)
    assert handle.result(timeout=30) == 9  # finished: SSUBSCRIBE and the read together, then SUNSUBSCRIBE
    finished = _sent(redis_cluster)
    print("commands sent by result() on a finished task:", finished)
    assert finished == {"ssubscribe": 1, "evalsha": 1, "sunsubscribe": 1}, finished

    scripts = {}
    for track in (False, True):
        queue.enqueue_many([PyTask("tests.handle_tasks:add", [n, 1]) for n in range(100)], track=track)
        _reset(redis_cluster)
        drain(app, first)
        scripts[track] = _sent(redis_cluster).get("evalsha", 0)
    print("script calls of a one-slot worker for 100 tasks, untracked and tracked:", scripts)
    # a busy slot's tracked release is its one release-and-take call (the worker's start-up calls aside)
    assert scripts[True] <= scripts[False] + 2 and scripts[True] < 110, scripts
    app.close()


def drain(app: Delayed, queue: str) -> None:
    """A one-slot burst worker on ``queue`` until it is empty."""
    app.worker(queue, slots=1).run(burst=True, install_signals=False)


@pytest.mark.timeout(120)
def test_waiters_follow_their_queue_to_another_node() -> None:
    """A queue's slot moves to another node: a waiter whose thread's connection (and subscription) is on
    the old node is told so (SUNSUBSCRIBE while it waits, MOVED on its next wait) and waits on the new
    node, so the result still arrives; an asyncio waiter too."""
    require_cluster_tools()
    cluster = LocalCluster().start()  # its own: this test changes the slot map
    try:
        name = "moving"
        app = Delayed(cluster.url, load_entry_points=False, queue=name, dequeue_timeout=0.2,
                      imports=["tests.handle_tasks"])
        queue = app.queue(name)
        before = queue.enqueue(PyTask("tests.handle_tasks:add", [1, 2]), track=True)
        during = queue.enqueue(PyTask("tests.handle_tasks:add", [3, 4]), track=True)
        with pytest.raises(TimeoutError):
            before.result(timeout=0.3)  # this thread now keeps a connection to the slot's node
        also = queue.enqueue(PyTask("tests.handle_tasks:add", [5, 6]), track=True)
        results: list[Any] = []
        waiter = threading.Thread(target=lambda: results.append(during.result(timeout=60)))
        waiter.start()

        async def wait_async() -> Any:
            task = asyncio.create_task(also.result_async(timeout=60))
            await asyncio.sleep(0.5)
            old = cluster.owner(slot_of(name))
            await asyncio.to_thread(cluster.move_slot, slot_of(name),
                                    next(node for node in cluster.nodes if node is not old))
            await asyncio.to_thread(cluster.wait_ok)
            await asyncio.to_thread(drain, app, name)
            return await task

        assert asyncio.run(wait_async()) == 11  # redis-py's asyncio cluster pub/sub follows the slot
        assert before.result(timeout=20) == 3  # MOVED on the kept connection, then the new node
        waiter.join(30)
        assert results == [7]
        app.close()
    finally:
        cluster.cleanup()


@pytest.mark.timeout(60)
def test_a_prefetching_worker_writes_the_records(redis_cluster: LocalCluster, shards: tuple[str, str]) -> None:
    """--prefetch 4 on the cluster: the batch call releases the tracked tasks and writes their records, in
    the queue's slot, and the waiters hear of it."""
    first, _ = shards
    app = Delayed(redis_cluster.url, load_entry_points=False, queue=first, dequeue_timeout=0.2,
                  imports=["tests.handle_tasks"])
    handles = app.queue(first).enqueue_many([PyTask("tests.handle_tasks:add", [n, n]) for n in range(10)],
                                            track=True)
    boom = app.queue(first).enqueue(PyTask("tests.handle_tasks:boom", ["bad"]), track=True)
    app.worker(first, slots=1, prefetch=4).run(burst=True, install_signals=False)
    assert [handle.result(timeout=10) for handle in handles] == [2 * n for n in range(10)]
    assert boom.status() == "dead" and boom.record().error_type == "ValueError"
    app.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", ["cluster-resp2", "one-redis"])
def test_waiters_without_resp3_and_on_one_redis(request: pytest.FixtureRequest, where: str) -> None:
    """The waiter for RESP2 connections (SSUBSCRIBE through redis-py's cluster pub/sub, then the read), and
    the cluster layout on one plain redis-server (key_layout = "cluster"): results on two queues, found
    by the ids alone."""
    if where == "cluster-resp2":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        flush(cluster)
        app = Delayed(cluster.url + "?protocol=2", load_entry_points=False, dequeue_timeout=0.2,
                      imports=["tests.handle_tasks"])
    else:
        server = request.getfixturevalue("real_redis")
        app = Delayed(server.url, load_entry_points=False, key_layout="cluster", dequeue_timeout=0.2,
                      imports=["tests.handle_tasks"])
    handles = [app.queue(name).enqueue(PyTask("tests.handle_tasks:add", [n, 1]), track=True)
               for n, name in enumerate(("left", "right"))]
    results: list[Any] = []
    waiters = [threading.Thread(target=lambda h=handle: results.append(app.handle(h.id).result(timeout=30)))
               for handle in handles]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.3)
    for name in ("left", "right"):
        drain(app, name)
    for waiter in waiters:
        waiter.join(30)
    assert sorted(results) == [1, 2]
    assert [app.handle(handle.id).record().queue for handle in handles] == ["left", "right"]
    # only an id pydelayed made names a queue; one of your own with an "@" is looked for in the default
    assert app.handle("someone@left").record().queue == "default"
    app.close()
