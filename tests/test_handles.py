"""Task handles on fakeredis and a real redis-server: status, results, errors, ids, uniqueness, cancel."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from delayed_core import Delayed, PyTask
from delayed_core.errors import DelayedError
from delayed_core.handles import NoResult, TaskFailed
from delayed_core.task_function import TaskFunction
from tests import handle_tasks
from tests.conftest import Backend
from tests.support.fake_broker import FakeBrokerPlugin

MODULE = "tests.handle_tasks"


_ids = itertools.count()
SETTINGS: dict[str, Any] = {"imports": [MODULE], "dequeue_timeout": 0.2, "retry_backoff": 0.0}


@pytest.fixture(params=["memory", "fake", "real"])
def app(request: pytest.FixtureRequest) -> Delayed:
    """An app on the memory broker, on fakeredis and on a real redis-server."""
    if request.param == "memory":
        return Delayed(f"memory://handles-{next(_ids)}", load_entry_points=False, **SETTINGS)
    if request.param == "fake":
        return Delayed(f"fakeredis://handles-{next(_ids)}", plugins=[FakeBrokerPlugin()], broker="fakeredis",
                       load_entry_points=False, **SETTINGS)
    return Delayed(request.getfixturevalue("real_redis").url, load_entry_points=False, **SETTINGS)


def bound(app: Delayed, func: TaskFunction[Any, Any], **options: Any) -> TaskFunction[Any, Any]:
    """``func`` enqueued through ``app`` (the module's app points nowhere)."""
    return TaskFunction(app, func.func, func.path, "default", func.retry, options.get("result_ttl", func.result_ttl),
                        options.get("unique_for", 0))


def drain(app: Delayed) -> None:
    """Run a burst worker until the queue is empty."""
    app.worker().run(burst=True, install_signals=False)


@pytest.fixture
def running(app: Delayed) -> Iterator[Any]:
    worker = app.worker()
    thread = threading.Thread(target=lambda: worker.run(install_signals=False), daemon=True)
    thread.start()
    yield worker
    worker.stop()
    thread.join(10)


def test_result_of_a_task(app: Delayed, running: Any) -> None:
    handle = bound(app, handle_tasks.add).delay(2, 3)
    assert handle.result(timeout=10) == 5
    assert handle.status() == "succeeded"
    record = handle.record()
    assert record.attempts == 1 and record.worker and record.finished >= record.started >= record.enqueued - 1


def test_queued_then_finished_and_reattached_by_id(app: Delayed) -> None:
    handle = bound(app, handle_tasks.add).delay(1, 1)
    assert handle.status() == "queued"
    drain(app)
    again = app.handle(handle.id)
    assert again.status() == "succeeded" and again.result(timeout=0) == 2


def test_unknown_id(app: Delayed) -> None:
    handle = app.handle("no-such-task")
    assert handle.status() == "unknown"
    with pytest.raises(NoResult, match="unknown"):
        handle.result(timeout=0.1)


def test_failure_raises_task_failed(app: Delayed, running: Any) -> None:
    handle = bound(app, handle_tasks.boom).delay("bad value")
    with pytest.raises(TaskFailed) as caught:
        handle.result(timeout=10)
    assert (caught.value.error_type, caught.value.message) == ("ValueError", "bad value")
    assert "raise ValueError(message)" in caught.value.traceback
    assert handle.status() == "dead"


def test_retried_task_reports_attempts(app: Delayed, running: Any) -> None:
    handle = TaskFunction(app, handle_tasks.boom.func, handle_tasks.boom.path, "default", 2).delay("again")
    with pytest.raises(TaskFailed):
        handle.result(timeout=10)
    assert handle.record().attempts == 3


def test_result_over_the_cap_is_not_stored(backend: Backend) -> None:
    app = backend.app(**SETTINGS, result_max_bytes=1000)
    small, large = bound(app, handle_tasks.big).delay(900), bound(app, handle_tasks.big).delay(2000)
    drain(app)
    assert small.result(timeout=0) == b"x" * 900
    assert large.status() == "succeeded"
    with pytest.raises(NoResult, match=r"takes 2\d\d\d bytes, over result_max_bytes \(1000\)"):
        large.result(timeout=0)


def test_unencodable_value(app: Delayed) -> None:
    handle = bound(app, handle_tasks.unencodable).delay()
    drain(app)
    assert handle.status() == "succeeded"
    with pytest.raises(NoResult, match="cannot be encoded"):
        handle.result(timeout=0)


def test_timeout(app: Delayed) -> None:
    handle = bound(app, handle_tasks.add).delay(1, 2)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="queued"):
        handle.result(timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 10  # waited its timeout; the upper bound only rules out a hang


def test_two_waiters_both_get_the_result(app: Delayed) -> None:
    handle = bound(app, handle_tasks.add).delay(20, 22)
    results: list[Any] = []
    waiters = [threading.Thread(target=lambda: results.append(app.handle(handle.id).result(timeout=10)))
               for _ in range(2)]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.3)  # both waiters subscribed (not required for correctness: they read after subscribing)
    drain(app)
    for waiter in waiters:
        waiter.join(10)
    assert results == [42, 42]


