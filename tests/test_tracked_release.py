"""The one-queue tracked release (tracking.release_one_command): its hand-packed command is byte for byte
what a client would send, and a busy slot still settles a tracked task and takes the next one in one
script call, also after the server lost its scripts."""

from __future__ import annotations

import hiredis
import pytest

from delayed_core.interfaces.tracking import Finish, Submission
from delayed_redis import RedisBroker
from delayed_redis.tracking import RELEASE_TAKE, RedisTracker, _keys, release_one_command, settle_args
from tests.conftest import Backend

Q = "tracked-release"


@pytest.mark.parametrize("record_id", ["a" * 32, "order-42", "ünïcode-id"])
@pytest.mark.parametrize(("ttl", "take_next"), [(1, True), (86_400_000, False)])
def test_the_packed_command_is_what_a_client_sends(record_id: str, ttl: int, take_next: bool) -> None:
    settled = b" succeeded\n" + bytes(range(256))
    k = _keys(Q)
    expected = hiredis.pack_command(("EVALSHA", RELEASE_TAKE.sha, 6, k.queue, k.notifications, k.processing,
                                     k.recoveries, k.throughput, "delayed_task:" + record_id, "w-1",
                                     "1" if take_next else "0", 29_000_000, ttl, settled))
    assert release_one_command(Q, "w-1", take_next, 29_000_000, "delayed_task:" + record_id, ttl,
                               settled) == expected


def _submitted(broker: RedisBroker, tracker: RedisTracker, *ids: str) -> None:
    for task_id in ids:
        assert tracker.submit(Submission(task_id, Q, "mod:f", f"task-{task_id}".encode(), 60.0)) == (True, "queued")


def test_a_busy_slot_settles_and_takes_the_next_in_one_call(real_backend: Backend) -> None:
    broker = RedisBroker.from_url(real_backend.url, Q, {})
    tracker = RedisTracker(broker)
    _submitted(broker, tracker, "t1", "t2", "t3")
    worker = "slot-1"
    assert broker.claim_worker_id(worker, 30)
    assert broker.dequeue(worker, 1.0) == b"task-t1"
    done = Finish("t1", {"s": "succeeded", "a": 1, "w": worker}, 60.0)
    assert tracker.release_and_take(worker, Q, (Q,), True, done) == (Q, b"task-t2")  # loads the script
    before = real_backend.client.info("commandstats")["cmdstat_evalsha"]["calls"]
    finish = Finish("t2", {"s": "succeeded", "a": 1, "w": worker, "r": b"\x2a"}, 60.0)
    assert tracker.release_and_take(worker, Q, (Q,), True, finish) == (Q, b"task-t3")
    assert real_backend.client.info("commandstats")["cmdstat_evalsha"]["calls"] == before + 1
    record = tracker.read("t2")
    assert (record.status, record.result, record.worker) == ("succeeded", b"\x2a", worker)
    assert record.enqueued is not None and record.finished is not None
    assert 0 < real_backend.client.pttl("delayed_task:t2") <= 60_000
    assert tracker.read("t3").status == "running"
    assert broker.held(worker) == b"task-t3"
    broker.close()


def test_the_release_loads_its_script_again_after_a_flush(real_backend: Backend) -> None:
    broker = RedisBroker.from_url(real_backend.url, Q, {})
    tracker = RedisTracker(broker)
    _submitted(broker, tracker, "t1")
    worker = "slot-1"
    assert broker.claim_worker_id(worker, 30)
    assert broker.dequeue(worker, 1.0) == b"task-t1"
    real_backend.client.script_flush()
    finish = Finish("t1", {"s": "succeeded", "a": 1, "w": worker}, 60.0)
    assert tracker.release_and_take(worker, Q, (Q,), True, finish) is None
    assert tracker.read("t1").status == "succeeded"
    assert broker.held(worker) is None and len(broker) == 0
    assert real_backend.client.script_exists(RELEASE_TAKE.sha) == [True]
    assert settle_args(finish)[0] == 60_000
    broker.close()
