"""What each right the docs single out does in the cluster key layout, on one redis-server (docs/reliability.md,
"Minimal ACL ... in the cluster key layout"): without ``+client|id`` a worker takes no task; without
``+client|unblock`` a worker of two queues takes seconds per task from idle; ``+ssubscribe`` without
``+spublish`` leaves ``result()`` asleep until its timeout; without ``+sunsubscribe`` (``+unsubscribe`` in
go-delayed's layout) a thread's next wait reads the record twice a second."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from delayed_core import Delayed, PyTask
from delayed_core.testing.processes import wait_until
from tests.support.redis_server import RedisServer
from tests.test_acl_cluster import PASSWORD, USER, set_rule
from tests.test_security import ACL_RULE as GO_DELAYED_MINIMAL
from tests.test_security import QUEUE as GO_DELAYED_QUEUE

ADD = "tests.handle_tasks:add"
POLLING = "reads the record twice a second instead"


@pytest.fixture
def server(servers: list[RedisServer]) -> RedisServer:
    """A private redis-server (ACL users are set on it)."""
    servers.append(RedisServer().start())
    return servers[-1]


@pytest.fixture
def apps() -> Iterator[list[Delayed]]:
    """Apps a test makes; their workers stopped and clients closed afterwards."""
    made: list[Delayed] = []
    yield made
    for app in made:
        app.close()


def user_app(server: RedisServer, apps: list[Delayed], **settings: Any) -> Delayed:
    """An app connecting as the ACL user, in the cluster key layout unless ``settings`` say otherwise."""
    settings = {"key_layout": "cluster", "dequeue_timeout": 5, **settings}
    app = Delayed(f"redis://{USER}:{PASSWORD}@127.0.0.1:{server.port}/0", load_entry_points=False,
                  imports=["tests.handle_tasks"], **settings)
    apps.append(app)
    return app


def run_worker(app: Delayed, queues: list[str]) -> Callable[[], None]:
    """A worker of ``queues`` on a thread; returns what stops it and waits for its end."""
    worker = app.worker(queues)
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()

    def stop() -> None:
        worker.stop()
        thread.join(30)
        assert not thread.is_alive()

    return stop


def test_without_client_id_a_worker_takes_no_task(server: RedisServer, apps: list[Delayed],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    admin = server.client()
    set_rule(admin, "minimal")
    admin.execute_command("ACL", "SETUSER", USER, "-client|id")
    app = user_app(server, apps, dequeue_timeout=0.3)
    handle = app.queue("q").enqueue(PyTask(ADD, [1, 2]), track=True)
    stop = run_worker(app, ["q"])
    try:
        assert wait_until(lambda: "'client|id'" in caplog.text, 10), caplog.text
        time.sleep(2)
        assert handle.status() == "queued" and admin.llen("{q}") == 1
    finally:
        stop()
    assert "broker unavailable" in caplog.text


@pytest.mark.parametrize("unblock", [True, False], ids=["with-unblock", "without-unblock"])
def test_client_unblock_decides_how_fast_a_worker_of_two_queues_starts(server: RedisServer, apps: list[Delayed],
                                                                      caplog: pytest.LogCaptureFixture,
                                                                      unblock: bool) -> None:
    """Enqueue-to-result on an idle worker of two queues, four tasks: about 2 s each without ``+client|unblock``
    (the end of each wait waits for the other queue's BLPOP), milliseconds with it. Without it the worker says
    so once and stops asking (it asked 20 times a second while a wait ended)."""
    admin = server.client()
    set_rule(admin, "minimal", "resetkeys", "~{high}*", "~{low}*", "+ssubscribe", "+sunsubscribe", "+spublish",
             "&{high}_task:*", "&{low}_task:*")
    if not unblock:
        admin.execute_command("ACL", "SETUSER", USER, "-client|unblock")
    app = user_app(server, apps)
    stop = run_worker(app, ["high", "low"])
    try:
        assert wait_until(lambda: admin.info("clients")["blocked_clients"] >= 2, 10)
        times = []
        for n, queue in enumerate(["low", "high", "low", "high"]):
            started = time.monotonic()
            assert app.queue(queue).enqueue(PyTask(ADD, [n, 1]), track=True).result(timeout=30) == n + 1
            times.append(time.monotonic() - started)
            wait_until(lambda: admin.info("clients")["blocked_clients"] >= 2, 10)
    finally:
        stop()
    if unblock:
        assert statistics.median(times) < 0.5, times
        assert "client|unblock" not in {entry["object"] for entry in admin.acl_log()}
    else:
        # the median: a BLPOP of the other queue that happens to end on its own shortens one wait
        assert statistics.median(times) > 1.5, times
        refused = sum(int(entry["count"]) for entry in admin.acl_log() if entry["object"] == "client|unblock")
        warnings = [record.getMessage() for record in caplog.records if "+client|unblock" in record.getMessage()]
        print(f"refused CLIENT UNBLOCKs: {refused}; warnings: {warnings}")
        # one pipelined UNBLOCK of the slot's blocked BLPOPs (one per queue), then none
        assert 1 <= refused <= 2 and len(warnings) == 1, (refused, warnings)


def test_a_waiter_that_may_subscribe_needs_a_worker_that_may_publish(server: RedisServer,
                                                                    apps: list[Delayed]) -> None:
    """``+ssubscribe`` without ``+spublish``: the task succeeds, but the waiter sleeps until its timeout (and
    then reads the value: a waiter reads the record once more at its deadline)."""
    admin = server.client()
    set_rule(admin, "minimal", "+ssubscribe", "+sunsubscribe", "&{q}_task:*")
    app = user_app(server, apps, dequeue_timeout=0.3)
    handle = app.queue("q").enqueue(PyTask(ADD, [1, 1]), track=True)
    worker = app.worker("q")

    def later() -> None:
        # once the waiter subscribed (its read goes out with its SSUBSCRIBE) the task runs
        assert wait_until(lambda: admin.execute_command("PUBSUB", "SHARDCHANNELS"), 10)
        worker.run(burst=True, install_signals=False)

    threading.Thread(target=later, daemon=True).start()
    started = time.monotonic()
    assert handle.result(timeout=3) == 2
    waited = time.monotonic() - started
    print(f"result(timeout=3) of a task that succeeded unannounced returned after {waited:.2f} s")
    assert waited >= 3
    assert handle.status() == "succeeded"


#: per layout: the queue, the rule letting a waiter sleep on the record's channel (the documented minimal
#: rule, tests/test_security.py's for go-delayed's layout, plus the channel), and the right to leave it
WAITERS = {
    "cluster": ("q", lambda admin: set_rule(admin, "minimal", "+ssubscribe", "+spublish", "&{q}_task:*"),
                "sunsubscribe"),
    "go-delayed": (GO_DELAYED_QUEUE, lambda admin: admin.execute_command(
        "ACL", "SETUSER", USER, "reset", *GO_DELAYED_MINIMAL, f">{PASSWORD}", "+subscribe", "+publish",
        "&delayed_task:*"), "unsubscribe"),
}


@pytest.mark.parametrize("layout", list(WAITERS))
@pytest.mark.parametrize("leave", [True, False], ids=["with-leave", "without-leave"])
def test_a_thread_waits_again_on_the_channel_only_with_the_right_to_leave_it(
        server: RedisServer, apps: list[Delayed], caplog: pytest.LogCaptureFixture, layout: str, leave: bool) -> None:
    admin = server.client()
    queue, grant, right = WAITERS[layout]
    grant(admin)
    if leave:
        admin.execute_command("ACL", "SETUSER", USER, f"+{right}")
    app = user_app(server, apps, key_layout=layout, dequeue_timeout=0.2)
    stop = run_worker(app, [queue])
    try:
        results = [app.queue(queue).enqueue(PyTask(ADD, [n, 1]), track=True).result(timeout=10) for n in range(3)]
    finally:
        stop()
    assert results == [1, 2, 3]
    denied = {entry["object"] for entry in admin.acl_log()}
    assert (POLLING in caplog.text, right in denied) == (not leave, not leave), (caplog.text, denied)


def test_the_user_may_not_touch_other_queues(server: RedisServer) -> None:
    set_rule(server.client(), "minimal")
    user = redis.Redis(port=server.port, username=USER, password=PASSWORD)
    user.rpush("{q}", "t")
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.rpush("{other}", "t")