def test_untracked_bytes_are_delayed_12(backend: Backend) -> None:
    app = backend.app(**SETTINGS)
    assert bound(app, handle_tasks.untracked).delay(7) is None
    app.queue().enqueue(PyTask(handle_tasks.add.path, [1, 2]))
    assert backend.client.lrange("default", 0, -1) == [msgpack.packb([handle_tasks.untracked.path, [7]]),
                                                       msgpack.packb([handle_tasks.add.path, [1, 2]])]


def test_explicit_task_tracked_on_request(backend: Backend) -> None:
    app = backend.app(**SETTINGS)
    handle = app.queue().enqueue(PyTask(handle_tasks.add.path, [1, 2]), track=True)
    assert msgpack.unpackb(backend.client.lindex("default", 0))[4] == {"id": handle.id}
    drain(app)
    assert handle.result(timeout=0) == 3


def test_caller_id_is_unique_while_pending(backend: Backend) -> None:
    app = backend.app(**SETTINGS)
    add = bound(app, handle_tasks.add)
    first = add.delay(1, 2, task_id="order-42")
    second = add.delay(5, 5, task_id="order-42")
    assert first.id == second.id == "order-42"
    assert backend.client.llen("default") == 1
    drain(app)
    assert second.result(timeout=0) == 3
    third = add.delay(5, 5, task_id="order-42")  # finished: a new run under the same id
    assert third.status() == "queued"
    drain(app)
    assert third.result(timeout=0) == 10


def test_unique_for(backend: Backend) -> None:
    app = backend.app(**SETTINGS)
    add = bound(app, handle_tasks.add, unique_for=60)
    first, second, other = add.delay(1, 2), add.delay(1, 2), add.delay(2, 1)
    assert first.id == second.id != other.id
    assert backend.client.llen("default") == 2
    drain(app)
    assert add.delay(1, 2).id == first.id and backend.client.llen("default") == 0  # within 60 s, finished


