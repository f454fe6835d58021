"""Tracked batches (``enqueue_many``) and task handles from asyncio code: ``AsyncQueue`` tracked
enqueues, ``result_async`` waiting on the event loop (no thread, no polling), two waiters."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from delayed_core import Delayed
from delayed_core.handles import NoResult
from tests import handle_tasks
from tests.support.redis_server import RedisServer
from tests.test_handles import SETTINGS, app, bound, drain  # noqa: F401 - the app fixture

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def sent_commands(client: Any) -> dict[str, int]:
    """Commands other clients sent since the last CONFIG RESETSTAT (not those run inside scripts)."""
    stats = {name: info["calls"] for name, info in client.info("commandstats").items()}
    inside = {"cmdstat_hgetall", "cmdstat_hget", "cmdstat_get", "cmdstat_exists", "cmdstat_time", "cmdstat_rpush",
              "cmdstat_hset", "cmdstat_set", "cmdstat_pexpire", "cmdstat_del", "cmdstat_zadd", "cmdstat_publish"}
    ours = {"cmdstat_info", "cmdstat_config|resetstat"}
    return {name: calls for name, calls in stats.items() if name not in inside | ours}


@pytest.fixture
def real_app(real_redis: RedisServer) -> Delayed:
    return Delayed(real_redis.url, load_entry_points=False, **SETTINGS)


def test_enqueue_many_tracked(app: Delayed) -> None:  # noqa: F811
    """A handle per task, in order; a caller's id already pending gives back that task's handle."""
    add = bound(app, handle_tasks.add)
    queue = app.queue("default")
    first = queue.enqueue(add.task(0, 0), task_id="order-1")
    handles = queue.enqueue_many([add.task(1, 1), add.task(2, 2), add.task(3, 3)], track=True)
    assert handles is not None and len({h.id for h in handles}) == 3
    again = queue.enqueue_many([add.task(9, 9), add.task(4, 4)], task_ids=["order-1", None])
    assert again is not None and again[0].id == first.id and len(queue) == 5  # order-1 not enqueued twice
    assert [h.status() for h in handles] == ["queued"] * 3
    drain(app)
    assert [h.result(timeout=0) for h in (*handles, *again)] == [2, 4, 6, 0, 8]
    assert queue.enqueue_many([], track=True) == [] and queue.enqueue_many([add.task(1, 2)]) is None


def test_enqueue_many_tracked_is_one_round_trip(real_app: Delayed, real_redis: RedisServer) -> None:
    add = bound(real_app, handle_tasks.add)
    queue = real_app.queue("default")
    queue.enqueue(add.task(0, 0), track=True)  # loads the script
    stats = real_redis.client()
    stats.config_resetstat()
    handles = queue.enqueue_many([add.task(n, n) for n in range(50)], track=True, delay=0.01)
    assert sent_commands(stats) == {"cmdstat_evalsha": 1}
    assert handles is not None and {h.status() for h in handles} <= {"scheduled", "queued"}


def test_async_queue_tracked(real_app: Delayed) -> None:
    add = bound(real_app, handle_tasks.add)

    async def main() -> list[Any]:
        queue = real_app.async_queue("default")
        try:
            one = await queue.enqueue(add.task(1, 2), track=True)
            same = await queue.enqueue(add.task(5, 5), task_id=f"async-{one.id}")
            again = await queue.enqueue(add.task(6, 6), task_id=f"async-{one.id}")
            many = await queue.enqueue_many([add.task(2, 2), add.task(3, 3)], track=True)
            assert again.id == same.id and await queue.enqueue(add.task(1, 1)) is None
            await asyncio.get_running_loop().run_in_executor(None, drain, real_app)
            return [await h.result_async(timeout=10) for h in (one, same, *many)] + [await one.status_async()]
        finally:
            await queue.close()

    assert asyncio.run(main()) == [3, 10, 4, 6, "succeeded"]


def test_result_async_waits_on_the_loop(real_app: Delayed, monkeypatch: pytest.MonkeyPatch) -> None:
    """No thread: two waiters on one handle both get the result, while the loop keeps running."""
    handle = bound(real_app, handle_tasks.add).delay(4, 5)

    def no_thread(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("result_async used a thread")

    monkeypatch.setattr(asyncio, "to_thread", no_thread)

    async def main() -> list[Any]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        tick = asyncio.create_task(ticker())
        waiters = [asyncio.create_task(real_app.handle(handle.id).result_async(timeout=30)) for _ in range(2)]
        await asyncio.sleep(0.3)
        assert not any(w.done() for w in waiters) and ticks > 5  # the loop is free while they wait
        await asyncio.get_running_loop().run_in_executor(None, drain, real_app)
        results = await asyncio.gather(*waiters)
        tick.cancel()
        return results

    assert asyncio.run(main()) == [9, 9]


def test_result_async_sends_a_handful_of_commands(real_app: Delayed, real_redis: RedisServer) -> None:
    handle = bound(real_app, handle_tasks.add).delay(1, 1)
    stats = real_redis.client()
    stats.config_resetstat()

    async def main() -> Any:
        waiter = asyncio.create_task(real_app.handle(handle.id).result_async(timeout=30))
        await asyncio.sleep(1.5)  # a poller would have sent many commands by now
        sent = sent_commands(stats)
        # a read (EVALSHA), SUBSCRIBE, a second read, plus each new connection's handshake
        assert sum(sent.values()) <= 6 and sent.get("cmdstat_subscribe") == 1, sent
        await asyncio.sleep(1.5)
        assert sent_commands(stats) == sent  # nothing more while it waits
        await asyncio.get_running_loop().run_in_executor(None, drain, real_app)
        return await waiter, sent

    value, sent = asyncio.run(main())
    assert value == 2
    print("commands sent by a result_async waiter:", sent)


def test_result_async_timeout_and_cancelled(real_app: Delayed) -> None:
    slow = bound(real_app, handle_tasks.add).delay(1, 1)
    gone = bound(real_app, handle_tasks.add).delay(2, 2)
    assert gone.cancel() is True

    async def main() -> None:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await slow.result_async(timeout=0.3)
        assert time.monotonic() - started >= 0.3
        with pytest.raises(NoResult, match="cancelled"):
            await gone.result_async(timeout=5)

    asyncio.run(main())


@pytest.mark.parametrize("protocol", [3, 2])
def test_a_waiting_thread_gives_its_connection_back_when_it_ends(real_redis: RedisServer, protocol: int) -> None:
    """A thread keeps its subscriber connection between waits (RESP3: pipelined; RESP2: pub/sub), and the
    pool gets it back once the thread is gone: a thread per request does not leak connections."""
    import gc
    import threading

    on = Delayed(f"{real_redis.url}?protocol={protocol}", load_entry_points=False, **SETTINGS)
    pool = on.broker("default").client.connection_pool  # type: ignore[attr-defined]
    handles = [bound(on, handle_tasks.add).delay(n, n) for n in range(3)]
    in_use = len(pool._in_use_connections)
    timeouts: list[str] = []

    def wait() -> None:
        for handle in handles:  # no worker runs: each wait times out, on the thread's kept connection
            try:
                handle.result(timeout=0.1)
            except TimeoutError:
                timeouts.append(handle.id)

    for _ in range(2):
        thread = threading.Thread(target=wait)
        thread.start()
        thread.join(10)
        assert len(pool._in_use_connections) == in_use + 1  # the ended thread's, until it is collected
        del thread
        gc.collect()
        assert len(pool._in_use_connections) == in_use
    assert len(timeouts) == 6
