"""The broker contract suite, part two: the sweeper and admin roles (see :mod:`.contract`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..deadletter import DeadLetter, Reason
from ..interfaces import Broker
from ..sweeper import sweep_queue
from .contract_support import fresh_id, lacks

Factory = Callable[[str], Broker]


def _held_by_a_dead_worker(broker: Broker, task: bytes) -> str:
    """Enqueue ``task``, take it with a claimed id, then let that id die (a simulated worker death)."""
    worker = fresh_id()
    assert broker.claim_worker_id(worker, 60)
    broker.enqueue([task])
    assert broker.dequeue(worker, 1.0) == task
    broker.go_offline([worker])
    return worker


# -- sweeper -------------------------------------------------------------------------------------
def test_tasks_of_a_dead_worker_are_recovered_at_least_once(broker_factory: Factory) -> None:
    broker = broker_factory("contract")
    dead = _held_by_a_dead_worker(broker, b"lost")
    never_claimed = fresh_id()
    broker.enqueue([b"waiting", b"orphan"])
    assert broker.dequeue(never_claimed, 1.0) == b"waiting"
    report = sweep_queue(broker, "contract")
    assert (report.queue, report.requeued, report.poisoned) == ("contract", 2, 0)
    assert broker.held(dead) is None and broker.held(never_claimed) is None
    again: list[bytes] = []
    for _ in range(3):
        worker = fresh_id()
        again.append(broker.dequeue(worker, 1.0) or b"nothing")
        broker.release(worker)
    assert sorted(again) == [b"lost", b"orphan", b"waiting"]  # every task once more, none lost
    assert sweep_queue(broker, "contract").requeued == 0


def test_a_live_workers_task_is_left_alone(broker_factory: Factory) -> None:
    broker = broker_factory("contract")
    worker = fresh_id()
    assert broker.claim_worker_id(worker, 60)
    broker.enqueue([b"running"])
    assert broker.dequeue(worker, 1.0) == b"running"
    assert sweep_queue(broker, "contract").requeued == 0
    assert broker.held(worker) == b"running" and len(broker) == 0


def test_an_expired_id_counts_as_dead(broker_factory: Factory) -> None:
    lacks(broker_factory, "expiry")
    broker = broker_factory("contract")
    worker = fresh_id()
    assert broker.claim_worker_id(worker, 0.2)
    broker.enqueue([b"task"])
    assert broker.dequeue(worker, 1.0) == b"task"
    deadline = time.monotonic() + 5
    while broker.sweep().requeued == 0:
        assert time.monotonic() < deadline, "the id never expired"
        time.sleep(0.05)
    assert broker.held(worker) is None and len(broker) == 1


def test_promotion_moves_only_due_tasks_and_peeks_at_the_next(broker_factory: Factory) -> None:
    broker = broker_factory("contract")
    now = time.time()
    broker.schedule([b"soon"], now + 30)
    broker.schedule([b"later-1", b"later-2"], now + 90)
    moved, next_due = broker.promote_and_peek()  # by the broker's own clock
    assert moved == 0 and len(broker) == 0
    assert next_due is None or now + 20 < next_due < now + 40  # None: the broker cannot tell
    assert broker.promote_and_peek(now + 60)[0] == 1 and len(broker) == 1
    assert broker.dequeue(fresh_id(), 1.0) == b"soon"
    assert broker.promote_and_peek(now + 120)[0] == 2
    assert broker.promote_and_peek(now + 120) == (0, None)
    assert sorted(broker.dequeue(fresh_id(), 1.0) or b"" for _ in range(2)) == [b"later-1", b"later-2"]


def test_a_poison_task_becomes_a_dead_letter_the_core_built(broker_factory: Factory) -> None:
    lacks(broker_factory, "poison")
    broker = broker_factory("contract")
    _held_by_a_dead_worker(broker, b"\x00poison")
    assert sweep_queue(broker, "contract", max_recoveries=1).requeued == 1
    second = fresh_id()
    assert broker.claim_worker_id(second, 60) and broker.dequeue(second, 1.0) == b"\x00poison"
    broker.go_offline([second])
    report = sweep_queue(broker, "contract", max_recoveries=1, dead_keep=10)
    assert (report.requeued, report.poisoned, report.poison) == (0, 1, ())
    (raw,) = broker.dead_letters()
    letter = DeadLetter.from_json(raw)
    assert (letter.task, letter.reason, letter.queue, letter.worker, letter.attempts) == (
        b"\x00poison", Reason.POISON, "contract", second, 2)
    assert letter.error == "recovered 1 times from workers that stopped holding it"
    assert len(broker) == 0 and broker.held(second) is None


def test_a_killed_sweeper_leaves_poison_tasks_for_the_next_sweep(broker_factory: Factory) -> None:
    """The sweep sets poison tasks aside; a sweeper killed before it buries them loses nothing, and two
    sweepers burying the same task store one letter."""
    lacks(broker_factory, "poison")
    broker = broker_factory("contract")
    for task in (b"one", b"two"):
        _held_by_a_dead_worker(broker, task)
    assert broker.sweep(max_recoveries=1).requeued == 2
    for _ in range(2):
        worker = fresh_id()
        assert broker.claim_worker_id(worker, 60) and broker.dequeue(worker, 1.0) is not None
        broker.go_offline([worker])
    aside = broker.sweep(max_recoveries=1)  # ... and the sweeper dies here, before it buries them
    assert (aside.requeued, aside.poisoned, sorted(p.task for p in aside.poison)) == (0, 2, [b"one", b"two"])
    assert broker.dead_letters() == [] and len(broker) == 0
    again = broker.sweep(max_recoveries=1)
    assert (again.poisoned, sorted(p.task for p in again.poison)) == (0, [b"one", b"two"])
    report = sweep_queue(broker, "contract", max_recoveries=1)
    assert report.poisoned == 2
    assert sorted(DeadLetter.from_json(raw).task for raw in broker.dead_letters()) == [b"one", b"two"]
    assert not broker.bury(again.poison[0], b'{"reason":"poison"}')  # already buried: no duplicate
    assert broker.sweep(max_recoveries=1).poison == () and len(broker.dead_letters()) == 2


def test_release_forgets_the_poison_count(broker_factory: Factory) -> None:
    lacks(broker_factory, "poison")
    broker = broker_factory("contract")
    _held_by_a_dead_worker(broker, b"task")
    assert broker.sweep(max_recoveries=5).requeued == 1  # counted once
    worker = fresh_id()
    assert broker.dequeue(worker, 1.0) == b"task"
    broker.release(worker)
    _held_by_a_dead_worker(broker, b"task")
    assert broker.sweep(max_recoveries=1).requeued == 1  # would be poison had the count stayed


# -- admin ---------------------------------------------------------------------------------------
def test_info_reports_lengths_holders_and_live_workers(broker_factory: Factory) -> None:
    broker = broker_factory("contract")
    alive, dead = fresh_id(), fresh_id()
    assert broker.claim_worker_id(alive, 60)
    broker.enqueue([b"held-alive", b"held-dead", b"waiting"])
    assert broker.dequeue(alive, 1.0) == b"held-alive" and broker.dequeue(dead, 1.0) == b"held-dead"
    broker.schedule([b"later"], time.time() + 60)
    broker.dead_letter(None, b'{"reason":"failed"}')
    info = broker.info()
    assert (info.name, info.length, info.scheduled, info.dead) == ("contract", 1, 1, 1)
    assert info.processing == {alive: (b"held-alive", True), dead: (b"held-dead", False)}
    assert alive in info.workers and dead not in info.workers
    assert all(isinstance(value, int) for value in info.extra.values())


def test_discover_queues_finds_queues_with_data(broker_factory: Factory) -> None:
    one, two = broker_factory("contract-one"), broker_factory("contract-two")
    one.enqueue([b"task"])
    worker = fresh_id()
    assert one.dequeue(worker, 1.0) == b"task"  # held, so some trace remains
    two.dead_letter(None, b'{"reason":"failed"}')
    found = one.discover_queues()
    assert {"contract-one", "contract-two"} <= set(found) and found == sorted(found)


def test_dead_letter_round_trip(broker_factory: Factory) -> None:
    broker = broker_factory("contract")
    broker.enqueue([b"\x00\xfe raw"])
    worker = fresh_id()
    assert broker.dequeue(worker, 1.0) == b"\x00\xfe raw"
    entry = DeadLetter(b"\x00\xfe raw", Reason.FAILED, "boom", queue="contract", worker=worker).to_json()
    broker.dead_letter(worker, entry)
    (stored,) = broker.dead_letters()
    assert stored == entry and DeadLetter.from_json(stored).task == b"\x00\xfe raw"
    assert broker.remove_dead_letter(stored, requeue_task=DeadLetter.from_json(stored).task)
    assert not broker.remove_dead_letter(stored, requeue_task=b"twice")  # already gone: enqueued once
    assert broker.dead_letters() == [] and len(broker) == 1
    assert broker.dequeue(fresh_id(), 1.0) == b"\x00\xfe raw"
    broker.dead_letter(None, entry)
    assert broker.remove_dead_letter(entry) and len(broker) == 0  # removed without requeueing


def test_purge_and_clear(broker_factory: Factory) -> None:
    broker = broker_factory("contract")
    for n in range(3):
        broker.dead_letter(None, b'{"reason":"failed","n":%d}' % n)
    assert broker.purge_dead_letters() == 3 and broker.dead_letters() == []
    assert broker.purge_dead_letters() == 0
    broker.enqueue([b"a"])
    broker.schedule([b"b"], time.time() + 60)
    broker.clear()
    info = broker.info()
    assert (len(broker), info.scheduled, info.dead, info.processing) == (0, 0, 0, {})
