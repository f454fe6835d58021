"""Contract tests of the optional task-tracking role (``Broker.tracker_class``); part of
:mod:`delayed_core.testing.contract`. A broker without a tracker skips them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from ..interfaces import Broker
from ..interfaces.tracking import NOT_CANCELLED, REMOVED, STOPPING, Finish, Submission, TaskTracker
from .contract_support import fresh_id

Factory = Callable[[str], Broker]
Q = "contract"


def tracker_of(broker: Broker) -> TaskTracker:
    """The broker's tracker; skips the test when it has none."""
    if broker.tracker_class is None:
        pytest.skip(f"{type(broker).__name__} keeps no task records")
    return broker.tracker_class(broker)


def submit(tracker: TaskTracker, task_id: str, data: bytes, due_in: float | None = None,
           unique: float = 0) -> tuple[bool, str]:
    return tracker.submit(Submission(task_id, Q, "mod:f", data, 60.0, due_in, unique))


def done(task_id: str, status: str = "succeeded", **fields: str | bytes | int) -> Finish:
    return Finish(task_id, {"s": status, "a": 1, "w": "w1", **fields}, 60.0)


def test_tracked_task_lifecycle(broker_factory: Factory) -> None:
    broker = broker_factory(Q)
    tracker = tracker_of(broker)
    assert submit(tracker, "t1", b"task-1") == (True, "queued")
    assert tracker.read("t1").status == "queued" and len(broker) == 1
    worker = fresh_id()
    assert broker.claim_worker_id(worker, 30)
    assert broker.dequeue(worker, 1.0) == b"task-1"
    record = tracker.read("t1")
    assert (record.status, record.worker, record.queue, record.func) == ("running", worker, Q, "mod:f")
    assert tracker.release_and_take(worker, Q, (Q,), True, done("t1", r=b"\x01value")) is None
    record = tracker.read("t1")
    assert (record.status, record.result, record.attempts) == ("succeeded", b"\x01value", 1)
    assert record.finished is not None and record.enqueued is not None and broker.held(worker) is None
    assert tracker.wait("t1", 5.0).status == "succeeded"


def test_unknown_id(broker_factory: Factory) -> None:
    tracker = tracker_of(broker_factory(Q))
    assert tracker.read("never-seen").status == "unknown"
    assert tracker.wait("never-seen", 5.0).status == "unknown"
    assert tracker.cancel("never-seen", 60) == NOT_CANCELLED


def test_retry_then_dead_letter(broker_factory: Factory) -> None:
    broker = broker_factory(Q)
    tracker = tracker_of(broker)
    submit(tracker, "t2", b"try-1")
    worker = fresh_id()
    broker.claim_worker_id(worker, 30)
    assert broker.dequeue(worker, 1.0) == b"try-1"
    tracker.requeue(worker, Q, b"try-2", 0.0, done("t2", "failed", et="ValueError", em="bad"))
    record = tracker.read("t2")
    assert (record.status, record.error_type, record.message) == ("failed", "ValueError", "bad")
    assert broker.dequeue(worker, 1.0) == b"try-2"
    assert tracker.read("t2").status == "running"  # the retry's bytes are followed
    tracker.dead_letter(worker, Q, b'{"entry": 1}', 10, done("t2", "dead", et="ValueError", em="bad", a=2))
    record = tracker.read("t2")
    assert (record.status, record.attempts) == ("dead", 2)
    assert broker.dead_letters() == [b'{"entry": 1}'] and broker.held(worker) is None


def test_a_dead_holder_means_queued(broker_factory: Factory) -> None:
    broker = broker_factory(Q)
    tracker = tracker_of(broker)
    submit(tracker, "t3", b"lost")
    assert broker.dequeue(fresh_id(), 1.0) == b"lost"  # an id nobody keeps alive: a dead worker
    assert tracker.read("t3").status == "queued"


def test_cancel(broker_factory: Factory) -> None:
    broker = broker_factory(Q)
    tracker = tracker_of(broker)
    submit(tracker, "now", b"now")
    submit(tracker, "later", b"later", due_in=60)
    assert tracker.read("later").status == "scheduled"
    assert tracker.cancel("now", 60) == REMOVED and tracker.cancel("later", 60) == REMOVED
    assert len(broker) == 0 and broker.promote_and_peek(time.time() + 120)[0] == 0
    assert tracker.read("now").status == "cancelled"
    assert broker.dequeue(fresh_id(), 0.2) is None  # no notification was left behind
    assert tracker.cancel("now", 60) == NOT_CANCELLED


