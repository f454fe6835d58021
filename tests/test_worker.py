"""The worker loop on fakeredis and on a real redis-server: run, release, retry, dead-letter, hooks."""

from __future__ import annotations

import json
import threading
import time

import pytest

from delayed_core import DeadLetter, GoTask, PyTask, hookimpl
from delayed_plugins.msgpack_serializer import MsgpackSerializer
from tests import worker_tasks
from tests.conftest import Backend

MODULE = "tests.worker_tasks"


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    worker_tasks.reset()


def drain(backend: Backend, queue: str = "default", **settings: object) -> None:
    """Run a burst worker until the queue is empty."""
    app = backend.app(imports=[MODULE], dequeue_timeout=0.2, **settings)
    app.worker(queue).run(burst=True, install_signals=False)


def test_decorated_function_calls_now_and_enqueues_delayed12_bytes(backend: Backend) -> None:
    app = backend.app()

    @app.task(retry=3, name="tests.test_worker:add")
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, 2) == 3
    add.delay(1, 2)
    raw = backend.client.lindex("default", 0)
    # Same bytes as delayed 1.2's PyTask(path, (1, 2), {}, 3).
    assert raw == MsgpackSerializer().dumps(PyTask(add.path, [1, 2], {}, 3))
    assert backend.client.lrange("default_noti", 0, -1) == [b"1"]
    assert add.path == "tests.test_worker:add"
    with pytest.raises(ValueError, match="not a module-level function"):
        app.task(lambda: None)


def test_worker_runs_tasks_and_leaves_nothing_behind(backend: Backend) -> None:
    app = backend.app()
    queue = app.queue()
    queue.enqueue_many([PyTask(f"{MODULE}:record", [i], {"k": "v"}) for i in range(20)])
    assert len(queue) == 20
    drain(backend)
    assert sorted(call[1][0] for call in worker_tasks.calls) == list(range(20))
    assert all(call[2] == {"k": "v"} for call in worker_tasks.calls)
    assert len(queue) == 0
    # Clean: finished tasks take no space; the worker went offline.
    assert backend.client.keys("*") == []


def test_several_slots_run_tasks_concurrently(backend: Backend) -> None:
    queue = backend.app().queue()
    queue.enqueue_many([PyTask(f"{MODULE}:sleep", [0.3]) for _ in range(4)])
    started = time.monotonic()
    drain(backend, slots=4)
    assert len(worker_tasks.calls) == 4
    assert time.monotonic() - started < 1.0 + 0.2 + 0.5  # serial would take 1.2 s of sleeping alone


def test_failed_task_is_dead_lettered_with_reason_and_traceback(backend: Backend) -> None:
    backend.app().queue().enqueue(PyTask(f"{MODULE}:always_fail"))
    drain(backend)
    entries = backend.client.lrange("default_dead", 0, -1)
    assert len(entries) == 1
    letter = DeadLetter.from_json(entries[0])
    assert (letter.reason, letter.func, letter.attempts) == ("failed", f"{MODULE}:always_fail", 1)
    assert letter.error == "RuntimeError: always"
    assert "raise RuntimeError" in letter.traceback
    assert backend.client.hlen("default_processing") == 0


def test_failed_task_is_released_when_dead_letters_are_off(backend: Backend) -> None:
    backend.app().queue().enqueue(PyTask(f"{MODULE}:always_fail"))
    drain(backend, dead_letter_failed=False)
    assert backend.client.exists("default_dead", "default_processing", "default") == 0


def test_delayed12_retry_count_is_honoured(backend: Backend) -> None:
    queue = backend.app().queue()
    queue.enqueue(PyTask(f"{MODULE}:fail_times", ["a", 2], retry=2))  # fails twice, then succeeds
    queue.enqueue(PyTask(f"{MODULE}:always_fail", retry=1))  # 2 runs, then dead
    drain(backend, retry_backoff=0.0)  # retries back off by default; a burst worker would not wait for them
    names = [call[0] for call in worker_tasks.calls]
    assert names.count("fail_times") == 3 and names.count("always_fail") == 2
    letter = DeadLetter.from_json(backend.client.lindex("default_dead", 0))
    assert letter.attempts == 2 and letter.func == f"{MODULE}:always_fail"


def test_a_wrong_call_is_not_retried(backend: Backend) -> None:
    backend.app().queue().enqueue(PyTask(f"{MODULE}:fail_times", ["only-one-arg"], retry=-1))
    drain(backend)
    assert worker_tasks.calls == []
    letter = DeadLetter.from_json(backend.client.lindex("default_dead", 0))
    assert letter.reason == "failed" and letter.error.startswith("TypeError")


@pytest.mark.parametrize(
    ("task", "reason"),
    [
        (PyTask("os:system", ["true"]), "not_allowed"),
        (PyTask("builtins:eval", ["1"]), "not_allowed"),
        (GoTask("main.f", [1]), "wrong_language"),
    ],
)
def test_tasks_the_worker_may_not_run_are_dead_lettered(backend: Backend, task: object, reason: str) -> None:
    queue = backend.app().queue()
    queue.enqueue(task)
    queue.enqueue(PyTask(f"{MODULE}:record", ["after"]))
    drain(backend)
    assert worker_tasks.calls == [("record", ("after",), {})]  # the worker kept going
    entry = json.loads(backend.client.lindex("default_dead", 0))
    assert entry["reason"] == reason and entry["error"]