def test_a_record_settled_by_the_previous_version_is_read(backend: Backend, caplog: pytest.LogCaptureFixture) -> None:
    """Settled records were hashes before they became one string: one still in Redis reads as before, and
    an id reused while it is there is refused or run anew as its status says; a string at a record's key
    that pydelayed did not write reads as unknown, with a warning."""
    app = backend.app(**SETTINGS)
    backend.client.hset("delayed_task:old", mapping={
        "s": "succeeded", "q": "default", "fn": "tests.handle_tasks:add", "en": 1_700_000_000_000,
        "st": 1_700_000_000_100, "fi": 1_700_000_000_200, "a": 1, "w": "w1", "r": msgpack.packb(3)})
    backend.client.hset("delayed_task:old-dead", mapping={"s": "dead", "en": 1_700_000_000_000, "et": "ValueError",
                                                          "em": "no", "tb": "Traceback ..."})
    record = app.handle("old").record()
    assert (record.status, record.queue, record.func, record.enqueued, record.finished, record.worker) == (
        "succeeded", "default", "tests.handle_tasks:add", 1_700_000_000.0, 1_700_000_000.2, "w1")
    assert app.handle("old").result(timeout=0) == 3 and app.handle("old").cancel() is False
    with pytest.raises(TaskFailed, match="ValueError: no"):
        app.handle("old-dead").result(timeout=0)
    add = bound(app, handle_tasks.add)
    assert add.delay(2, 2, task_id="old").status() == "queued"  # finished: a new run under the same id
    drain(app)
    assert app.handle("old").result(timeout=0) == 4
    backend.client.set("delayed_task:foreign", b"not a record")
    with caplog.at_level(logging.WARNING, "delayed.worker"):
        assert app.handle("foreign").status() == "unknown"
    assert "not one pydelayed wrote" in caplog.text


def test_unique_for_reads_a_settled_record(backend: Backend) -> None:
    """Within the window, an equal call returns the settled task (its record now one string); after it,
    the call runs anew."""
    app = backend.app(**SETTINGS)
    add = bound(app, handle_tasks.add, unique_for=60)
    first = add.delay(1, 2)
    drain(app)
    assert add.delay(1, 2).id == first.id and backend.client.llen("default") == 0
    key = f"delayed_task:{first.id}"
    body = backend.client.get(key).partition(b"\n")[2]
    backend.client.set(key, b"%d succeeded\n%s" % (int(time.time() * 1000) - 61_000, body), px=60_000)
    assert add.delay(1, 2).id == first.id and backend.client.llen("default") == 1  # past the window: again
    assert first.status() == "queued"


def test_a_caller_id_whose_record_key_holds_another_type_is_refused_and_left_alone(backend: Backend) -> None:
    """Another program's list at a record's key (not a hash, not a string: no record) makes the tracked
    enqueue of that id fail as it always did (WRONGTYPE, nothing enqueued), not delete that program's data."""
    app = backend.app(**SETTINGS)
    backend.client.rpush("delayed_task:theirs", b"their data")
    add = bound(app, handle_tasks.add)
    with pytest.raises(DelayedError, match="WRONGTYPE"):
        add.delay(1, 2, task_id="theirs")
    assert backend.client.lrange("delayed_task:theirs", 0, -1) == [b"their data"]
    assert backend.client.llen("default") == 0


def test_cancel_queued_scheduled_and_finished(backend: Backend) -> None:
    app = backend.app(**SETTINGS)
    add = bound(app, handle_tasks.add)
    queued, scheduled, done = add.delay(1, 1), add.delay_in(60, 2, 2), add.delay(3, 3)
    drain(app)
    queued2 = add.delay(4, 4)
    assert done.cancel() is False and done.result(timeout=0) == 6
    assert queued.status() == "succeeded"
    assert scheduled.status() == "scheduled" and scheduled.cancel() is True
    assert queued2.cancel() is True and queued2.status() == "cancelled"
    assert backend.client.llen("default") == backend.client.llen("default_noti") == 0
    assert backend.client.zcard("default_scheduled") == 0
    with pytest.raises(NoResult, match="cancelled"):
        queued2.result(timeout=0)
    assert queued2.cancel() is False


