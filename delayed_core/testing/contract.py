"""The broker contract suite: pytest tests that every :class:`~delayed_core.interfaces.Broker` must pass.

A broker package runs it by importing the tests into one of its test modules and providing a
``broker_factory`` fixture: a callable that builds the broker of a queue name, on a backend that is empty
when the test starts; brokers built by one factory share that backend (like queues on one server)::

    import pytest
    from delayed_core.testing.contract import *  # noqa: F403 - the tests and their fixtures

    @pytest.fixture
    def broker_factory():
        backend = MyBackend.fresh()
        return lambda name: MyBroker(name, backend)

A factory may carry ``lacks``, a set of feature names whose tests are skipped for it: ``"poison"`` (the
poison-task cap), ``"expiry"`` (liveness that runs out by itself). The tests cover every role: producer,
consumer (one queue and several in priority order), liveness, sweeper (at-least-once recovery after a
simulated death, poison tasks, scheduled promotion), admin (info, discovery, dead-letter round trips) and,
when the broker has them, the task-tracking role (``contract_tracking.py``) and the FlowControl role
(bounded enqueue, rate-limit throttling: ``contract_flow.py``), and the batches of a prefetching slot
(``contract_batches.py``), natively or through the default every broker gets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from ..interfaces import Broker
from .contract_batches import (
    test_a_batch_takes_from_the_highest_queue_first,
    test_a_batch_takes_up_to_k_in_order_each_under_its_own_id,
    test_a_batch_writes_the_records_of_tracked_tasks,
    test_a_hand_back_by_id_alone_puts_back_what_the_id_holds,
    test_an_id_still_holding_a_task_is_skipped,
    test_every_prefetched_task_of_a_dead_slot_is_recovered,
    test_unstarted_tasks_go_back_to_the_front_in_order,
)
from .contract_flow import (
    test_enqueue_bounded_refuses_a_batch_that_does_not_fit,
    test_throttle_spaces_starts_and_parks_early_tasks,
)
from .contract_support import WORKER, fresh_id, lacks
from .contract_sweeper import (
    test_a_killed_sweeper_leaves_poison_tasks_for_the_next_sweep,
    test_a_live_workers_task_is_left_alone,
    test_a_poison_task_becomes_a_dead_letter_the_core_built,
    test_an_expired_id_counts_as_dead,
    test_dead_letter_round_trip,
    test_discover_queues_finds_queues_with_data,
    test_info_reports_lengths_holders_and_live_workers,
    test_promotion_moves_only_due_tasks_and_peeks_at_the_next,
    test_purge_and_clear,
    test_release_forgets_the_poison_count,
    test_tasks_of_a_dead_worker_are_recovered_at_least_once,
)
from .contract_tracking import (
    test_a_batch_is_submitted_in_order,
    test_a_dead_holder_means_queued,
    test_a_pending_id_is_not_enqueued_twice,
    test_asyncio_calls,
    test_cancel,
    test_cancel_a_running_task_asks_its_worker,
    test_every_waiter_wakes,
    test_mark_finishes_only_a_pending_record,
    test_retry_then_dead_letter,
    test_tracked_task_lifecycle,
    test_unknown_id,
)

__all__ = [
    "lacks",
    "test_a_batch_is_submitted_in_order",
    "test_a_batch_takes_from_the_highest_queue_first",
    "test_a_batch_takes_up_to_k_in_order_each_under_its_own_id",
    "test_a_batch_writes_the_records_of_tracked_tasks",
    "test_a_dead_holder_means_queued",
    "test_a_hand_back_by_id_alone_puts_back_what_the_id_holds",
    "test_a_killed_sweeper_leaves_poison_tasks_for_the_next_sweep",
    "test_a_live_workers_task_is_left_alone",
    "test_a_pending_id_is_not_enqueued_twice",
    "test_a_poison_task_becomes_a_dead_letter_the_core_built",
    "test_an_expired_id_counts_as_dead",
    "test_an_id_still_holding_a_task_is_skipped",
    "test_asyncio_calls",
    "test_cancel",
    "test_cancel_a_running_task_asks_its_worker",
    "test_claimed_ids_are_exclusive_until_offline",
    "test_dead_letter_releases_and_keeps_the_newest",
    "test_dead_letter_round_trip",
    "test_dequeue_takes_in_order_and_holds_the_task",
    "test_dequeue_times_out_on_an_empty_queue",
    "test_discover_queues_finds_queues_with_data",
    "test_enqueue_bounded_refuses_a_batch_that_does_not_fit",
    "test_enqueue_counts_waiting_tasks",
    "test_every_prefetched_task_of_a_dead_slot_is_recovered",
    "test_every_waiter_wakes",
    "test_info_reports_lengths_holders_and_live_workers",
    "test_keep_alive_extends_liveness",
    "test_mark_finishes_only_a_pending_record",
    "test_promotion_moves_only_due_tasks_and_peeks_at_the_next",
    "test_purge_and_clear",
    "test_release_and_take_next",
    "test_release_forgets_the_poison_count",
    "test_requeue_front_and_delay",
    "test_retry_then_dead_letter",
    "test_several_queues_are_served_in_priority_order",
    "test_tasks_of_a_dead_worker_are_recovered_at_least_once",
    "test_throttle_spaces_starts_and_parks_early_tasks",
    "test_tracked_task_lifecycle",
    "test_unknown_id",
    "test_unstarted_tasks_go_back_to_the_front_in_order",
    "test_wake_interrupts_a_blocked_dequeue",
]

Factory = Callable[[str], Broker]


# -- producer ------------------------------------------------------------------------------------
def test_enqueue_counts_waiting_tasks(broker_factory: Factory) -> None:
    broker = broker_factory("contract")
    assert len(broker) == 0
    broker.enqueue([b"one"])
    broker.enqueue([b"two", b"three"])
    broker.schedule([b"later"], time.time() + 60)
    assert len(broker) == 3  # scheduled tasks do not count
    assert broker.name == "contract"


# -- consumer ------------------------------------------------------------------------------------
def test_dequeue_takes_in_order_and_holds_the_task(broker_factory: Factory) -> None:
    broker = broker_factory("contract")
    broker.enqueue([b"first", b"second", b"\x00\xff binary"])
    worker = fresh_id()
    assert broker.dequeue(worker, 1.0) == b"first"
    assert broker.held(worker) == b"first"
    assert broker.dequeue(worker, 1.0) == b"first"  # a lost reply: the same task again
    assert len(broker) == 2
    assert broker.release(worker) is None and broker.held(worker) is None
    assert [broker.dequeue(fresh_id(), 1.0) for _ in range(2)] == [b"second", b"\x00\xff binary"]


def test_dequeue_times_out_on_an_empty_queue(broker_factory: Factory) -> None:
    broker = broker_factory("contract")
    started = time.monotonic()
    assert broker.dequeue(fresh_id(), 0.2) is None
    assert time.monotonic() - started < 5


def test_release_and_take_next(broker_factory: Factory) -> None:
    broker = broker_factory("contract")
    broker.enqueue([b"a", b"b"])
    worker = fresh_id()
    assert broker.dequeue(worker, 1.0) == b"a"
    assert broker.release(worker, take_next=True) == b"b"
    assert broker.held(worker) == b"b"
    assert broker.release(worker, take_next=True) is None  # nothing ready: never blocks
    assert broker.held(worker) is None and len(broker) == 0


def test_requeue_front_and_delay(broker_factory: Factory) -> None:
    broker = broker_factory("contract")
    broker.enqueue([b"a", b"b"])
    worker = fresh_id()
    assert broker.dequeue(worker, 1.0) == b"a"
    broker.requeue(worker, b"a-again", front=True)
    assert broker.held(worker) is None
    assert broker.dequeue(worker, 1.0) == b"a-again"
    broker.requeue(worker, b"a-later", delay=60)
    assert len(broker) == 1 and broker.info().scheduled == 1
    assert broker.promote_and_peek(time.time() + 120)[0] == 1
    assert [broker.dequeue(fresh_id(), 1.0) for _ in range(2)] == [b"b", b"a-later"]


def test_dead_letter_releases_and_keeps_the_newest(broker_factory: Factory) -> None:
    broker = broker_factory("contract")
    broker.enqueue([b"bad"])
    worker = fresh_id()
    assert broker.dequeue(worker, 1.0) == b"bad"
    broker.dead_letter(worker, b'{"reason":"failed","n":1}', keep=2)
    assert broker.held(worker) is None
    broker.dead_letter(None, b'{"reason":"failed","n":2}', keep=2)
    broker.dead_letter(None, b'{"reason":"failed","n":3}', keep=2)
    assert broker.dead_letters() == [b'{"reason":"failed","n":3}', b'{"reason":"failed","n":2}']
    assert broker.dead_letters(1, 1) == [b'{"reason":"failed","n":2}']


def test_wake_interrupts_a_blocked_dequeue(broker_factory: Factory) -> None:
    """``wake`` may do nothing (the default); either way the blocked dequeue returns None, not a task."""
    broker = broker_factory("contract")
    worker, result = fresh_id(), []
    thread = threading.Thread(target=lambda: result.append(broker.dequeue(worker, 1.0)), daemon=True)
    thread.start()
    time.sleep(0.1)
    broker.wake([worker])
    thread.join(10)
    assert not thread.is_alive() and result == [None]


def test_several_queues_are_served_in_priority_order(broker_factory: Factory) -> None:
    high, low = broker_factory("contract-high"), broker_factory("contract-low")
    queues, worker = ("contract-high", "contract-low"), fresh_id()
    if not high.serves_several_queues:
        with pytest.raises(NotImplementedError):
            high.dequeue_first(worker, queues, 0.1)
        return
    low.enqueue([b"low-1", b"low-2"])
    assert high.dequeue_first(worker, queues, 1.0) == ("contract-low", b"low-1")
    assert high.held_in(worker, queues) == ("contract-low", b"low-1")
    high.enqueue([b"high-1"])
    assert high.release_and_take_first(worker, "contract-low", queues, True) == ("contract-high", b"high-1")
    assert low.held(worker) is None and high.held(worker) == b"high-1"
    assert high.release_and_take_first(worker, "contract-high", queues, True) == ("contract-low", b"low-2")
    assert high.release_and_take_first(worker, "contract-low", queues, False) is None
    assert high.held_in(worker, queues) is None and len(high) == len(low) == 0


# -- liveness ------------------------------------------------------------------------------------
def test_claimed_ids_are_exclusive_until_offline(broker_factory: Factory) -> None:
    broker = broker_factory("contract")
    assert broker.claim_worker_id(WORKER, 60)
    assert not broker.claim_worker_id(WORKER, 60)
    broker.go_offline([WORKER])
    assert broker.claim_worker_id(WORKER, 60)
    broker.go_offline([])  # nothing to do, no error
    broker.keep_alive([], 60)


def test_keep_alive_extends_liveness(broker_factory: Factory) -> None:
    lacks(broker_factory, "expiry")
    broker = broker_factory("contract")
    assert broker.claim_worker_id(WORKER, 0.3)
    broker.keep_alive([WORKER], 60)
    time.sleep(0.6)  # past the first time to live
    assert not broker.claim_worker_id(WORKER, 60)
