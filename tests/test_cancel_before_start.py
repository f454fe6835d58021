"""A stop asked for while a slot holds a tracked task it has not started yet (taken, still being decoded or
announced) is not lost: the task ends cancelled and its function never runs. The request is made from
the slot's own ``delayed_task_dequeued`` hook, which then waits until the worker's cancel listener has
heard it: exactly the window in which the listener used to find no running task and drop the stop."""

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
        slow = bound(app, handle_tasks.slow)
        plugin.target = slow.delay(0.5, "ran anyway").id  # type: ignore[union-attr]
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