def test_a_blocked_waiter_sends_a_handful_of_commands(real_redis: Any) -> None:
    """INFO commandstats while a waiter blocks in result(timeout=30): no polling, whatever the wait."""
    app = Delayed(real_redis.url, load_entry_points=False, **SETTINGS)
    handle = bound(app, handle_tasks.add).delay(4, 5)
    client = real_redis.client()
    client.config_resetstat()
    results: list[Any] = []
    waiter = threading.Thread(target=lambda: results.append(app.handle(handle.id).result(timeout=30)))
    waiter.start()
    time.sleep(1.5)  # the waiter blocks all this time; a poller would have sent many commands by now
    stats = {name: info["calls"] for name, info in client.info("commandstats").items()}
    # commands run inside the read script count too; only those the waiter sent are counted here
    inside_scripts = {"cmdstat_hgetall", "cmdstat_exists", "cmdstat_time"}
    ours = {"cmdstat_info", "cmdstat_config|resetstat"}
    sent = {name: calls for name, calls in stats.items() if name not in inside_scripts | ours}
    # HELLO on its new connection, SUBSCRIBE and a read (EVALSHA) in one round trip (pipelined_wait.py);
    # on this fresh server the read script is missing: a read through the client (HELLO on a new pool
    # connection) loads it (EVALSHA, SCRIPT LOAD, EVALSHA)
    print("commands sent by a result() waiter:", sent)
    assert sum(sent.values()) <= 7, sent
    assert sent.get("cmdstat_subscribe") == 1, sent
    time.sleep(1.5)
    later = {name: info["calls"] for name, info in client.info("commandstats").items() if name in sent}
    assert later == sent  # nothing more while it waits
    drain(app)
    waiter.join(10)
    assert results == [9]


def test_tracked_tasks_count_in_the_throughput(backend: Backend) -> None:
    """The tracked release and dead-letter calls keep the consumer's other duties (per-minute counters)."""
    app = backend.app(**SETTINGS)
    bound(app, handle_tasks.add).delay(1, 2)
    bound(app, handle_tasks.boom).delay("x")
    drain(app)
    counts = app.broker("default").throughput()
    assert (sum(counts.done), sum(counts.failed)) == (1, 1)


def test_retention(backend: Backend) -> None:
    """Finished records keep result_ttl (the setting, or the function's own); pending ones a week."""
    app = backend.app(**SETTINGS, result_ttl=100)
    default, own = bound(app, handle_tasks.add).delay(1, 1), bound(app, handle_tasks.add, result_ttl=5).delay(2, 2)
    assert 6 * 86400 < backend.client.ttl(f"delayed_task:{default.id}") <= 7 * 86400
    drain(app)
    assert 90 < backend.client.ttl(f"delayed_task:{default.id}") <= 100
    assert 0 < backend.client.ttl(f"delayed_task:{own.id}") <= 5
    assert own.result(timeout=0) == 4


@pytest.mark.parametrize(("executor", "func"), [("fork", handle_tasks.slow), ("asyncio", handle_tasks.nap),
                                                ("thread", handle_tasks.nap), ("thread", handle_tasks.spin),
                                                ("asyncio", handle_tasks.spin)])
def test_cancel_a_running_task(app: Delayed, executor: str, func: TaskFunction[Any, Any]) -> None:
    """The worker hears the request and interrupts the slot; the task ends cancelled, is not retried nor
    dead-lettered, and the slot goes on with the next task."""
    worker = app.worker(executor=executor)
    thread = threading.Thread(target=lambda: worker.run(install_signals=False), daemon=True)
    thread.start()
    try:
        retried = TaskFunction(app, func.func, func.path, "default", 5)  # retries would apply to a failure
        handle = retried.delay(30, "never")
        started = time.monotonic()
        while handle.status() != "running" and time.monotonic() - started < 15:
            time.sleep(0.05)
        assert handle.status() == "running"
        # Longer than the default 5 s: a fork child killed and reaped on a loaded machine ran past it once.
        # True proves the stop: the task (30 s) was confirmed cancelled within those 12 s.
        assert handle.cancel(wait=12) is True
        assert handle.status() == "cancelled"
        with pytest.raises(NoResult, match="cancelled"):
            handle.result(timeout=0)
        assert bound(app, handle_tasks.add).delay(1, 2).result(timeout=10) == 3
        assert app.broker("default").dead_letters() == [] and handle.status() == "cancelled"
    finally:
        worker.stop()
        thread.join(15)


