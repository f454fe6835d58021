"""A waiter reads the record once more at its deadline (pipelined_wait.py, waiting.py, async_tracking.py): a
task that ended without the waiter being told gives its value, and a ``TimeoutError`` names the status read
then, not the one read before the wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from delayed_core import Delayed
from delayed_core.handles import TaskHandle
from delayed_redis import async_tracking
from delayed_redis.pipelined_wait import PipelinedWaiter
from delayed_redis.waiting import RecordWaiter
from tests import handle_tasks
from tests.support.redis_server import RedisServer
from tests.test_handles import SETTINGS, bound, drain

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

#: the waiters: RESP3 connections (pipelined), RESP2 ones (pub/sub), and result_async on the event loop
WAITERS = ["resp3", "resp2", "asyncio"]
#: a live worker's id (its liveness key, in go-delayed's layout, is the id itself)
WORKER = "w" * 32


def when_asleep(monkeypatch: pytest.MonkeyPatch, waiter: str, change: Callable[[], None]) -> list[bool]:
    """Run ``change`` once, as ``waiter`` starts to wait for an announcement: its reads before that are
    done, so the record changes with nothing announced. The list returned is non-empty once it ran."""
    ran: list[bool] = []

    def once(kind: str | bytes) -> None:
        if kind in ("message", b"message") and not ran:
            change()
            ran.append(True)

    if waiter == "asyncio":
        next_message = async_tracking._next

        async def hooked_next(reader: Any, kind: str, *args: Any, **kwargs: Any) -> bool:
            once(kind)
            return await next_message(reader, kind, *args, **kwargs)

        monkeypatch.setattr(async_tracking, "_next", hooked_next)
        return ran
    cls, name = (PipelinedWaiter, "_push") if waiter == "resp3" else (RecordWaiter, "_next")
    original = getattr(cls, name)

    def hooked(self: Any, connection: Any, kind: str | bytes, *args: Any, **kwargs: Any) -> bool:
        once(kind)
        return bool(original(self, connection, kind, *args, **kwargs))

    monkeypatch.setattr(cls, name, hooked)
    return ran


def result(waiter: str, handle: TaskHandle, timeout: float) -> Any:
    """``handle``'s result as ``waiter`` waits for it."""
    if waiter == "asyncio":
        return asyncio.run(handle.result_async(timeout=timeout))
    return handle.result(timeout=timeout)


def app_for(real_redis: RedisServer, waiter: str) -> Delayed:
    protocol = "?protocol=2" if waiter == "resp2" else ""
    return Delayed(real_redis.url + protocol, load_entry_points=False, **SETTINGS)


@pytest.mark.parametrize("waiter", WAITERS)
def test_a_task_that_ended_unannounced_gives_its_value_at_the_deadline(
        real_redis: RedisServer, monkeypatch: pytest.MonkeyPatch, waiter: str) -> None:
    app = app_for(real_redis, waiter)
    admin = real_redis.client()
    done = bound(app, handle_tasks.add).delay(20, 22)
    drain(app)
    waited = bound(app, handle_tasks.add).delay(1, 1)
    # the waited task's record becomes the settled one of the other task, and no one publishes
    ran = when_asleep(monkeypatch, waiter, lambda: admin.set(f"delayed_task:{waited.id}",
                                                             admin.get(f"delayed_task:{done.id}")))
    assert result(waiter, waited, 0.3) == 42
    assert ran


@pytest.mark.parametrize("waiter", WAITERS)
def test_a_timeout_names_the_status_read_at_the_deadline(real_redis: RedisServer, monkeypatch: pytest.MonkeyPatch,
                                                         waiter: str) -> None:
    app = app_for(real_redis, waiter)
    admin = real_redis.client()
    waited = bound(app, handle_tasks.add).delay(1, 1)

    def taken() -> None:  # a live worker holds the task's bytes: running (nothing is announced for that)
        admin.hset("default_processing", WORKER, admin.lindex("default", 0) or b"")
        admin.set(WORKER, "1")

    ran = when_asleep(monkeypatch, waiter, taken)
    with pytest.raises(TimeoutError, match=r"\(it is running\)"):
        result(waiter, waited, 0.3)
    assert ran

