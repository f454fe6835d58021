"""``wait_replicas`` on every producer path: scheduled tasks, tracked tasks (``.delay()``) and the
asyncio queue, against a real master with a real replica (and without one: the enqueue is refused in one line).

The sync single enqueue is measured in tests/test_sentinel.py; here the paths that pipeline WAIT behind
their write, which must stay one round trip.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio.connection

from delayed_core import BrokerUnavailable, Delayed, PyTask
from tests.support.redis_server import RedisServer, start_server

QUEUE = "replicated"
FUNC = "tests.worker_tasks:noop"


@pytest.fixture
def replicated(servers: list[RedisServer]) -> Iterator[tuple[RedisServer, RedisServer]]:
    """A master and one replica whose link is up."""
    master = start_server(servers, "--repl-diskless-sync-delay", "0")  # sync at once, not after 5 s
    replica = start_server(servers, "--replicaof", "127.0.0.1", str(master.port))
    deadline = time.monotonic() + 20
    while replica.client().info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica did not sync"
        time.sleep(0.05)
    yield master, replica


def waits(server: RedisServer) -> int:
    return int(server.client().info("commandstats").get("cmdstat_wait", {}).get("calls", 0))


def sends(monkeypatch: pytest.MonkeyPatch, connection_class: Any) -> list[int]:
    """Count the packets sent (one per round trip: a pipeline sends all its commands at once)."""
    sent: list[int] = []
    original = connection_class.send_packed_command

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(connection_class, "send_packed_command", counting)
    return sent


def produce_async(app: Delayed, *calls: Callable[[Any], Any]) -> None:
    async def run() -> None:
        queue = app.async_queue(QUEUE)
        try:
            for call in calls:
                await call(queue)
        finally:
            await queue.close()

    asyncio.run(run())


def test_scheduled_and_asyncio_enqueues_wait_for_the_replica_in_one_round_trip(
        replicated: tuple[RedisServer, RedisServer], monkeypatch: pytest.MonkeyPatch) -> None:
    master, replica = replicated
    app = Delayed(master.url, load_entry_points=False, wait_replicas=1, replica_wait_timeout=5)
    queue = app.queue(QUEUE)
    queue.enqueue(PyTask(FUNC), delay=60)  # connects and loads the script first
    before = waits(master)
    sync_sends = sends(monkeypatch, redis.connection.Connection)
    queue.enqueue(PyTask(FUNC), delay=60)
    queue.enqueue_many([PyTask(FUNC), PyTask(FUNC)], delay=60)
    assert len(sync_sends) == 2, "a scheduled enqueue and its WAIT go in one round trip"
    handle = queue.enqueue(PyTask(FUNC), track=True)  # a tracked task, as .delay() sends it
    assert handle is not None
    async_sends = sends(monkeypatch, redis.asyncio.connection.Connection)
    connected: list[int] = []

    async def connect(q: Any) -> None:  # the handshake's packets are not the writes'
        await q.length()
        connected.append(len(async_sends))

    produce_async(app, connect, lambda q: q.enqueue(PyTask(FUNC)), lambda q: q.enqueue_many([PyTask(FUNC)] * 3),
                  lambda q: q.enqueue(PyTask(FUNC), delay=60))
    assert len(async_sends) - connected[0] == 3, "each asyncio write and its WAIT go in one round trip"
    produce_async(app, lambda q: q.enqueue(PyTask(FUNC), track=True))  # tracked, on the asyncio records client
    assert waits(master) - before == 7
    # WAIT returned, so the replica has every task already: no polling.
    assert replica.client().zcard(f"{QUEUE}_scheduled") == 5 and replica.client().llen(QUEUE) == 6
    assert replica.client().llen(f"{QUEUE}_noti") == 6 and replica.client().exists(f"delayed_task:{handle.id}")
    app.close()


def test_without_the_replica_scheduled_and_asyncio_enqueues_are_refused_in_one_line(real_redis: RedisServer) -> None:
    start = waits(real_redis)  # the session's server: other tests' WAITs count too
    app = Delayed(real_redis.url, load_entry_points=False, wait_replicas=1, replica_wait_timeout=0.05)
    refused = r"^the enqueue reached the master but only 0 of 1 replica\(s\) acknowledged it within 50 ms"
    with pytest.raises(BrokerUnavailable, match=refused):
        app.queue(QUEUE).enqueue(PyTask(FUNC), delay=60)
    with pytest.raises(BrokerUnavailable, match=refused):  # a tracked task (handles), as .delay() sends it
        app.queue(QUEUE).enqueue(PyTask(FUNC), track=True)
    for call in (lambda q: q.enqueue(PyTask(FUNC)), lambda q: q.enqueue_many([PyTask(FUNC)] * 2),
                 lambda q: q.enqueue(PyTask(FUNC), delay=60), lambda q: q.enqueue(PyTask(FUNC), track=True)):
        with pytest.raises(BrokerUnavailable, match=refused):
            produce_async(app, call)
    sent = waits(real_redis)
    assert sent - start >= 6  # more when a first call found its script missing
    # Off (the default): no WAIT.
    produce_async(Delayed(real_redis.url, load_entry_points=False), lambda q: q.enqueue(PyTask(FUNC), delay=1))
    assert waits(real_redis) == sent
    app.close()
