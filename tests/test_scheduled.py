"""Scheduled tasks: ``delay=`` / ``eta=``, promotion on time, and no double runs when workers race."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

import pytest

from delayed_core import Delayed, PyTask
from tests.conftest import Backend

MODULE = __name__
_lock = threading.Lock()
#: (task id, unix time it started)
started: list[tuple[int, float]] = []


def mark(task_id: int) -> None:
    """Record that task ``task_id`` started, and when."""
    with _lock:
        started.append((task_id, time.time()))


@pytest.fixture(autouse=True)
def _reset() -> None:
    started.clear()


def wait_for(condition: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def serve(apps: list[Delayed], condition: Callable[[], object], queue: str = "default") -> None:
    """Run one worker per app in threads until ``condition()`` holds, then stop them all."""
    workers = [app.worker(queue) for app in apps]
    threads = [threading.Thread(target=w.run, kwargs={"install_signals": False}, daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    try:
        wait_for(condition)
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(10)


# -- producer side (fakeredis and real Redis) ------------------------------------------------------
def test_delayed_tasks_wait_in_the_scheduled_set(backend: Backend) -> None:
    app = backend.app()
    queue = app.queue()
    queue.enqueue_many([PyTask(f"{MODULE}:mark", [1])] * 2, delay=30)  # equal tasks stay two entries
    queue.enqueue(PyTask(f"{MODULE}:mark", [2]), eta=dt.datetime.now() - dt.timedelta(seconds=5))  # past: now
    queue.enqueue(PyTask(f"{MODULE}:mark", [3]), delay=0)  # zero: now
    assert len(queue) == 2 and backend.client.zcard("default_scheduled") == 2
    members = backend.client.zrange("default_scheduled", 0, -1, withscores=True)
    assert all(len(member) > 16 and member[:16].isalnum() for member, _ in members)
    due = {score for _, score in members}
    assert len(due) == 1 and abs(due.pop() / 1000 - (time.time() + 30)) < 2
    broker = app.broker("default")
    assert broker.promote_and_peek()[0] == 0
    assert broker.promote_and_peek(now=time.time() + 31)[0] == 2
    assert len(queue) == 4 and backend.client.llen("default_noti") == 4
    assert backend.client.zcard("default_scheduled") == 0


def test_decorated_functions_schedule_with_delay_in_and_delay_at(backend: Backend) -> None:
    app = backend.app()
    task = app.task(name=f"{MODULE}:mark")(mark)
    task.delay_in(60, 1)
    task.delay_at(dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1), 2)
    scores = sorted(score for _, score in backend.client.zrange("default_scheduled", 0, -1, withscores=True))
    assert len(scores) == 2 and 3000 < (scores[1] - scores[0]) / 1000 < 3600


def test_bad_delays_are_refused(backend: Backend) -> None:
    queue = backend.app().queue()
    with pytest.raises(ValueError, match="not both"):
        queue.enqueue(PyTask(f"{MODULE}:mark", [1]), delay=1, eta=dt.datetime.now())
    with pytest.raises(ValueError, match=">= 0"):
        queue.enqueue(PyTask(f"{MODULE}:mark", [1]), delay=-1)
    assert len(queue) == 0 and backend.client.zcard("default_scheduled") == 0


# -- workers (real Redis) ---------------------------------------------------------------------------
def test_a_task_due_in_2s_starts_between_2_and_3s_after_enqueue(real_backend: Backend) -> None:
    app = real_backend.app(imports=[MODULE], dequeue_timeout=0.2)
    enqueued = time.time()
    app.queue().enqueue(PyTask(f"{MODULE}:mark", [7]), delay=2)
    serve([app], lambda: started)
    ((task_id, at),) = started
    # Promotion runs on the worker's 1 s maintenance tick: due time + at most one tick (+ a round trip).
    assert task_id == 7 and 2.0 <= at - enqueued < 3.0, at - enqueued


def test_racing_workers_run_each_scheduled_task_exactly_once(
    real_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fast tick makes the four workers' promotions collide as often as possible.
    monkeypatch.setattr("delayed_core.worker.MAINTENANCE_TICK", 0.01)
    apps = [real_backend.app(imports=[MODULE], dequeue_timeout=0.2) for _ in range(4)]
    apps[0].queue().enqueue_many([PyTask(f"{MODULE}:mark", [i]) for i in range(200)], delay=0.5)
    assert real_backend.client.zcard("default_scheduled") == 200
    serve(apps, lambda: len(started) >= 200 and not real_backend.client.hlen("default_processing"))
    ids = [task_id for task_id, _ in started]
    assert sorted(ids) == list(range(200))  # none missing, none twice
    assert real_backend.client.zcard("default_scheduled") == 0 and real_backend.client.llen("default") == 0
    assert real_backend.client.llen("default_noti") == 0
