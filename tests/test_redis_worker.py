"""What the worker leaves in Redis keys, on fakeredis and a real redis-server (go-delayed's layout is a
public contract). The worker's behaviour through the public API, on every broker: test_worker.py."""

from __future__ import annotations

import threading
import time

from delayed_core import DeadLetter, PyTask
from delayed_plugins.msgpack_serializer import MsgpackSerializer
from tests import worker_tasks
from tests.chaos.inproc import start_worker_thread, stop_worker_thread
from tests.conftest import Backend
from tests.support.any_broker import MODULE, _reset_calls, drain, start_idle  # noqa: F401 - a fixture


def test_decorated_function_enqueues_delayed12_bytes_in_the_queue_list(backend: Backend) -> None:
    app = backend.app(result_ttl=0)  # tracking off: delayed 1.2's exact bytes (docs/results.md)

    @app.task(retry=3, name="tests.test_worker:add")
    def add(a: int, b: int) -> int:
        return a + b

    add.delay(1, 2)
    raw = backend.client.lindex("default", 0)
    # Same bytes as delayed 1.2's PyTask(path, (1, 2), {}, 3).
    assert raw == MsgpackSerializer().dumps(PyTask(add.path, [1, 2], {}, 3))
    assert backend.client.lrange("default_noti", 0, -1) == [b"1"]


def test_a_tracked_delay_adds_only_the_id_and_a_record_beside_the_layout(backend: Backend) -> None:
    app = backend.app()

    @app.task(retry=3, name="tests.test_worker:add")
    def add(a: int, b: int) -> int:
        return a + b

    handle = add.delay(1, 2)
    assert backend.client.lindex("default", 0) == MsgpackSerializer().dumps(
        PyTask(add.path, [1, 2], {}, 3, {"id": handle.id}))
    assert sorted(backend.client.keys("*")) == [b"default", b"default_noti", f"delayed_task:{handle.id}".encode()]


def test_a_drained_queue_leaves_no_key_behind(backend: Backend) -> None:
    backend.app().queue().enqueue_many([PyTask(f"{MODULE}:record", [i], {"k": "v"}) for i in range(20)])
    drain(backend)
    assert len(worker_tasks.calls) == 20
    # Clean: finished tasks take no space but the per-minute counters (which expire); the worker went offline.
    assert backend.client.keys("*") == [b"default_throughput"]
    counters = backend.client.hgetall("default_throughput")
    assert sum(int(count) for field, count in counters.items() if field.startswith(b"d:")) == 20


def test_a_failed_task_lands_in_n_dead_and_leaves_n_processing(backend: Backend) -> None:
    backend.app().queue().enqueue(PyTask(f"{MODULE}:always_fail"))
    drain(backend)
    entries = backend.client.lrange("default_dead", 0, -1)
    assert len(entries) == 1 and DeadLetter.from_json(entries[0]).reason == "failed"
    assert backend.client.hlen("default_processing") == 0


def test_a_released_failure_leaves_no_key(backend: Backend) -> None:
    backend.app().queue().enqueue(PyTask(f"{MODULE}:always_fail"))
    drain(backend, dead_letter_failed=False)
    assert backend.client.exists("default_dead", "default_processing", "default") == 0


def test_bytes_pushed_by_another_program_are_dead_lettered_when_undecodable(backend: Backend) -> None:
    backend.client.rpush("default", b"\xc1garbage")
    backend.client.rpush("default_noti", "1")
    drain(backend)
    letter = DeadLetter.from_json(backend.client.lindex("default_dead", 0))
    assert letter.reason == "undecodable" and letter.task == b"\xc1garbage"


def test_slot_ids_are_liveness_keys_deleted_at_stop(backend: Backend) -> None:
    worker = backend.app(imports=[MODULE], dequeue_timeout=0.2).worker()
    thread = start_idle(worker)
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
    assert app.broker("default").promote_and_peek(now=time.time() + 61)[0] == 1
    assert len(queue) == 1 and backend.client.llen("default_noti") == 1


def test_modules_given_to_one_worker_leave_n_dead_empty(backend: Backend) -> None:
    app = backend.app()
    app.queue().enqueue(PyTask(f"{MODULE}:record", ["via worker imports"]))
    app.worker(imports=[MODULE], dequeue_timeout=0.2).run(burst=True, install_signals=False)
    assert backend.client.llen("default_dead") == 0


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


def test_a_worker_of_several_queues_registers_and_hands_back_in_redis_keys(real_backend: Backend) -> None:
    client = real_backend.client
    app = real_backend.app(imports=["tests.worker_tasks"], dequeue_timeout=0.2, shutdown_timeout=0.2)
    app.queue("low").enqueue(PyTask("tests.worker_tasks:hold", [30]))
    worker = app.worker(["high", "low"])
    thread = start_worker_thread(worker)
    deadline = time.monotonic() + 5
    while not client.hlen("low_processing"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert client.zcard("high_workers") == 1 and client.zcard("low_workers") == 1
    stop_worker_thread(worker, thread)
    assert client.lrange("low", 0, -1) == [app.serializer.dumps(PyTask("tests.worker_tasks:hold", [30]))]
    assert client.llen("high") == 0 and client.hlen("low_processing") == 0
    assert client.zcard("high_workers") == 0 and client.zcard("low_workers") == 0
