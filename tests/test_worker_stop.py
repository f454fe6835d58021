"""A stopped worker returns as soon as it can: ``stop()`` wakes every thread of it that waits.

An idle worker has three kinds of waiting threads: its slots (blocked on the queue for up to
``dequeue_timeout``), the keep-alive thread (on its scheduled-task subscription, up to the keep-alive
interval) and the cancel listener (on its cancel subscription). Here each of those waits is made long
(25 s and more) and each thread is seen inside its wait before the stop; when ``run()`` returns, every
one of them must have ended. A wait that a stop does not wake fails the test: the worker's join of the
keep-alive and cancel threads gives up after 1.5 s and leaves them alive, and a slot left blocked is
still alive. No timing is asserted (a stop takes a few milliseconds; the figures are in
bench/stop_latency.py), so a loaded machine cannot fail it.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from delayed_core import Delayed, PyTask, cancelling, maintenance
from delayed_core.interfaces import tracking
from delayed_core.interfaces.sweeper import ScheduleWatcher
from delayed_core.testing.processes import wait_until
from delayed_core.worker import Worker
from delayed_plugins.memory_tracking import MemoryCancelWatcher
from delayed_redis.schedule_watcher import RedisScheduleWatcher
from delayed_redis.tracking import RedisCancelWatcher
from tests import worker_tasks
from tests.support.fake_broker import FakeBrokerPlugin
from tests.support.redis_server import RedisServer

_ids = itertools.count()
LONG = 25.0  # every wait of the worker lasts at least this long unless a stop wakes it

#: case -> (broker, settings, queues)
CASES: dict[str, tuple[str, dict[str, object], list[str]]] = {
    "memory": ("memory", {}, ["default"]),
    # The fake broker's slots take through the pool, not a connection of their own (direct=False), so a
    # stop cannot unblock them: their takes are kept short here; its watchers are woken all the same.
    "fakeredis": ("fake", {"dequeue_timeout": 0.5}, ["default"]),
    "redis, thread": ("real", {}, ["default"]),
    "redis, 3 slots": ("real", {"slots": 3}, ["default"]),
    "redis, fork": ("real", {"executor": "fork"}, ["default"]),
    "redis, subprocess": ("real", {"executor": "subprocess"}, ["default"]),
    "redis, asyncio": ("real", {"executor": "asyncio"}, ["default"]),
    "redis, prefetch": ("real", {"prefetch": 4, "slots": 2}, ["default"]),
    "redis, 3 queues": ("real", {}, ["high", "default", "low"]),
    "cluster layout, 2 queues": ("real", {"key_layout": "cluster"}, ["high", "low"]),
}


@pytest.fixture
def entered(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Names of the threads that entered a scheduled-task or cancel watcher's wait. The waits are made
    long: a thread in one stays there until woken."""
    names: set[str] = set()
    monkeypatch.setattr(maintenance, "TICK", LONG * 4)
    monkeypatch.setattr(cancelling, "TICK", LONG * 4)
    for cls in (ScheduleWatcher, RedisScheduleWatcher, tracking.CancelWatcher, MemoryCancelWatcher,
                RedisCancelWatcher):
        monkeypatch.setattr(cls, "wait", _noting(cls.wait, names))  # type: ignore[method-assign]
    return names


def _noting(wait: Callable[..., object], names: set[str]) -> Callable[..., object]:
    def noted(self: object, timeout: float) -> object:
        names.add(threading.current_thread().name)
        return wait(self, timeout)
    return noted


@pytest.fixture
def app_for(request: pytest.FixtureRequest) -> Iterator[Callable[[str, dict[str, object]], Delayed]]:
    """Builds the app of a case: on the memory broker, fakeredis or the test redis-server."""
    apps: list[Delayed] = []

    def build(broker: str, settings: dict[str, object]) -> Delayed:
        common: dict[str, object] = {"load_entry_points": False, "dequeue_timeout": LONG,
                                     "keep_alive_interval": LONG, "keep_alive_timeout": LONG * 3, **settings}
        if broker == "memory":
            app = Delayed(f"memory://stop-{next(_ids)}", **common)  # type: ignore[arg-type]
        elif broker == "fake":
            app = Delayed(f"fakeredis://stop-{next(_ids)}", plugins=(FakeBrokerPlugin(),), broker="fakeredis",
                          **common)  # type: ignore[arg-type]
        else:
            server: RedisServer = request.getfixturevalue("real_redis")
            app = Delayed(server.url, **common)  # type: ignore[arg-type]
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.close()


