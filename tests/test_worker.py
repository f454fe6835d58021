"""The worker loop through the public API, on the memory broker, fakeredis and a real redis-server: run,
release, retry, dead-letter, hooks. (What it leaves in Redis keys: test_redis_worker.py.)"""

from __future__ import annotations

import json
import time

import pytest

from delayed_core import DeadLetter, Delayed, GoTask, PyTask, hookimpl
from delayed_plugins.msgpack_serializer import MsgpackSerializer
from tests import worker_tasks
from tests.support.any_broker import MODULE, Target, _reset_calls, broker_target, drain, start_idle  # noqa: F401 - fixtures
from tests.support.blocking import wait_until_blocked


def letters(app: Delayed, queue: str = "default") -> list[DeadLetter]:
    return [DeadLetter.from_json(raw) for raw in app.broker(queue).dead_letters()]


def test_decorated_function_calls_now_and_enqueues_delayed12_bytes(target: Target) -> None:
    app = target.app(result_ttl=0)  # tracking off: delayed 1.2's exact bytes (docs/results.md)

    @app.task(retry=3, name="tests.test_worker:add")
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, 2) == 3
    add.delay(1, 2)
    assert len(app.queue()) == 1
    # Same bytes as delayed 1.2's PyTask(path, (1, 2), {}, 3).
    assert app.broker("default").dequeue("a" * 32, 1.0) == MsgpackSerializer().dumps(PyTask(add.path, [1, 2], {}, 3))
    assert add.path == "tests.test_worker:add"
    with pytest.raises(ValueError, match="not a module-level function"):
        app.task(lambda: None)


def test_tracked_delay_adds_only_the_id_to_delayed12_bytes(target: Target) -> None:
    app = target.app()

    @app.task(retry=3, name="tests.test_worker:add")
    def add(a: int, b: int) -> int:
        return a + b

    handle = add.delay(1, 2)
    raw = app.broker("default").dequeue("a" * 32, 1.0)
    assert raw == MsgpackSerializer().dumps(PyTask(add.path, [1, 2], {}, 3, {"id": handle.id}))


def test_worker_runs_tasks_and_leaves_nothing_behind(target: Target) -> None:
    app = target.app()
    queue = app.queue()
    queue.enqueue_many([PyTask(f"{MODULE}:record", [i], {"k": "v"}) for i in range(20)])
    assert len(queue) == 20
    drain(target)
    assert sorted(call[1][0] for call in worker_tasks.calls) == list(range(20))
    assert all(call[2] == {"k": "v"} for call in worker_tasks.calls)
    assert len(queue) == 0
    # Clean: finished tasks take no space; the worker went offline.
    info = app.broker("default").info()
    assert (info.length, info.scheduled, info.dead, info.processing, info.workers) == (0, 0, 0, {}, [])


def test_several_slots_run_tasks_concurrently(target: Target) -> None:
    """Four tasks that each wait for the four to run at once: they meet only if the slots run them
    concurrently (one by one, the first gives up after its timeout and is dead-lettered)."""
    app = target.app()
    app.queue().enqueue_many([PyTask(f"{MODULE}:meet", [4, 30]) for _ in range(4)])
    drain(target, slots=4)
    assert worker_tasks.calls == [("record", ("met", 4), {})] * 4
    assert letters(app) == []


def test_failed_task_is_dead_lettered_with_reason_and_traceback(target: Target) -> None:
    app = target.app()
    app.queue().enqueue(PyTask(f"{MODULE}:always_fail"))
    drain(target)
    entries = letters(app)
    assert len(entries) == 1
    letter = entries[0]
    assert (letter.reason, letter.func, letter.attempts) == ("failed", f"{MODULE}:always_fail", 1)
    assert letter.error == "RuntimeError: always"
    assert "raise RuntimeError" in letter.traceback
    assert app.broker("default").info().processing == {}


def test_failed_task_is_released_when_dead_letters_are_off(target: Target) -> None:
    app = target.app()
    app.queue().enqueue(PyTask(f"{MODULE}:always_fail"))
    drain(target, dead_letter_failed=False)
    info = app.broker("default").info()
    assert (info.dead, info.processing, info.length) == (0, {}, 0)


def test_delayed12_retry_count_is_honoured(target: Target) -> None:
    app = target.app()
    queue = app.queue()
    queue.enqueue(PyTask(f"{MODULE}:fail_times", ["a", 2], retry=2))  # fails twice, then succeeds
    queue.enqueue(PyTask(f"{MODULE}:always_fail", retry=1))  # 2 runs, then dead
    drain(target, retry_backoff=0.0)  # retries back off by default; a burst worker would not wait for them
    names = [call[0] for call in worker_tasks.calls]
    assert names.count("fail_times") == 3 and names.count("always_fail") == 2
    letter = letters(app)[0]
    assert letter.attempts == 2 and letter.func == f"{MODULE}:always_fail"