def test_undecodable_bytes_are_dead_lettered_with_the_raw_task(backend: Backend) -> None:
    backend.client.rpush("default", b"\xc1garbage")
    backend.client.rpush("default_noti", "1")
    drain(backend)
    letter = DeadLetter.from_json(backend.client.lindex("default_dead", 0))
    assert letter.reason == "undecodable" and letter.task == b"\xc1garbage"


def test_lifecycle_hooks_fire_in_order(backend: Backend) -> None:
    events: list[str] = []

    class Recorder:
        @hookimpl
        def delayed_worker_started(self, worker):
            events.append("worker_started")

        @hookimpl
        def delayed_task_dequeued(self, queue, task, worker_id):
            events.append("dequeued")

        @hookimpl
        def delayed_task_started(self, queue, task, worker_id):
            events.append("started")

        @hookimpl
        def delayed_task_succeeded(self, queue, task, worker_id, outcome):
            events.append("succeeded")

        @hookimpl
        def delayed_task_released(self, queue, task, worker_id):
            events.append("released")

        @hookimpl
        def delayed_worker_stopped(self, worker):
            events.append("worker_stopped")

    app = backend.app(imports=[MODULE], dequeue_timeout=0.2, plugins=[Recorder()])
    app.queue().enqueue(PyTask(f"{MODULE}:record"))
    app.worker().run(burst=True, install_signals=False)
    assert events == ["worker_started", "dequeued", "started", "succeeded", "released", "worker_stopped"]


def test_stop_while_idle_returns_promptly(backend: Backend) -> None:
    worker = backend.app(imports=[MODULE], dequeue_timeout=0.2).worker()
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not worker.slots and time.monotonic() < deadline:
        time.sleep(0.01)
    ids = worker.worker_ids
    assert ids and all(backend.client.get(worker_id) == b"1" for worker_id in ids)
    worker.stop()
    thread.join(3)
    assert not thread.is_alive()
    assert backend.client.exists(*ids) == 0


def test_delayed_tasks_wait_in_the_scheduled_set(backend: Backend) -> None:
    app = backend.app()
    queue = app.queue()
    queue.enqueue(PyTask(f"{MODULE}:record", ["later"]), delay=60)
    assert len(queue) == 0 and backend.client.zcard("default_scheduled") == 1
    assert app.broker("default").promote_due(now=time.time() + 61) == 1
    assert len(queue) == 1 and backend.client.llen("default_noti") == 1


@pytest.mark.parametrize("where", ["real", "memory"])
def test_stop_unblocks_idle_slots_at_once(where: str, request: pytest.FixtureRequest) -> None:
    """Idle slots block for dequeue_timeout (5 s by default); a stop must not wait for that."""
    if where == "real":
        app = request.getfixturevalue("real_backend").app(imports=[MODULE])
    else:
        from delayed_core import Delayed

        app = Delayed("memory://stop", imports=[MODULE], load_entry_points=False)
    assert app.config["dequeue_timeout"] == 5.0
    worker = app.worker(slots=3)
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while len(worker.slots) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # let every slot reach its blocking dequeue
    started = time.monotonic()
    worker.stop()
    thread.join(4)
    assert not thread.is_alive()
    assert time.monotonic() - started < 1.5


def test_an_idle_worker_does_not_poll_for_scheduled_tasks(real_backend: Backend) -> None:
    """Between keep-alives an idle worker sends only its slots' BLPOPs (one per dequeue_timeout); scheduled
    tasks are announced over pub/sub instead of being polled for."""
    client = real_backend.client
    # A keep-alive interval longer than the 3 s window: the window then holds no keep-alive (nor its poll).
    worker = real_backend.app(imports=[MODULE], dequeue_timeout=1.0).worker(
        slots=2, keep_alive_timeout=60, keep_alive_interval=15)
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while client.zcard("default_workers") < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)  # past the start-up promote

    def calls() -> dict[str, int]:
        return {name: stats["calls"] for name, stats in client.info("commandstats").items()}

    before = calls()
    time.sleep(3)
    after = calls()
    delta = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    delta.pop("cmdstat_info", None)
    worker.stop()
    thread.join(5)
    assert set(delta) <= {"cmdstat_blpop"}, delta
    assert delta.get("cmdstat_blpop", 0) <= 2 * 4  # 2 slots x 3 s / 1 s, plus one in flight each


def test_modules_given_to_one_worker_are_allowed_for_it(backend: Backend) -> None:
    app = backend.app()
    app.queue().enqueue(PyTask(f"{MODULE}:record", ["via worker imports"]))
    app.worker(imports=[MODULE], dequeue_timeout=0.2).run(burst=True, install_signals=False)
    assert worker_tasks.calls == [("record", ("via worker imports",), {})]
    assert backend.client.llen("default_dead") == 0
