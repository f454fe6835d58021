"""Stop requests that used to be lost, on a real redis-server with an in-process worker.

- A stop asked for while a slot holds a tracked task it has not started yet (taken, still being decoded
  or announced): the task ends cancelled and its function never runs. The request is made from the
  slot's own ``delayed_task_dequeued`` hook, which then waits until the worker's cancel listener has
  heard it: exactly the window in which the listener used to find no running task and drop the stop.
- A stop published while the worker's listener is not subscribed (a worker just started, or
  reconnecting): ``cancel()`` asks again until the task has ended.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from delayed_core import Delayed, hookimpl
from delayed_core.handles import NoResult
from delayed_core.interfaces.tracking import STOPPING
from delayed_core.task import Task
from tests import handle_tasks
from tests.support.redis_server import RedisServer
from tests.test_handles import SETTINGS, bound


class CancelOnDequeue:
    """Cancels the task with id ``target`` from its dequeued hook, then waits for the listener's mark."""

    def __init__(self, app: Delayed) -> None:
        self.app = app
        self.target = ""
        self.worker: Any = None
        self.answer = ""
        self.marked = False

    @hookimpl
    def delayed_task_dequeued(self, queue: str, task: Task, worker_id: str) -> None:
        if task.meta.get("id") != self.target:  # type: ignore[union-attr]
            return
        handle = self.app.handle(self.target)
        self.answer = handle.tracker.cancel(self.target, 60.0)
        state = self.worker.slots[0].state
        deadline = time.monotonic() + 10
        while state.cancel_before_start != self.target and time.monotonic() < deadline:
            time.sleep(0.01)  # the listener thread marks the slot: a condition with a deadline
        self.marked = state.cancel_before_start == self.target


@pytest.mark.parametrize("prefetch", [1, 4])
def test_a_stop_before_the_function_starts_is_not_lost(real_redis: RedisServer, prefetch: int) -> None:
    app = Delayed(real_redis.url, load_entry_points=False, **SETTINGS, prefetch=prefetch)
    plugin = CancelOnDequeue(app)
    app.register_plugin(plugin)
    worker = plugin.worker = app.worker(executor="thread")
    thread = threading.Thread(target=lambda: worker.run(install_signals=False), daemon=True)
    thread.start()
    try:
        # The hook asks once: the listener must be subscribed by then (the test below covers the opposite)
        client = real_redis.client()
        deadline = time.monotonic() + 10
        while client.pubsub_numsub("delayed_cancel:default")[0][1] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        slow = bound(app, handle_tasks.slow)
        plugin.target = f"early-{prefetch}-{time.time_ns()}"  # known to the hook before the worker can take it
        slow.delay(0.5, "ran anyway", task_id=plugin.target)
        handle = app.handle(plugin.target)
        with pytest.raises(NoResult, match="cancelled"):
            handle.result(timeout=15)
        assert plugin.answer == STOPPING and plugin.marked, "the listener must have heard the stop in time"
        assert handle.status() == "cancelled"
        assert bound(app, handle_tasks.add).delay(1, 2).result(timeout=10) == 3  # the slot goes on
        assert app.broker("default").dead_letters() == []
    finally:
        worker.stop()
        thread.join(15)


def test_a_stop_the_listener_missed_is_asked_again(real_redis: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The listener subscribes 1.5 s late, as a worker that just started or lost its connection: the first
    request goes unheard, a repeat reaches it."""
    from delayed_redis.tracking import RedisCancelWatcher

    subscribe_late = RedisCancelWatcher.wait
    late: dict[str, bool] = {}

    def wait(self: RedisCancelWatcher, timeout: float) -> list[tuple[str, str]]:
        if not late:
            late["sleeping"] = True
            time.sleep(1.5)  # not subscribed yet: what is published meanwhile is lost
            late["listening"] = True
        return subscribe_late(self, timeout)

    monkeypatch.setattr(RedisCancelWatcher, "wait", wait)
    app = Delayed(real_redis.url, load_entry_points=False, **SETTINGS)
    worker = app.worker(executor="thread")
    thread = threading.Thread(target=lambda: worker.run(install_signals=False), daemon=True)
    thread.start()
    try:
        handle = bound(app, handle_tasks.spin).delay(30, "never")
        deadline = time.monotonic() + 15
        while handle.status() != "running" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert handle.status() == "running" and "listening" not in late, "the stop must come before the listener"
        started = time.monotonic()
        assert handle.cancel(wait=10) is True
        assert time.monotonic() - started < 5
        assert handle.status() == "cancelled"
    finally:
        worker.stop()
        thread.join(15)
