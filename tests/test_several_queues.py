"""One worker serving several queues in strict priority order: broker methods on the memory broker,
fakeredis and a real redis-server; the worker in a thread; the CLI as a user runs it."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from delayed_core import Delayed, PyTask
from delayed_core.errors import ConfigError
from tests import priority_tasks, worker_tasks
from tests.chaos.inproc import start_worker_thread, stop_worker_thread
from tests.conftest import Backend
from tests.support.blocking import wait_until_blocked
from tests.support.fake_broker import FakeBrokerPlugin

REPO = Path(__file__).resolve().parent.parent
DELAYED = str(Path(sys.executable).parent / "delayed")
QUEUES = ("high", "default", "low")
_ids = itertools.count()


@pytest.fixture(autouse=True)
def _reset() -> None:
    worker_tasks.reset()
    priority_tasks.started.clear()


@pytest.fixture(params=["memory", "fake", "real"])
def app(request: pytest.FixtureRequest) -> Delayed:
    """An app on the memory broker, on fakeredis and on a real redis-server."""
    settings: dict[str, Any] = {"imports": ["tests.worker_tasks"], "dequeue_timeout": 0.2,
                                "load_entry_points": False}
    if request.param == "memory":
        return Delayed(f"memory://several-{next(_ids)}", **settings)
    if request.param == "fake":
        return Delayed(f"fakeredis://several-{next(_ids)}", plugins=[FakeBrokerPlugin()], broker="fakeredis",
                       **settings)
    return Delayed(request.getfixturevalue("real_redis").url, **settings)


def held(app: Delayed, queue: str) -> dict[str, bytes]:
    return {worker_id: task for worker_id, (task, _) in app.broker(queue).info().processing.items()}


# -- the broker methods ------------------------------------------------------------------------------
def test_takes_come_from_the_highest_queue_with_work_and_are_held_in_their_own_queue(app: Delayed) -> None:
    for queue in ("low", "high", "low", "high"):
        app.broker(queue).enqueue([f"{queue}-{len(app.broker(queue))}".encode()])
    consumer, wid = app.broker("high"), "a" * 32
    assert consumer.dequeue_first(wid, QUEUES, 0.2) == ("high", b"high-0")
    assert held(app, "high") == {wid: b"high-0"} and held(app, "low") == {}
    assert consumer.release_and_take_first(wid, "high", QUEUES, True) == ("high", b"high-1")
    assert consumer.release_and_take_first(wid, "high", QUEUES, True) == ("low", b"low-0")
    assert held(app, "high") == {} and held(app, "low") == {wid: b"low-0"}
    assert consumer.held_in(wid, QUEUES) == ("low", b"low-0")
    app.broker("default").enqueue([b"default-0"])  # arrives while low-0 runs: it comes next, before low-1
    assert consumer.release_and_take_first(wid, "low", QUEUES, True) == ("default", b"default-0")
    assert consumer.release_and_take_first(wid, "default", QUEUES, False) is None  # release only
    assert consumer.held_in(wid, QUEUES) is None
    assert consumer.dequeue_first(wid, QUEUES, 0.2) == ("low", b"low-1")
    assert consumer.release_and_take_first(wid, "low", QUEUES, True) is None
    assert consumer.dequeue_first(wid, QUEUES, 0.2) is None  # all empty: waited, then gave up
    assert all(len(app.broker(queue)) == 0 and held(app, queue) == {} for queue in QUEUES)


def test_a_slot_that_lost_a_reply_gets_its_held_task_back_first(app: Delayed) -> None:
    app.broker("low").enqueue([b"low-0"])
    app.broker("high").enqueue([b"high-0"])
    consumer, wid = app.broker("high"), "b" * 32
    assert consumer.dequeue_first(wid, ("low",), 0.2) == ("low", b"low-0")  # as if by a lost reply
    assert consumer.dequeue_first(wid, QUEUES, 0.2) == ("low", b"low-0")  # not high-0: it holds low-0
    assert consumer.release_and_take_first(wid, "low", QUEUES, True) == ("high", b"high-0")  # still there
    assert consumer.release_and_take_first(wid, "high", QUEUES, True) is None


# -- the worker ----------------------------------------------------------------------------------------
def test_a_busy_slot_never_starts_a_low_task_while_a_high_one_waits(real_backend: Backend) -> None:
    """High tasks arrive while low ones run: from the first high start on, every high task runs before
    the next low one."""
    app = real_backend.app(imports=["tests.priority_tasks"], dequeue_timeout=0.2)
    app.queue("low").enqueue_many([PyTask("tests.priority_tasks:mark", [f"low:{i}"]) for i in range(600)])
    worker = app.worker(["high", "low"])
    thread = start_worker_thread(worker)
    try:
        deadline = time.monotonic() + 20
        while len(priority_tasks.started) < 50:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        app.queue("high").enqueue_many([PyTask("tests.priority_tasks:mark", [f"high:{i}"]) for i in range(300)])
        while len(priority_tasks.started) < 900:
            assert time.monotonic() < deadline, len(priority_tasks.started)
            time.sleep(0.01)
    finally:
        stop_worker_thread(worker, thread)
    started = priority_tasks.started
    first_high = next(i for i, label in enumerate(started) if label.startswith("high"))
    assert started[first_high:first_high + 300] == [f"high:{i}" for i in range(300)]
    assert [label for label in started if label.startswith("low")] == [f"low:{i}" for i in range(600)]


def test_the_worker_registers_in_every_queue_and_hands_back_to_the_tasks_own_queue(app: Delayed) -> None:
    """Through the public API on every broker (the Redis keys: test_redis_worker.py)."""
    app.queue("low").enqueue(PyTask("tests.worker_tasks:hold", [30]))
    worker = app.worker(["high", "low"], shutdown_timeout=0.2)
    thread = start_worker_thread(worker)
    deadline = time.monotonic() + 5
    while not held(app, "low"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    (slot_id,) = held(app, "low")
    assert slot_id in app.broker("high").info().workers and slot_id in app.broker("low").info().workers
    stop_worker_thread(worker, thread)
    assert app.broker("low").dequeue("c" * 32, 1.0) == app.serializer.dumps(PyTask("tests.worker_tasks:hold", [30]))
    assert len(app.broker("high")) == 0 and held(app, "high") == {}
    assert app.broker("high").info().workers == [] and app.broker("low").info().workers == []


def test_each_queue_keeps_its_own_task_settings_and_process_settings_must_agree(tmp_path: Path) -> None:
    Path("delayed.toml").write_text('[queues.low]\ndead_letter_failed = false\n[queues.odd]\nslots = 3\n')
    app = Delayed("memory://several-settings", imports=["tests.worker_tasks"], load_entry_points=False,
                  dequeue_timeout=0.2)
    app.queue("high").enqueue(PyTask("tests.worker_tasks:always_fail"))
    app.queue("low").enqueue(PyTask("tests.worker_tasks:always_fail"))
    app.worker(["high", "low"]).run(burst=True, install_signals=False)
    assert len(app.broker("high").dead_letters()) == 1  # high keeps failed tasks as dead letters
    assert app.broker("low").dead_letters() == []  # low releases them
    with pytest.raises(ConfigError, match="'high' and 'odd' set slots differently"):
        app.worker(["high", "odd"])


# -- as a user runs it -----------------------------------------------------------------------------------
def run_cli(url: str, cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PRIORITY_REDIS_URL": url}
    env = {key: value for key, value in env.items() if not key.startswith("DELAYED_")}
    return subprocess.run([DELAYED, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_cli_worker_serves_every_queue_in_strict_priority_order(real_backend: Backend, tmp_path: Path) -> None:
    """The issue's test: 1,000 tasks wait on low, then 1,000 are enqueued on high; a one-slot worker
    starts. No low task may start while a high task waits."""
    app = real_backend.app()
    app.queue("low").enqueue_many([PyTask("tests.priority_tasks:mark", [f"low:{i}"]) for i in range(1000)])
    app.queue("high").enqueue_many([PyTask("tests.priority_tasks:mark", [f"high:{i}"]) for i in range(1000)])
    result = run_cli(real_backend.url, tmp_path, "worker", "--broker", real_backend.url, "--queue", "high",
                     "--queue", "default", "--queue", "low", "--import", "tests.priority_tasks", "--burst",
                     "--dequeue-timeout", "0.2")
    assert result.returncode == 0, result.stderr
    started = [label.decode() for label in real_backend.client.lrange("started", 0, -1)]
    assert started == [f"high:{i}" for i in range(1000)] + [f"low:{i}" for i in range(1000)]
    # The banner names the queues in priority order, the executor, the slots and what may run.
    assert "worker serving queues 'high', 'default', 'low' (highest priority first) with 1 slot(s), " \
           "executor thread" in result.stderr
    assert "[tasks]\n  . tests.priority_tasks:* (the public functions defined in module tests.priority_tasks)" \
           in result.stderr
    assert "WARNING" not in result.stderr


def test_cli_worker_that_may_run_nothing_warns(real_backend: Backend, tmp_path: Path) -> None:
    result = run_cli(real_backend.url, tmp_path, "worker", "--broker", real_backend.url, "--burst",
                     "--dequeue-timeout", "0.2")
    assert result.returncode == 0, result.stderr
    assert "INFO delayed.worker: worker serving queue 'default' with 1 slot(s), executor thread" in result.stderr
    warnings = [line for line in result.stderr.splitlines() if " WARNING " in line]
    assert warnings == [warnings[0]] and "this worker may run no function" in warnings[0]
    assert "--import MODULE" in warnings[0]


def test_stop_unblocks_slots_idle_on_several_queues_at_once(app: Delayed) -> None:
    if app.broker_name == "fakeredis":
        pytest.skip("fakeredis has no CLIENT UNBLOCK (as in test_worker.py's one-queue test)")
    # Blocks of 25 s (the longest one BLPOP waits), so that a stop that waited for them shows at any load.
    worker = app.worker(list(QUEUES), slots=2, dequeue_timeout=60)
    thread = start_worker_thread(worker)
    if app.broker_name != "memory":
        wait_until_blocked(app.broker("high").client, worker, 2)
    started = time.monotonic()
    stop_worker_thread(worker, thread, timeout=30)
    assert time.monotonic() - started < 12


def test_a_broker_without_several_queues_is_refused_with_one_line() -> None:
    from delayed_plugins.memory_broker import MemoryBroker

    class OneQueueBroker(MemoryBroker):
        serves_several_queues = False

    app = Delayed("memory://one-queue", load_entry_points=False)
    app.registry.add_broker("onequeue", OneQueueBroker)
    app.config = app._config_for(None, {"broker": "onequeue"})
    with pytest.raises(ConfigError, match="cannot serve several queues in one worker"):
        app.worker(["high", "low"])
    app.worker("high")  # one queue is fine


def test_scheduled_tasks_of_every_queue_start_at_their_due_time(real_backend: Backend) -> None:
    """Every queue's announcements wake the worker, not only the first queue's: with polling every 60 s,
    a task scheduled on the second queue still starts about when it falls due."""
    app = real_backend.app(imports=["tests.priority_tasks"], dequeue_timeout=0.2, keep_alive_interval=60,
                           keep_alive_timeout=180)
    worker = app.worker(["high", "low"])
    thread = start_worker_thread(worker)
    try:
        channels = ("high_scheduled", "low_scheduled")
        deadline = time.monotonic() + 10
        while any(count == 0 for _, count in real_backend.client.pubsub_numsub(*channels)):
            assert time.monotonic() < deadline, "the worker did not subscribe to every queue's channel"
            time.sleep(0.01)
        scheduled = time.monotonic()
        app.queue("low").enqueue(PyTask("tests.priority_tasks:mark", ["low:late"]), delay=0.5)
        while not priority_tasks.started:
            # Generous: a lost announcement shows as a start at the next poll, 60 s away.
            assert time.monotonic() - scheduled < 20, "the scheduled task waited for the poll"
            time.sleep(0.01)
    finally:
        stop_worker_thread(worker, thread)
    assert priority_tasks.started == ["low:late"]