def test_a_wrong_call_is_not_retried(target: Target) -> None:
    app = target.app()
    app.queue().enqueue(PyTask(f"{MODULE}:fail_times", ["only-one-arg"], retry=-1))
    drain(target)
    assert worker_tasks.calls == []
    letter = letters(app)[0]
    assert letter.reason == "failed" and letter.error.startswith("TypeError")


@pytest.mark.parametrize(
    ("task", "reason"),
    [
        (PyTask("os:system", ["true"]), "not_allowed"),
        (PyTask("builtins:eval", ["1"]), "not_allowed"),
        (GoTask("main.f", [1]), "wrong_language"),
    ],
)
def test_tasks_the_worker_may_not_run_are_dead_lettered(target: Target, task: object, reason: str) -> None:
    app = target.app()
    queue = app.queue()
    queue.enqueue(task)
    queue.enqueue(PyTask(f"{MODULE}:record", ["after"]))
    drain(target)
    assert worker_tasks.calls == [("record", ("after",), {})]  # the worker kept going
    entry = json.loads(app.broker("default").dead_letters(0, 0)[0])
    assert entry["reason"] == reason and entry["error"]


def test_undecodable_bytes_are_dead_lettered_with_the_raw_task(target: Target) -> None:
    app = target.app()
    app.broker("default").enqueue([b"\xc1garbage"])
    drain(target)
    letter = letters(app)[0]
    assert letter.reason == "undecodable" and letter.task == b"\xc1garbage"


def test_lifecycle_hooks_fire_in_order(target: Target) -> None:
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

    app = target.app(imports=[MODULE], dequeue_timeout=0.2, plugins=[Recorder()])
    app.queue().enqueue(PyTask(f"{MODULE}:record"))
    app.worker().run(burst=True, install_signals=False)
    assert events == ["worker_started", "dequeued", "started", "succeeded", "released", "worker_stopped"]


def test_stop_while_idle_returns_promptly(target: Target) -> None:
    app = target.app()
    worker = app.worker(imports=[MODULE], dequeue_timeout=0.2)
    thread = start_idle(worker)
    ids = worker.worker_ids
    broker = app.broker("default")
    assert ids and not any(broker.claim_worker_id(worker_id, 60) for worker_id in ids)  # alive: taken
    worker.stop()
    thread.join(3)
    assert not thread.is_alive()
    assert all(broker.claim_worker_id(worker_id, 60) for worker_id in ids)  # offline: free again


def test_delayed_tasks_wait_until_due(target: Target) -> None:
    app = target.app()
    queue = app.queue()
    queue.enqueue(PyTask(f"{MODULE}:record", ["later"]), delay=60)
    assert len(queue) == 0 and app.broker("default").info().scheduled == 1
    assert app.broker("default").promote_and_peek(now=time.time() + 61)[0] == 1
    assert len(queue) == 1 and app.broker("default").info().scheduled == 0


@pytest.mark.parametrize("where", ["real", "memory"])
def test_stop_unblocks_idle_slots_at_once(where: str, request: pytest.FixtureRequest) -> None:
    """Idle slots block for dequeue_timeout (5 s by default); a stop must not wait for that."""
    if where == "real":
        app = request.getfixturevalue("real_backend").app(imports=[MODULE])
    else:
        app = Delayed("memory://stop", imports=[MODULE], load_entry_points=False)
    assert app.config["dequeue_timeout"] == 5.0
    # Blocks of 25 s (the longest one BLPOP waits), so that a stop that waited for them shows at any load.
    worker = app.worker(slots=3, dequeue_timeout=60)
    thread = start_idle(worker, slots=3)
    if where == "real":
        wait_until_blocked(request.getfixturevalue("real_backend").client, worker, 3)
    started = time.monotonic()
    worker.stop()
    thread.join(30)
    assert not thread.is_alive()
    assert time.monotonic() - started < 12


def test_modules_given_to_one_worker_are_allowed_for_it(target: Target) -> None:
    app = target.app()
    app.queue().enqueue(PyTask(f"{MODULE}:record", ["via worker imports"]))
    app.worker(imports=[MODULE], dequeue_timeout=0.2).run(burst=True, install_signals=False)
    assert worker_tasks.calls == [("record", ("via worker imports",), {})]
    assert app.broker("default").dead_letters() == []
