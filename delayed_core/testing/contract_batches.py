"""The broker contract suite, part five: batches of a prefetching slot (``--prefetch K``, see :mod:`.contract`).

Each test runs twice: through the broker's own :class:`~delayed_core.interfaces.batches.Batches` role
(skipped when it has none), and through the one-call-per-task default every broker gets
(:func:`~delayed_core.interfaces.batches.default_batch`), which must keep the same promises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from ..interfaces import Broker
from ..interfaces.batches import Batches, Finished, Held, default_batch, default_held_by
from ..sweeper import sweep_queue
from .contract_support import fresh_id
from .contract_tracking import Q, done, submit, tracker_of

Factory = Callable[[str], Broker]
both_ways = pytest.mark.parametrize("native", [True, False], ids=["native", "default"])


class _Slot:
    """The batch calls of one prefetching slot over ``queues``, natively or through the defaults."""

    def __init__(self, broker_factory: Factory, queues: Sequence[str], native: bool, size: int = 3) -> None:
        self.brokers = {name: broker_factory(name) for name in queues}
        self.queues = tuple(queues)
        self.first = self.brokers[self.queues[0]]
        if native and not isinstance(self.first, Batches):
            pytest.skip(f"{type(self.first).__name__} does not implement Batches")
        if native and len(queues) > 1 and not getattr(self.first, "batch_spans_queues", True):
            pytest.skip(f"{type(self.first).__name__} batches one queue at a time")
        self.native = native
        self.ids = [fresh_id() for _ in range(size)]
        for worker_id in self.ids:
            assert self.first.claim_worker_id(worker_id, 60)

    def batch(self, done: Sequence[Held] = (), unstarted: Sequence[Held] = (),
              take: Sequence[str] | None = None) -> list[Held]:
        take_ids = self.ids if take is None else take
        finished = [Finished(held) for held in done]
        if self.native:
            assert isinstance(self.first, Batches)
            return self.first.release_take_batch(finished, unstarted, take_ids, self.queues)
        return default_batch(self.brokers, finished, unstarted, take_ids, self.queues)

    def held(self) -> list[Held]:
        if self.native:
            assert isinstance(self.first, Batches)
            return self.first.held_by(self.ids, self.queues)
        return default_held_by(self.first, self.ids, self.queues)


@both_ways
def test_a_batch_takes_up_to_k_in_order_each_under_its_own_id(broker_factory: Factory, native: bool) -> None:
    slot = _Slot(broker_factory, ["contract"], native)
    broker = slot.first
    broker.enqueue([b"t1", b"t2", b"t3", b"t4", b"t5"])
    taken = slot.batch()
    assert taken == [Held(slot.ids[i], "contract", task) for i, task in enumerate((b"t1", b"t2", b"t3"))]
    assert slot.held() == taken  # every task held under its own id, as go-delayed's layout wants
    assert {worker_id: task for worker_id, (task, _) in broker.info().processing.items()} == {
        held.worker_id: held.task for held in taken}
    # the next batch releases the three and takes the two left, then nothing is ready
    again = slot.batch(done=taken)
    assert [held.task for held in again] == [b"t4", b"t5"] and len(broker) == 0
    assert slot.batch(done=again) == [] and slot.held() == []
    assert broker.info().processing == {}


@both_ways
def test_unstarted_tasks_go_back_to_the_front_in_order(broker_factory: Factory, native: bool) -> None:
    slot = _Slot(broker_factory, ["contract"], native)
    broker = slot.first
    broker.enqueue([b"t1", b"t2", b"t3", b"t4"])
    taken = slot.batch()
    assert slot.batch(done=taken[:1], unstarted=taken[1:], take=()) == []
    assert slot.held() == []
    reader = fresh_id()
    order = []
    for _ in range(3):
        order.append(broker.dequeue(reader, 1.0))
        broker.release(reader)
    assert order == [b"t2", b"t3", b"t4"]


def test_a_hand_back_by_id_alone_puts_back_what_the_id_holds(broker_factory: Factory) -> None:
    """At the shutdown timeout the worker's main thread hands back the tasks of a batch call whose reply
    only the slot's thread can read: by id alone, without their bytes. What each id holds goes back to
    the front, and an id holding nothing is skipped. Native batches only (the one-call-per-task default
    never has a call in flight)."""
    slot = _Slot(broker_factory, ["contract"], native=True)
    slot.first.enqueue([b"t1", b"t2", b"t3"])
    assert len(slot.batch(take=slot.ids[:2])) == 2
    assert slot.batch(unstarted=[Held(worker_id, "contract", b"") for worker_id in slot.ids], take=()) == []
    assert slot.held() == []
    assert [held.task for held in slot.batch()] == [b"t1", b"t2", b"t3"]


@both_ways
def test_an_id_still_holding_a_task_is_skipped(broker_factory: Factory, native: bool) -> None:
    slot = _Slot(broker_factory, ["contract"], native)
    slot.first.enqueue([b"t1", b"t2", b"t3"])
    (first,) = slot.batch(take=slot.ids[:1])
    taken = slot.batch()  # the first id still holds t1: never overwritten
    assert [(held.worker_id, held.task) for held in taken] == [(slot.ids[1], b"t2"), (slot.ids[2], b"t3")]
    assert slot.held() == [first, *taken]


@both_ways
def test_a_batch_takes_from_the_highest_queue_first(broker_factory: Factory, native: bool) -> None:
    if not broker_factory("contract-high").serves_several_queues:
        pytest.skip("the broker serves one queue per worker")
    slot = _Slot(broker_factory, ["contract-high", "contract-low"], native, size=4)
    slot.brokers["contract-low"].enqueue([b"low1", b"low2"])
    slot.brokers["contract-high"].enqueue([b"high1", b"high2"])
    taken = slot.batch()
    assert [(held.queue, held.task) for held in taken] == [
        ("contract-high", b"high1"), ("contract-high", b"high2"), ("contract-low", b"low1"), ("contract-low", b"low2")]
    assert slot.held() == taken
    # a hand-back goes to the front of each task's own queue
    assert slot.batch(unstarted=taken[1:3], take=()) == []
    assert len(slot.brokers["contract-high"]) == 1 and len(slot.brokers["contract-low"]) == 1
    assert slot.batch(done=[taken[0], taken[3]])[:2] == [Held(slot.ids[0], "contract-high", b"high2"),
                                                        Held(slot.ids[1], "contract-low", b"low1")]


@both_ways
def test_every_prefetched_task_of_a_dead_slot_is_recovered(broker_factory: Factory, native: bool) -> None:
    slot = _Slot(broker_factory, ["contract"], native)
    broker = slot.first
    broker.enqueue([b"t1", b"t2", b"t3"])
    assert len(slot.batch()) == 3
    assert sweep_queue(broker, "contract").requeued == 0  # held under live ids: left alone
    broker.go_offline(slot.ids)  # the process died
    assert sweep_queue(broker, "contract").requeued == 3
    reader = fresh_id()
    recovered = []
    for _ in range(3):
        recovered.append(broker.dequeue(reader, 1.0) or b"nothing")
        broker.release(reader)
    assert sorted(recovered) == [b"t1", b"t2", b"t3"]


def test_a_batch_writes_the_records_of_tracked_tasks(broker_factory: Factory) -> None:
    slot = _Slot(broker_factory, [Q], native=True, size=2)
    broker, tracker = slot.first, tracker_of(slot.first)
    assert isinstance(broker, Batches)
    submit(tracker, "b1", b"task-b1")
    submit(tracker, "b2", b"task-b2")
    taken = slot.batch()
    assert [tracker.read(task_id).worker for task_id in ("b1", "b2")] == slot.ids
    finished = [Finished(taken[0], done("b1", r=b"\x01one")), Finished(taken[1])]
    assert broker.release_take_batch(finished, (), (), (Q,)) == []
    record = tracker.read("b1")
    assert (record.status, record.result, record.attempts) == ("succeeded", b"\x01one", 1)
    assert record.finished is not None and tracker.wait("b1", 5.0).status == "succeeded"
    assert slot.held() == [] and broker.info().processing == {}