@pytest.fixture
def worker_threads() -> Callable[[Worker], list[threading.Thread]]:
    """The slot, keep-alive and cancel threads of a worker, and the wait helpers of the cluster layout
    started during the test (another test's may still idle out)."""
    before = set(threading.enumerate())

    def of(worker: Worker) -> list[threading.Thread]:
        helpers = [thread for thread in threading.enumerate()
                   if thread.name.startswith("delayed-wait") and thread not in before]
        return [*worker.slots, *(thread for _, thread in worker._threads), *helpers]
    return of


@pytest.mark.parametrize("case", list(CASES))
def test_a_stop_wakes_every_wait_of_an_idle_worker(
        case: str, entered: set[str], app_for: Callable[[str, dict[str, object]], Delayed],
        worker_threads: Callable[[Worker], list[threading.Thread]]) -> None:
    broker, settings, queues = CASES[case]
    worker = app_for(broker, settings).worker(queues)
    run = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    run.start()
    # Every waiting thread in its wait: the keep-alive thread (and the cancel listener, where the broker
    # keeps task records), and each slot in its blocking take.
    try:
        assert wait_until(lambda: worker.slots and {thread.name for _, thread in worker._threads} <= entered
                          and all(_waits(slot) for slot in worker.slots), 20), f"waiting: {sorted(entered)}"
    finally:
        worker.stop()
        run.join(LONG / 2)
    assert not run.is_alive(), "run() did not return"
    assert [thread.name for thread in worker_threads(worker) if thread.is_alive()] == []


def test_a_burst_run_ends_every_thread_once_the_queue_is_empty(
        entered: set[str], app_for: Callable[[str, dict[str, object]], Delayed],
        worker_threads: Callable[[Worker], list[threading.Thread]]) -> None:
    """The last slot to find the queue empty stops the worker, which wakes the keep-alive thread too."""
    worker = app_for("real", {"slots": 2, "dequeue_timeout": 0.2}).worker("default")
    worker.run(burst=True, install_signals=False)
    assert "delayed-keep-alive" in entered
    assert [thread.name for thread in worker_threads(worker) if thread.is_alive()] == []


def _waits(slot: threading.Thread) -> bool:
    """True while ``slot`` is blocked in its take: its thread's stack holds the broker's take and, under
    it, a read of the reply or a condition's wait (memory, fakeredis, the cluster layout's helpers)."""
    frame = sys._current_frames().get(slot.ident or -1)
    names = set()
    while frame is not None:
        names.add(frame.f_code.co_name)
        frame = frame.f_back
    return bool(names & {"dequeue_first", "dequeue", "_refill"}) and bool(
        names & {"parse_response", "read_response", "wait", "wait_for", "_read_response"})


def test_ids_are_kept_alive_while_running_tasks_finish_after_a_stop(
        real_redis: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop gives a running task ``shutdown_timeout`` to finish; all that time its id must stay alive,
    or the sweeper would put the task back while it runs and it would run twice. So the keep-alive goes
    on after the stop until the slots are done: a refresh of the running slot's id is seen after the
    stop (it used to end with the stop: with the default keep_alive_timeout of 15 s, a task still
    running 15 s into the default 30 s of shutdown_timeout was taken away)."""
    app = Delayed(real_redis.url, load_entry_points=False, imports=[worker_tasks.__name__], keep_alive_interval=0.1,
                  keep_alive_timeout=5.0, shutdown_timeout=30.0)
    worker = app.worker("default")
    refreshed: list[tuple[float, list[str]]] = []
    keep_alive = worker.broker.keep_alive

    def noting(ids: list[str], ttl: float) -> None:
        keep_alive(ids, ttl)
        refreshed.append((time.monotonic(), list(ids)))

    monkeypatch.setattr(worker.broker, "keep_alive", noting)
    worker_tasks.reset()
    app.queue("default").enqueue(PyTask(f"{worker_tasks.__name__}:meet", [2, 30.0]))
    run = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    run.start()
    try:
        assert wait_until(lambda: worker.slots and worker.slots[0].state.running is not None, 10)
        worker.stop()
        stopped = time.monotonic()
        slot_id = worker.slots[0].slot_id
        assert wait_until(lambda: any(at > stopped and slot_id in ids for at, ids in refreshed), 10)
        assert real_redis.client().exists(slot_id)
    finally:
        worker_tasks.meet(2, 10.0)  # the task's other party: it ends, and the worker with it
        run.join(10)
        app.close()
    assert not run.is_alive()
    assert [name for name, _, _ in worker_tasks.calls] == ["record", "record"]  # both parties met, once
    assert not real_redis.client().exists(slot_id)  # offline once the task was released