def test_cancel_a_running_task_asks_its_worker(broker_factory: Factory) -> None:
    broker = broker_factory(Q)
    tracker = tracker_of(broker)
    watcher = tracker.watch_cancels([Q])
    try:
        watcher.wait(0.05)  # subscribed before the request
        submit(tracker, "taken", b"taken")
        worker = fresh_id()
        broker.claim_worker_id(worker, 30)
        assert broker.dequeue(worker, 1.0) == b"taken"
        assert tracker.cancel("taken", 60) == STOPPING and tracker.read("taken").status == "running"
        heard: list[tuple[str, str]] = []
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:
            heard = watcher.wait(1.0)
        assert heard == [(worker, "taken")]
    finally:
        watcher.close()
    submit(tracker, "lost", b"lost")
    assert broker.dequeue(fresh_id(), 1.0) == b"lost"  # held by a dead worker: nobody to ask
    assert tracker.cancel("lost", 60) == NOT_CANCELLED


def test_a_pending_id_is_not_enqueued_twice(broker_factory: Factory) -> None:
    broker = broker_factory(Q)
    tracker = tracker_of(broker)
    assert submit(tracker, "order-1", b"first", unique=-1) == (True, "queued")
    assert submit(tracker, "order-1", b"second", unique=-1) == (False, "queued")
    assert len(broker) == 1


def test_a_batch_is_submitted_in_order(broker_factory: Factory) -> None:
    """submit_many: one answer per task, in order; a repeated id within the batch is refused."""
    broker = broker_factory(Q)
    tracker = tracker_of(broker)
    batch = [Submission(task_id, Q, "mod:f", data, 60.0, None, -1)
             for task_id, data in (("b1", b"one"), ("b2", b"two"), ("b1", b"again"))]
    assert tracker.submit_many(batch) == [(True, "queued"), (True, "queued"), (False, "queued")]
    assert len(broker) == 2 and tracker.read("b2").status == "queued"
    later = [Submission("b3", Q, "mod:f", b"three", 60.0, 60.0, 0)]
    assert tracker.submit_many(later) == [(True, "scheduled")] and len(broker) == 2


def test_asyncio_calls(broker_factory: Factory) -> None:
    """submit_many_async, read_async and wait_async answer as their blocking twins."""
    import asyncio

    broker = broker_factory(Q)
    tracker = tracker_of(broker)

    async def main() -> tuple[list[tuple[bool, str]], str, str, str]:
        added = await tracker.submit_many_async([Submission("a1", Q, "mod:f", b"async", 60.0)])
        queued = (await tracker.read_async("a1")).status
        waited = (await tracker.wait_async("a1", 0.2)).status  # nobody runs it: the record as it is
        unknown = (await tracker.wait_async("never-seen", 5.0)).status
        return added, queued, waited, unknown

    assert asyncio.run(main()) == ([(True, "queued")], "queued", "queued", "unknown")
    assert len(broker) == 1


def test_every_waiter_wakes(broker_factory: Factory) -> None:
    broker = broker_factory(Q)
    tracker = tracker_of(broker)
    submit(tracker, "t4", b"awaited")
    worker = fresh_id()
    assert broker.dequeue(worker, 1.0) == b"awaited"
    seen: list[str] = []
    waiters = [threading.Thread(target=lambda: seen.append(tracker.wait("t4", 10.0).status)) for _ in range(2)]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.2)
    tracker.release_and_take(worker, Q, (Q,), False, done("t4", r=b"x"))
    for waiter in waiters:
        waiter.join(10)
    assert seen == ["succeeded", "succeeded"]


def test_mark_finishes_only_a_pending_record(broker_factory: Factory) -> None:
    broker = broker_factory(Q)
    tracker = tracker_of(broker)
    submit(tracker, "poison", b"poison")
    assert tracker.mark(done("poison", "dead", et="poison", em="recovered 5 times")) is True
    record = tracker.read("poison")
    assert (record.status, record.error_type, record.message) == ("dead", "poison", "recovered 5 times")
    assert tracker.mark(done("poison", "succeeded")) is False and tracker.read("poison").status == "dead"
    assert tracker.mark(done("never-seen", "dead")) is False and tracker.read("never-seen").status == "unknown"
