"""A finished task is never re-run because settling it failed: the runner retries the broker call.

- the call failed before it reached the broker: the slot's id still holds the task, so the release is
  sent again;
- the call went through but its reply was lost: whatever the id holds now (a task the release-and-take
  took) runs next, and the finished task does not run again;
- a real write outage (a read-only spell of a real redis-server) during the release.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from delayed_core import Delayed, PyTask
from delayed_core.errors import BrokerUnavailable
from delayed_redis import broker as redis_broker
from delayed_redis import connection, several_queues
from tests import worker_tasks
from tests.conftest import Backend
from tests.support.fake_broker import FakeBrokerPlugin

MODULE = "tests.worker_tasks"
_ids = itertools.count()


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    worker_tasks.reset()


@pytest.fixture(params=["memory", "fake", "real"])
def app(request: pytest.FixtureRequest) -> Delayed:
    """An app on the memory broker, on fakeredis and on a real redis-server, with a queue of its own: a
    worker thread another test left behind on the shared server (slow to stop under load) serves
    ``default`` and would take this test's tasks."""
    settings: dict[str, Any] = {"imports": [MODULE], "dequeue_timeout": 0.2, "load_entry_points": False,
                                "queue": f"release-{next(_ids)}"}
    if request.param == "memory":
        return Delayed(f"memory://release-{next(_ids)}", **settings)
    if request.param == "fake":
        return Delayed(f"fakeredis://release-{next(_ids)}", plugins=[FakeBrokerPlugin()], broker="fakeredis",
                       **settings)
    return Delayed(request.getfixturevalue("real_redis").url, **settings)


def failing_release(broker: Any, fail: Callable[[int], str | None]) -> list[int]:
    """Wrap ``broker.release_and_take_first``: ``fail(call number)`` says "before" (raise without sending),
    "after" (send, then raise as if the reply was lost) or None (behave). Returns the call log."""
    real = broker.release_and_take_first
    log: list[int] = []

    def release_and_take_first(*args: Any, **kwargs: Any) -> Any:
        log.append(len(log) + 1)
        mode = fail(len(log))
        if mode == "before":
            raise BrokerUnavailable("injected: connection refused")
        result = real(*args, **kwargs)
        if mode == "after":
            raise BrokerUnavailable("injected: connection reset while reading the reply")
        return result

    broker.release_and_take_first = release_and_take_first
    return log


def drain(app: Delayed, fail: Callable[[int], str | None]) -> list[int]:
    """Drain ``default`` with a burst worker whose releases fail as ``fail`` says; return the release log."""
    worker = app.worker()
    log = failing_release(worker.runner.consumer, fail)
    worker.run(burst=True, install_signals=False)
    return log


def test_a_release_that_never_reached_the_broker_is_sent_again_not_the_task(app: Delayed) -> None:
    queue = app.queue()
    queue.enqueue(PyTask(f"{MODULE}:record", ["first"]))
    queue.enqueue(PyTask(f"{MODULE}:record", ["second"]))
    log = drain(app, lambda n: "before" if n <= 2 else None)
    assert worker_tasks.calls == [("record", ("first",), {}), ("record", ("second",), {})]
    assert len(log) == 4  # two refused, the release of "first" (taking "second"), the release of "second"
    assert len(queue) == 0 and app.broker(queue.name).info().processing == {}


def test_a_lost_reply_of_release_and_take_runs_the_task_it_took(app: Delayed) -> None:
    queue = app.queue()
    queue.enqueue(PyTask(f"{MODULE}:record", ["first"]))
    queue.enqueue(PyTask(f"{MODULE}:record", ["second"]))
    log = drain(app, lambda n: "after" if n == 1 else None)
    # The lost call released "first" and took "second": "second" runs (once), "first" never again.
    assert worker_tasks.calls == [("record", ("first",), {}), ("record", ("second",), {})]
    assert len(log) == 2
    assert len(queue) == 0 and app.broker(queue.name).info().processing == {}


def test_a_lost_reply_of_a_release_with_nothing_next_is_not_sent_again(app: Delayed) -> None:
    queue = app.queue()
    queue.enqueue(PyTask(f"{MODULE}:record", ["only"]))
    log = drain(app, lambda n: "after" if n == 1 else None)
    assert worker_tasks.calls == [("record", ("only",), {})]
    assert len(log) == 1  # the id held nothing afterwards: the release had happened
    assert app.broker(queue.name).info().processing == {}


def test_residual_corner_identical_bytes_taken_by_a_lost_reply(app: Delayed) -> None:
    """docs/reliability.md: when a lost reply took a task with the very bytes of the finished one, the
    runner cannot tell it from an unsent release and releases it: that copy does not run (one run, not
    two, for two identical enqueues)."""
    queue = app.queue()
    queue.enqueue(PyTask(f"{MODULE}:record", ["same"]))
    queue.enqueue(PyTask(f"{MODULE}:record", ["same"]))
    log = drain(app, lambda n: "after" if n == 1 else None)
    assert worker_tasks.calls == [("record", ("same",), {})]
    assert len(log) == 2
    assert len(queue) == 0 and app.broker(queue.name).info().processing == {}


# -- a real write outage ---------------------------------------------------------------------------------
OUTAGE = {"url": "", "seconds": 1.5}


def finish_then_go_read_only(label: str) -> None:
    """Record the run, then turn the server into a replica of nothing (writes fail with READONLY) for a
    while: the release of this very task meets the outage."""
    worker_tasks.record(label)
    if len(worker_tasks.calls) > 1:
        return  # a re-run (the bug this guards against) fails the test's assertion instead of looping
    client = redis.Redis.from_url(OUTAGE["url"])
    client.execute_command("REPLICAOF", "127.0.0.1", "1")  # port 1: nothing listens, data stays

    def back() -> None:
        client.execute_command("REPLICAOF", "NO", "ONE")

    threading.Timer(OUTAGE["seconds"], back).start()


@pytest.fixture
def outage_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """READONLY and BUSY count as an unreachable broker (delayed_redis/connection.py classifies them so on
    the main line; the pipeline only relies on them arriving as BrokerUnavailable)."""
    errors = (*connection.UNAVAILABLE, redis.exceptions.ReadOnlyError, redis.exceptions.BusyLoadingError)
    for module in (connection, redis_broker, several_queues):
        monkeypatch.setattr(module, "UNAVAILABLE", errors, raising=False)


@pytest.mark.usefixtures("outage_is_unavailable")
def test_a_finished_task_is_not_run_again_during_a_read_only_spell(real_backend: Backend) -> None:
    OUTAGE["url"] = real_backend.url
    app = real_backend.app(imports=[MODULE, __name__], dequeue_timeout=0.2)
    app.queue().enqueue(PyTask(f"{__name__}:finish_then_go_read_only", ["finished"]))
    app.queue().enqueue(PyTask(f"{MODULE}:record", ["next"]))
    started = time.monotonic()
    app.worker().run(burst=True, install_signals=False)
    assert time.monotonic() - started >= OUTAGE["seconds"]  # the release really waited out the outage
    assert worker_tasks.calls == [("record", ("finished",), {}), ("record", ("next",), {})]
    client = real_backend.client
    assert client.llen("default") == 0 and client.hlen("default_processing") == 0
    assert client.llen("default_dead") == 0