def test_a_thread_blocked_in_a_c_call_stops_when_it_returns(app: Delayed, running: Any) -> None:
    """time.sleep in one piece does not see the stop raised into its thread until it returns: cancel()
    gives up after ``wait``, yet the task still ends cancelled, with no result."""
    handle = bound(app, handle_tasks.slow).delay(1.0, "finished")
    started = time.monotonic()
    while handle.status() != "running" and time.monotonic() - started < 10:
        time.sleep(0.05)
    assert handle.cancel(wait=0.2) is False
    with pytest.raises(NoResult, match="cancelled"):
        handle.result(timeout=10)
    assert bound(app, handle_tasks.add).delay(1, 2).result(timeout=10) == 3


@pytest.mark.parametrize("executor", ["fork", "subprocess", "asyncio"])
def test_values_cross_from_task_processes(real_backend: Backend, executor: str) -> None:
    app = real_backend.app(**SETTINGS)  # subprocess children rebuild the app: a real server
    value = bound(app, handle_tasks.add).delay(20, 3)
    awaited = bound(app, handle_tasks.nap).delay(0.01, "awaited")
    odd = bound(app, handle_tasks.unencodable).delay()
    app.worker(executor=executor).run(burst=True, install_signals=False)
    assert (value.result(timeout=0), awaited.result(timeout=0)) == (23, "awaited")
    assert odd.status() == "succeeded"
    with pytest.raises(NoResult, match="cannot be encoded with msgpack"):
        odd.result(timeout=0)


def test_a_poison_task_is_dead_in_its_record(app: Delayed, request: pytest.FixtureRequest) -> None:
    """A task that killed max_recoveries + 1 workers is buried by the sweeper; its record says dead and a
    waiter gets TaskFailed (fakeredis's Lua lacks redis.sha1hex, which the poison cap needs)."""
    if "fake" in request.node.callspec.id:
        pytest.skip("fakeredis has no poison cap")
    handle = bound(app, handle_tasks.add).delay(1, 1)
    broker = app.broker("default")
    sweeper = app.sweeper(["default"], max_recoveries=1)
    for _ in range(2):  # taken by a worker id that is never alive: a worker that died at once
        assert broker.dequeue("dead" + "0" * 28, 1.0) is not None
        sweeper.sweep_once()
    with pytest.raises(TaskFailed) as caught:
        handle.result(timeout=5)
    assert caught.value.error_type == "poison" and "recovered 1 times" in caught.value.message
    assert handle.record().attempts == 2


def test_an_acl_without_pub_sub(real_redis: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Tracking needs the record keys (~delayed_task:*); without pub/sub rights a waiter reads twice a
    second and a worker cannot stop running tasks, each said once, and nothing fails."""
    from tests.test_security import ACL_RULE, WORKER_ID_PATTERN

    rule = [part for part in ACL_RULE if not part.startswith("~")]
    keys = ["~default", "~default_*", f"~{WORKER_ID_PATTERN}", "~delayed_task:*"]
    real_redis.client().execute_command("ACL", "SETUSER", "tracker", *rule, *keys)
    url = real_redis.url.replace("redis://", "redis://tracker:workerpass@")
    app = Delayed(url, load_entry_points=False, **SETTINGS)
    handle = bound(app, handle_tasks.add).delay(5, 6)
    worker = app.worker()
    thread = threading.Thread(target=lambda: worker.run(install_signals=False), daemon=True)
    thread.start()
    try:
        assert handle.result(timeout=10) == 11
        assert bound(app, handle_tasks.add).delay(1, 1).result(timeout=10) == 2
        assert asyncio.run(bound(app, handle_tasks.slow).delay(0.3, "late").result_async(timeout=10)) == "late"
    finally:
        worker.stop()
        thread.join(10)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert sum("result() reads the record twice a second" in w for w in warnings) == 1, warnings
    assert sum("result_async() reads the record twice a second" in w for w in warnings) == 1, warnings
    assert sum("running tasks of this worker cannot be cancelled" in w for w in warnings) == 1, warnings
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
